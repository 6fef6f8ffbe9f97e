"""VQ-KD stage 2: a pixel decoder trained behind the frozen VQ-KD encoder and codebook makes it an image tokenizer
(encode / decode_indices give images; hf-vq tokenize / train-ar / generate and the demo take it)."""

from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from test_vq_cluster import TINY_DECODER, TinyPerceptualLoss, tokenize_train_a_tiny_gpt_and_sample
from test_vqkd import TINY
from test_vqkd_training import vqkd_raw
from tiny_teachers import save_tiny_teacher
from transformers import AutoModel

from hf_vq.models.configuration_pixel_decoder import pixel_decoder_config
from hf_vq.models.vqkd import VQKDConfig, VQKDModel
from hf_vq.training import TrainConfig, build_stage2_model, run_training

REPO = Path(__file__).resolve().parents[1]
SIZE, GRID = TINY["image_size"], TINY["image_size"] // TINY["patch_size"]


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    generator = torch.Generator().manual_seed(3)
    for index in range(12):
        array = torch.randint(0, 256, (40, 40, 3), generator=generator, dtype=torch.uint8).numpy()
        Image.fromarray(array).save(folder / f"image{index:02d}.png")
    return str(folder)


def pixels(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.fixture(scope="module")
def stage1_dir(image_folder, tmp_path_factory):
    """A VQ-KD distilled 2 steps from a tiny CLIP teacher (the stage-1 recipe, shrunk)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    teacher = save_tiny_teacher("clip", tmp_path_factory.mktemp("teacher") / "clip")
    output = tmp_path_factory.mktemp("stage1") / "vqkd"
    raw = vqkd_raw(output, teacher, image_folder, max_steps=2, checkpoint_every=0)
    raw["data"]["eval_holdout"] = 4
    run_training(TrainConfig.from_dict(raw))
    AcceleratorState._reset_state(reset_partial_state=True)
    return output


@pytest.fixture(scope="module")
def stage2_dir(stage1_dir, image_folder, tmp_path_factory):
    """configs/iu/vqkd-clip-pixel-decoder.yaml shrunk (tiny decoder, GAN on from step 1), 2 steps."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    output = tmp_path_factory.mktemp("stage2") / "decoder"
    raw = yaml.safe_load((REPO / "configs" / "iu" / "vqkd-clip-pixel-decoder.yaml").read_text())
    raw["model"].update(stage1_from=str(stage1_dir), pixel_decoder=TINY_DECODER)
    raw["data"] = {"dataset": "imagefolder", "train_data_dir": image_folder, "eval_holdout": 4, "image_size": SIZE}
    raw["training"].update(batch_size=4, max_steps=2, log_every=1, checkpoint_every=0, resume_from=None, report_to="none",
                           mixed_precision="no", log_images_every=0)
    # perceptual_dropout off: the stand-in for LPIPS (TinyPerceptualLoss) has no dropout layers to switch on
    raw["loss"].update(disc_start=1, disc_layers=2, disc_channels=8, perceptual_dropout=False)
    raw["output_dir"] = str(output)
    config = TrainConfig.from_dict(raw)
    model = build_stage2_model(config.model)
    initial = {name: value.clone() for name, value in model.state_dict().items()}
    result = run_training(config, model=model, perceptual_loss=TinyPerceptualLoss())
    AcceleratorState._reset_state(reset_partial_state=True)
    return output, result, initial


def test_stage2_trains_the_pixel_decoder_behind_a_bit_identical_vqkd(stage1_dir, stage2_dir):
    output, result, initial = stage2_dir
    assert [h["step"] for h in result.history] == [0, 1]
    assert all({"generator_adversarial", "discriminator", "lpips"} <= set(h) for h in result.history[1:])
    trained = result.model.state_dict()
    stage1 = AutoModel.from_pretrained(stage1_dir).eval()
    assert isinstance(stage1, VQKDModel) and not stage1.decodes_pixels
    for name, value in stage1.state_dict().items():  # encoder, heads, codebook, feature decoder: bit-identical
        assert torch.equal(trained[name], value), name
        assert torch.equal(initial[name], value), name
    decoder_names = [name for name in trained if name.startswith("pixel_decoder.")]
    assert decoder_names and set(trained) == set(stage1.state_dict()) | set(decoder_names)
    assert any(not torch.equal(trained[name], initial[name]) for name in decoder_names)

    model = AutoModel.from_pretrained(output).eval()
    assert isinstance(model, VQKDModel) and model.decodes_pixels
    images = pixels()
    with torch.no_grad():
        encoded = model.encode(images)
        decoded = model.decode_indices(encoded.indices).sample
        assert decoded.shape == images.shape and torch.isfinite(decoded).all()
        assert torch.equal(decoded, model.decode(encoded.quantized).sample)
        assert torch.equal(model(images).reconstruction, decoded)
        assert torch.equal(encoded.indices, stage1.encode(images).indices)
        # The teacher-feature decoder is still there, unchanged.
        torch.testing.assert_close(model.predict_features(encoded.quantized), stage1.predict_features(encoded.quantized))
    assert {"psnr", "ssim", "codebook_usage"} <= set(result.metrics)
    # Stage 2's forward is the image tokenizer's: a distillation target is refused, not ignored.
    with pytest.raises(TypeError, match="teacher_features"):
        model(images, teacher_features=torch.zeros(2, GRID * GRID, 24))
    model.train()
    assert model.pixel_decoder.training and not model.quantizer.training and not model.encoder.training


def test_stage2_vqkd_tokenizes_trains_a_gpt_and_generates(stage2_dir, tmp_path):
    output, *_ = stage2_dir
    tokens, gpt, samples = tokenize_train_a_tiny_gpt_and_sample(output, pixels(batch=6, seed=2), tmp_path)
    assert len(tokens) == 12 and len(tokens[0]["input_ids"]) == GRID * GRID
    assert gpt.config.vocab_size == TINY["codebook_size"]
    assert samples.shape == (2, 3, SIZE, SIZE) and samples.abs().max() <= 1


def test_demo_takes_a_stage2_vqkd_and_refuses_a_stage1_one(stage1_dir, stage2_dir):
    from hf_vq.demo import playground
    from hf_vq.utils.errors import UsageError

    output, *_ = stage2_dir
    loaded = playground.load_tokenizer(str(output))
    assert isinstance(loaded.model, VQKDModel) and loaded.model.decodes_pixels
    with pytest.raises(UsageError, match="predicts teacher features, not images"):
        playground.load_tokenizer(str(stage1_dir))


@pytest.mark.parametrize("teacher", ["clip", "dino"])
def test_iu_vqkd_pixel_decoder_configs_fit_224px_codes(teacher):
    from hf_vq.training import PixelDecoderObjective, load_config, tokenizer_objective_class

    config = load_config(REPO / "configs" / "iu" / f"vqkd-{teacher}-pixel-decoder.yaml")
    assert tokenizer_objective_class(config) is PixelDecoderObjective
    assert config.model["model_type"] == "vqkd" and config.model["stage1_from"] == f"outputs/iu/vqkd-{teacher}"
    assert config.data.image_size == 224
    settings = config.model["pixel_decoder"]
    # 224 px with 16 px patches: 14x14 codes, and the decoder's 5 levels upsample 14 -> 224.
    decoder = pixel_decoder_config(settings, 224, 3, 16)
    assert decoder.downsample_factor == 16 and 224 // decoder.downsample_factor == 14
    assert VQKDConfig(pixel_decoder=settings).pixel_decoder == settings
    with pytest.raises(ValueError, match="upsample x8"):
        VQKDConfig(pixel_decoder={**settings, "channel_multipliers": [1, 1, 2, 2]})


def test_stage2_model_teacher_overrides_the_vqkd_teacher_path(tmp_path):
    VQKDModel(VQKDConfig(**TINY, teacher_name_or_path="openai/clip-vit-base-patch16")).save_pretrained(tmp_path / "stage1")
    model = build_stage2_model({"stage1_from": str(tmp_path / "stage1"), "teacher": "/local/clip", "pixel_decoder": TINY_DECODER})
    assert model.config.teacher_name_or_path == "/local/clip" and model.pixel_decoder is not None
    with pytest.raises(ValueError, match="already has a pixel decoder"):
        model.add_pixel_decoder(TINY_DECODER)
