"""The IU paper's FSQ and CVQ tokenizers on the VQGAN backbone (vqgan_fsq, vqgan_cvq) and the configs/iu/ recipes."""

from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModel

import hf_vq  # noqa: F401  (registers the Auto classes)
from hf_vq.training import build_model, load_config

REPO = Path(__file__).resolve().parents[1]
BACKBONE = dict(image_size=16, base_channels=32, channel_multipliers=[1, 2], z_channels=32, attn_resolutions=[8],
                num_res_blocks=1)
TINY = {"vqgan_fsq": dict(levels=[5, 4, 3]), "vqgan_cvq": dict(codebook_size=32, codebook_dim=8)}


def tiny(model_type):
    return AutoModel.from_config(AutoConfig.for_model(model_type, **BACKBONE, **TINY[model_type]))


@pytest.mark.parametrize("model_type", list(TINY))
def test_shapes_decode_indices_and_save_load(model_type, tmp_path):
    model = tiny(model_type)
    model.train()
    model(torch.rand(4, 3, 16, 16) * 2 - 1)  # CVQ: one training forward updates its usage statistics
    model.eval()
    pixels = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        encoded = model.encode(pixels)
        assert encoded.indices.shape == (2, 8, 8) and int(encoded.indices.max()) < model.config.codebook_size
        torch.testing.assert_close(model.decode_indices(encoded.indices).sample, model.decode(encoded.quantized).sample)
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(model)
    with torch.no_grad():
        assert torch.equal(loaded.encode(pixels).indices, encoded.indices)


def test_fsq_codes_lie_on_the_level_grid():
    model = tiny("vqgan_fsq").eval()
    assert (model.config.codebook_size, model.config.codebook_dim) == (60, 3)
    with torch.no_grad():
        codes = model.encode(torch.rand(2, 3, 16, 16) * 2 - 1).quantized  # (B, 3, h, w), one channel per level
    for channel, level in enumerate([5, 4, 3]):
        values = codes[:, channel] * (level // 2)  # FSQ divides the rounded values by L // 2
        assert torch.allclose(values, values.round(), atol=1e-5)
        grid = set(range(-(level // 2), level - level // 2))  # L = 4: {-2, -1, 0, 1}; L = 5: {-2, ..., 2}
        assert set(values.round().int().unique().tolist()) <= grid
    with pytest.raises(ValueError, match="Set levels only"):
        AutoConfig.for_model("vqgan_fsq", levels=[8, 8], codebook_size=10)


def test_cvq_moves_dead_codes_to_features():
    torch.manual_seed(0)
    model = tiny("vqgan_cvq").train()
    before = model.quantizer.codebook.detach().clone()
    model(torch.rand(8, 3, 16, 16) * 2 - 1)
    changed = (model.quantizer.codebook != before).any(dim=1)
    assert changed.any()  # dead (unused) codes were pulled towards anchor features, without any optimizer step


IU = REPO / "configs" / "iu"


def test_iu_recipes_follow_the_official_configs():
    configs = {name: load_config(IU / f"{name}.yaml") for name in ("vqgan_8192", "fsq_8000", "fsq_64000", "cvq_8192")}
    for name in ("vqgan_8192", "fsq_8000", "fsq_64000", "cvq_8192"):
        config = configs[name]
        training, loss = config.training, config.loss
        assert (training.learning_rate, training.disc_learning_rate) == (5.4e-5, 4.32e-4)
        assert (training.adam_beta1, training.adam_beta2, training.max_steps) == (0.5, 0.9, 260_000)
        assert training.batch_size * 8 == 96  # "batch_size_in_total" 96, over the 8 processes the header names
        assert loss.disc_start == 0 and loss.adaptive_disc_weight and loss.lpips_weight == 1.0
        assert config.model["reconstruction_loss"] == "l1" and config.data.image_size == 256
    assert (configs["vqgan_8192"].loss.disc_weight, configs["vqgan_8192"].loss.disc_layers) == (0.75, 2)
    assert (configs["cvq_8192"].loss.disc_weight, configs["cvq_8192"].loss.disc_layers) == (0.75, 2)
    assert (configs["fsq_8000"].loss.disc_weight, configs["fsq_8000"].loss.disc_layers) == (0.8, 3)
    sizes = {name: build_model({**configs[name].model, **BACKBONE}).config for name in configs}
    assert (sizes["vqgan_8192"].codebook_size, sizes["vqgan_8192"].codebook_dim) == (8192, 256)
    assert sizes["vqgan_8192"].legacy_beta is False
    assert (sizes["fsq_8000"].codebook_size, sizes["fsq_64000"].codebook_size) == (8000, 64000)
    assert (sizes["cvq_8192"].codebook_size, sizes["cvq_8192"].distance) == (8192, "cosine")
