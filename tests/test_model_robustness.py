"""Bad input to the models and converters: a ValueError that names the problem (issue 10, points 2, 6 and 7).

Also the one-sampling-path and unknown-argument rules of the layering issue (issue 8).
"""

import json

import pytest
import torch
from test_vqgan import official_state_dict, tiny_config, write_lightning_checkpoint
from transformers import AutoModel

import hf_vq
from hf_vq.convert import convert_llamagen_checkpoint, convert_llamagen_gpt_checkpoint, convert_taming_checkpoint


def tiny_vqvae(**overrides):
    torch.manual_seed(0)
    config = {"hidden_dim": 16, "codebook_size": 32, "codebook_dim": 8, "image_size": 16, **overrides}
    return hf_vq.VQVAEModel(hf_vq.VQVAEConfig(**config)).eval()


def tiny_gpt(**overrides):
    config = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 32, "block_size": 16,
              "num_classes": 5, "multiple_of": 32, **overrides}
    return hf_vq.LlamaGenGPTModel(hf_vq.LlamaGenGPTConfig(**config)).eval()


# -- inputs ---------------------------------------------------------------------------------
def test_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        tiny_vqvae().encode(torch.zeros(0, 3, 16, 16))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_input_to_an_fp32_model(dtype):
    with pytest.raises(ValueError, match=rf"{dtype}.*weights .* are torch.float32.*\.to\(model\.dtype\)"):
        tiny_vqvae()(torch.zeros(1, 3, 16, 16, dtype=dtype))


def test_half_precision_input_is_accepted_under_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny_vqvae()(torch.zeros(1, 3, 16, 16, dtype=torch.bfloat16))
    assert out.reconstruction.shape == (1, 3, 16, 16)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels(bad):
    pixels = torch.zeros(2, 3, 16, 16)
    pixels[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        tiny_vqvae().encode(pixels)


def test_decode_with_wrong_latent_channels():
    model = tiny_vqvae()
    with pytest.raises(ValueError, match=r"\(batch, 8, height, width\).*got \(1, 16, 4, 4\)"):
        model.decode(torch.zeros(1, 16, 4, 4))
    with pytest.raises(ValueError, match="decode_indices"):
        model.decode(torch.zeros(1, 4, 4, dtype=torch.long))


def test_gpt_input_ids_out_of_range():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"input_ids must be codes in \[0, 32\).*\[0, 32\]"):
        model(input_ids=torch.tensor([[0, 32]]), class_labels=torch.tensor([1]))
    with pytest.raises(ValueError, match=r"got values in \[-1, 3\]"):
        model(input_ids=torch.tensor([[-1, 3]]), class_labels=torch.tensor([1]))


def test_forward_rejects_an_argument_it_does_not_know():
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['labels'\]"):
        tiny_vqvae()(torch.zeros(1, 3, 16, 16), labels=torch.zeros(1))
    with pytest.raises(TypeError, match=r"unexpected argument\(s\) \['pixel_values'\]"):
        tiny_gpt()(class_labels=torch.tensor([1]), pixel_values=torch.zeros(1))


# -- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"codebook_size": 0}, "codebook_size must be a positive integer; got 0"),
        ({"codebook_size": -4}, "codebook_size must be a positive integer; got -4"),
        ({"ema_decay": 1.5}, r"ema_decay must be in \[0, 1\).*1.5"),
        ({"ema_decay": 1.0}, r"ema_decay must be in \[0, 1\)"),
        ({"commitment_beta": -0.25}, "commitment_beta must be >= 0"),
        ({"image_size": 30}, "image_size 30 is not divisible by the SimpleCNN downsampling factor 4"),
    ],
)
def test_config_values_that_cannot_work(overrides, message):
    with pytest.raises(ValueError, match=message):
        hf_vq.VQVAEConfig(**overrides)


def test_other_configs_check_the_same_fields():
    with pytest.raises(ValueError, match="codebook_size must be a positive integer"):
        hf_vq.VQGANConfig(codebook_size=0, image_size=32, channel_multipliers=[1, 2], attn_resolutions=[])
    with pytest.raises(ValueError, match="usage_decay must be in"):
        hf_vq.CVQVAEConfig(usage_decay=-0.1)
    with pytest.raises(ValueError, match="not divisible by the downsampling factor 16"):
        hf_vq.VQGANConfig(image_size=40)
    with pytest.raises(ValueError, match="vocab_size must be a positive integer; got 0"):
        hf_vq.LlamaGenGPTConfig(vocab_size=0)


# -- saved weights --------------------------------------------------------------------------
def edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_save_and_load_still_round_trips(tmp_path):
    model = tiny_vqvae()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    pixels = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(loaded(pixels).reconstruction, model(pixels).reconstruction)
    loaded, info = AutoModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]


