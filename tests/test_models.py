"""The shared tokenizer API on the five SimpleCNN tokenizers."""

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoConfig, AutoImageProcessor, AutoModel

import hf_vq
from hf_vq.processing import center_crop_arr

TINY = {
    "vqvae": dict(codebook_size=32, codebook_dim=8, entropy_weight=0.1, use_ema=True, kmeans_init=True),
    "fsq_vae": dict(levels=[5, 4, 3]),
    "simvq_vae": dict(codebook_size=64, codebook_dim=8),
    "lfq_vae": dict(codebook_dim=6),
    "cvq_vae": dict(codebook_size=32, codebook_dim=8),
}


def tiny_model(model_type):
    config = AutoConfig.for_model(model_type, hidden_dim=32, image_size=16, **TINY[model_type])
    return AutoModel.from_config(config)


def pixels(batch=2, size=16):
    return torch.rand(batch, 3, size, size) * 2 - 1


@pytest.mark.parametrize("model_type", list(TINY))
def test_save_and_load_through_auto_classes(model_type, tmp_path):
    model = tiny_model(model_type)
    model.train()
    model(pixels(4))  # one training forward updates EMA / k-means / CVQ state
    model.eval()
    x = pixels()
    model.save_pretrained(tmp_path)
    hf_vq.VQImageProcessor(size=16).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert type(reloaded) is type(model)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), hf_vq.VQImageProcessor)
    # Saving and loading copies the tensors bit for bit (exact check below). Outputs are only
    # equal up to float rounding: the reloaded weights live at other addresses, and BLAS may
    # pick another kernel path for them (SimVQ's code table differed by 1.5e-8 on a clean machine).
    for name, value in model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[name]), name
    a, b = model(x), reloaded(x)
    assert torch.equal(a.indices, b.indices)
    torch.testing.assert_close(a.reconstruction, b.reconstruction, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_type", list(TINY))
def test_decode_indices_equals_decode_of_quantized(model_type):
    model = tiny_model(model_type).eval()
    x = pixels()
    encoded = model.encode(x)
    assert encoded.indices.dtype == torch.long and encoded.indices.shape == (2, 4, 4)
    assert int(encoded.indices.max()) < model.config.codebook_size
    # The code table is recomputed by decode_indices (SimVQ: a linear map), so the two agree to float
    # rounding, not necessarily bit for bit.
    torch.testing.assert_close(
        model.decode_indices(encoded.indices).sample, model.decode(encoded.quantized).sample, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("model_type", list(TINY))
def test_forward_outputs_and_gradients_reach_encoder(model_type):
    model = tiny_model(model_type).train()
    out = model(pixels())
    assert out.reconstruction.shape == (2, 3, 16, 16)
    assert "reconstruction" in out.loss_terms
    torch.testing.assert_close(out.loss, sum(out.loss_terms.values()))
    out.reconstruction_loss.backward()  # the decoder loss alone must reach the encoder (straight-through)
    grad = model.encoder.downblocks[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_codebook_size_is_the_number_of_codes():
    assert hf_vq.FSQVAEConfig(levels=[8, 8, 8, 6, 5]).codebook_size == 15360
    assert hf_vq.LFQVAEConfig(codebook_dim=14).codebook_size == 16384
    with pytest.raises(ValueError, match="Set levels only"):
        hf_vq.FSQVAEConfig(levels=[8, 8], codebook_size=100)
    with pytest.raises(ValueError, match="Unknown option"):
        hf_vq.VQVAEConfig(codebok_size=3)
    with pytest.raises(ValueError, match="anchor"):
        hf_vq.CVQVAEConfig(anchor="nearest")


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(3, 16, 16), "4D"),
        (torch.rand(2, 1, 16, 16), "3 channels"),
        (torch.rand(2, 16, 16, 3), "channel-last"),
        (torch.randint(0, 255, (2, 3, 16, 16)), "floating-point"),
        (torch.rand(2, 3, 16, 16) * 255, "0-255"),
        (torch.rand(2, 3, 18, 16), "not divisible by the downsampling factor 4"),
        (np.zeros((2, 3, 16, 16), dtype=np.float32), "torch.Tensor"),
    ],
)
def test_bad_pixel_input_raises_clear_error(bad, message):
    model = tiny_model("vqvae")
    with pytest.raises(ValueError, match=message):
        model.encode(bad)


def test_bad_indices_raise():
    model = tiny_model("vqvae")
    with pytest.raises(ValueError, match=r"in \[0, 32\)"):
        model.decode_indices(torch.full((1, 4, 4), 40))
    with pytest.raises(ValueError, match="shape"):
        model.decode_indices(torch.zeros(1, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        model.decode_indices(torch.zeros(1, 4, 4))


def test_image_processor_adm_crop_round_trip(tmp_path):
    import skimage.data

    photo = Image.fromarray(skimage.data.chelsea())  # 451 x 300
    processor = hf_vq.VQImageProcessor(size=64)
    pixel_values = processor(photo).pixel_values
    assert pixel_values.shape == (1, 3, 64, 64)
    assert pixel_values.min() >= -1 and pixel_values.max() <= 1
    # independent reference of the ADM crop: BOX halving while >= 2x, BICUBIC, centre crop
    img = photo
    while min(img.size) >= 128:
        img = img.resize((img.size[0] // 2, img.size[1] // 2), resample=Image.BOX)
    scale = 64 / min(img.size)
    img = img.resize((round(img.size[0] * scale), round(img.size[1] * scale)), resample=Image.BICUBIC)
    arr = np.array(img)
    top, left = (arr.shape[0] - 64) // 2, (arr.shape[1] - 64) // 2
    expected = arr[top : top + 64, left : left + 64]
    np.testing.assert_array_equal(center_crop_arr(photo, 64), expected)
    back = processor.postprocess(pixel_values, output_type="np")[0]
    np.testing.assert_array_equal(back, expected)  # x / 127.5 - 1 and back is lossless on uint8
    processor.save_pretrained(tmp_path)
    assert AutoImageProcessor.from_pretrained(tmp_path).size == 64
    with pytest.raises(ValueError, match="uint8"):
        processor(np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="output_type"):
        processor.postprocess(pixel_values, output_type="jpeg")