def test_missing_weights_are_refused_naming_keys_and_the_edited_field(tmp_path):
    tiny_vqvae().save_pretrained(tmp_path)
    edit_config(tmp_path, num_res_blocks=3)
    with pytest.raises(ValueError, match=r"lacks: \[.*encoder\.resblocks\.2.*num_res_blocks = 3 \(the weights were saved with 2\)"):
        AutoModel.from_pretrained(tmp_path)


def test_unexpected_weights_are_refused(tmp_path):
    tiny_vqvae().save_pretrained(tmp_path)
    edit_config(tmp_path, num_res_blocks=1)
    with pytest.raises(ValueError, match=r"the model does not have: \[.*resblocks\.1.*num_res_blocks = 1"):
        hf_vq.VQVAEModel.from_pretrained(tmp_path)


def test_shape_mismatch_names_the_edited_field(tmp_path):
    tiny_vqvae().save_pretrained(tmp_path)
    edit_config(tmp_path, hidden_dim=32)
    with pytest.raises(ValueError, match=r"other shapes.*hidden_dim = 32 \(the weights were saved with 16\)"):
        AutoModel.from_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("make", "changes", "field"),
    [
        (tiny_vqvae, {"l2_norm": True}, "l2_norm"),
        (lambda: hf_vq.FSQVAEModel(hf_vq.FSQVAEConfig(hidden_dim=16, image_size=16, levels=[8, 8, 8])),
         {"levels": [5, 5, 5], "codebook_size": 125}, "levels"),
        (lambda: hf_vq.CVQVAEModel(hf_vq.CVQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16)),
         {"distance": "euclidean"}, "distance"),
        (tiny_gpt, {"num_attention_heads": 4}, "num_attention_heads"),
    ],
)
def test_a_function_changing_field_edited_after_saving_is_refused(tmp_path, make, changes, field):
    make().save_pretrained(tmp_path)
    edit_config(tmp_path, **changes)
    with pytest.raises(ValueError, match=rf"sets {field} = .*\(the weights were saved with .*change what the same weights compute"):
        AutoModel.from_pretrained(tmp_path)


def test_a_training_only_field_may_change(tmp_path):
    tiny_vqvae().save_pretrained(tmp_path)
    edit_config(tmp_path, commitment_beta=0.5)
    assert AutoModel.from_pretrained(tmp_path).config.commitment_beta == 0.5


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty"])
def test_damaged_weights_file_is_named(tmp_path, damage):
    tiny_vqvae().save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncated": data[: len(data) // 2], "random bytes": bytes(range(256)) * 8, "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"model\.safetensors.*(truncated|not a safetensors file)"):
        AutoModel.from_pretrained(tmp_path)


# -- converters -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (bytes(range(256)) * 16, "not a readable PyTorch checkpoint"),
        (b"model weights\nare not here\n", "not a readable PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\x00" * 100, "not a readable PyTorch checkpoint"),
    ],
)
@pytest.mark.parametrize("convert", [convert_taming_checkpoint, convert_llamagen_checkpoint,
                                     lambda path: convert_llamagen_gpt_checkpoint(path, None, "GPT-B")])
def test_converters_name_a_file_that_is_not_a_checkpoint(tmp_path, content, message, convert):
    path = tmp_path / "model.ckpt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"model\.ckpt.*{message}|{message}.*model\.ckpt|'.*model\.ckpt' {message}"):
        convert(path)


def test_converter_refuses_nan_weights_naming_them(tmp_path):
    state_dict = official_state_dict()
    state_dict["decoder.conv_out.weight"][0, 0, 0, 0] = float("nan")
    state_dict["quantize.embedding.weight"][3, 1] = float("inf")
    checkpoint = write_lightning_checkpoint(tmp_path / "last.ckpt", state_dict)
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 tensor\(s\).*decoder\.conv_out\.weight.*quantizer\.codebook"):
        convert_taming_checkpoint(checkpoint, config=tiny_config())


# -- one sampling path ----------------------------------------------------------------------
def test_pipeline_and_generate_images_give_the_same_images_with_the_same_defaults():
    import inspect

    from hf_vq.generation import DEFAULT_GUIDANCE_SCALE, generate, generate_images
    from hf_vq.pipelines import VQAutoregressivePipeline

    tokenizer, gpt = tiny_vqvae(), tiny_gpt()
    torch.nn.init.normal_(gpt.lm_head.weight, std=0.5)
    pipeline = VQAutoregressivePipeline(tokenizer=tokenizer, transformer=gpt)
    images = pipeline([1, 3], generator=torch.Generator().manual_seed(0), output_type="pt").images
    direct = generate_images(gpt, tokenizer, [1, 3], generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(images, (direct / 2 + 0.5).clamp(0, 1), rtol=0, atol=1e-6)
    for function in (VQAutoregressivePipeline.__call__, generate_images, generate):
        assert inspect.signature(function).parameters["guidance_scale"].default == DEFAULT_GUIDANCE_SCALE
