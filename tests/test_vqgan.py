"""Taming VQGAN: conversion of official checkpoints, parity with the official code, presets, training.

How the fixtures in ``tests/fixtures/taming_tiny_*.safetensors`` were made (the official code
is not part of this repository, so the script that ran it is not either):

1. ``taming/modules/diffusionmodules/model.py`` (Encoder, Decoder) and
   ``taming/modules/vqvae/quantize.py`` (VectorQuantizer2) of CompVis/taming-transformers
   were copied to a scratch directory outside the repository and imported from there.
2. A module with the attributes of ``taming.models.vqgan.VQModel`` (``encoder``, ``decoder``,
   ``quantize = VectorQuantizer2(64, 8, beta=0.25, sane_index_shape=True)``, ``quant_conv``,
   ``post_quant_conv``) was built with ddconfig ``ch=32, ch_mult=[2, 1], num_res_blocks=1,
   attn_resolutions=[32], resolution=32, z_channels=16, double_z=False, dropout=0``:
   attention at the full-resolution level, ResNet shortcuts in encoder and decoder.
3. All parameters were randomised with a fixed seed (codebook N(0, 0.3^2), GroupNorm affine
   near identity, small biases, default conv init) and rounded to float16 values, which are
   stored as float16 to keep the files small; the official model then ran in float32 in
   eval mode on ``pixel_values`` (2, 3, 32, 32) uniform in [-1, 1].
4. Saved: the state dict exactly as ``VQModel.state_dict()`` names it, plus two ``loss.*``
   entries as a Lightning checkpoint holds them (they must be dropped); the input, the
   official ``min_encoding_indices`` (2, 16, 16) and ``decoder(post_quant_conv(quant))``.
"""

import os
import sys
import types

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModel

from hf_vq import VQGANConfig, VQGANModel, VQImageProcessor
from hf_vq.cli.main import main as cli_main
from hf_vq.convert import convert_taming_checkpoint
from hf_vq.convert.common import rename_state_dict
from hf_vq.convert.taming import DROPPED_KEYS, taming_rename_rules

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TOLERANCE = 1e-4


def official_state_dict(name="taming"):
    """The fixture weights, upcast to float32 as an official fp32 checkpoint stores them."""
    return {key: value.float() for key, value in load_file(os.path.join(FIXTURES, f"{name}_tiny_state_dict.safetensors")).items()}


def official_outputs(name="taming"):
    return load_file(os.path.join(FIXTURES, f"{name}_tiny_outputs.safetensors"))


def write_lightning_checkpoint(path, state_dict, **extra):
    torch.save({"state_dict": state_dict, "epoch": 3, "global_step": 1234, **extra}, path)
    return str(path)


def tiny_config(**overrides):
    fields = {
        "image_size": 32, "base_channels": 32, "channel_multipliers": [2, 1], "num_res_blocks": 1, "attn_resolutions": [32],
        "z_channels": 16, "codebook_dim": 8, "codebook_size": 64,
    }
    return VQGANConfig(**{**fields, **overrides})


def test_taming_cli_conversion_matches_official_and_loads_with_auto_classes(tmp_path):
    checkpoint = write_lightning_checkpoint(tmp_path / "last.ckpt", official_state_dict())
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "taming", checkpoint, str(out_dir), "--image-size", "32"]) == 0

    model = AutoModel.from_pretrained(out_dir).eval()
    assert isinstance(model, VQGANModel)
    assert model.config.attention_levels == [0] and model.config.legacy_beta
    processor = AutoImageProcessor.from_pretrained(out_dir)
    assert isinstance(processor, VQImageProcessor) and processor.size == 32

    expected = official_outputs()
    with torch.no_grad():
        encoded = model.encode(expected["pixel_values"])
        reconstruction = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices, expected["indices"])
    assert (reconstruction - expected["reconstruction"]).abs().max() < TOLERANCE
    assert (from_indices - expected["reconstruction"]).abs().max() < TOLERANCE


def test_every_official_key_is_mapped_and_only_loss_keys_dropped():
    state_dict = official_state_dict()
    renamed, unmatched = rename_state_dict(state_dict, taming_rename_rules(num_levels=2), DROPPED_KEYS)
    assert unmatched == []
    dropped = set(state_dict) - {key for key in state_dict if not key.startswith("loss.")}
    assert dropped == {"loss.discriminator.main.0.weight", "loss.logvar"}
    assert len(renamed) == len(state_dict) - len(dropped)
    assert set(renamed) == set(VQGANModel(tiny_config()).state_dict())
    # taming's decoder.up.{i} counts levels by resolution; ours run lowest resolution first.
    assert torch.equal(renamed["decoder.up_blocks.0.upsample.conv.weight"], state_dict["decoder.up.1.upsample.conv.weight"])


def test_explicit_config_and_inferred_config_agree(tmp_path):
    checkpoint = write_lightning_checkpoint(tmp_path / "last.ckpt", official_state_dict())
    inferred = convert_taming_checkpoint(checkpoint, image_size=32)
    explicit = convert_taming_checkpoint(checkpoint, config=tiny_config())
    for key, value in inferred.state_dict().items():  # both copy the same checkpoint tensors: exact
        assert torch.equal(value, explicit.state_dict()[key])


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_checkpoint_with_missing_or_extra_key_raises_naming_it(tmp_path, change):
    state_dict = official_state_dict()
    if change == "missing":
        del state_dict["decoder.up.0.block.1.conv2.bias"]
        expected = "decoder.up_blocks.1.res_blocks.1.conv2.bias"
    else:
        state_dict["encoder.down.0.extra_conv.weight"] = torch.zeros(1)
        expected = "encoder.down.0.extra_conv.weight"
    checkpoint = write_lightning_checkpoint(tmp_path / "last.ckpt", state_dict)
    with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
        convert_taming_checkpoint(checkpoint, config=tiny_config())


def test_llamagen_checkpoint_is_rejected_with_unmatched_keys(tmp_path):
    wrapped = tmp_path / "vq.pt"
    torch.save({"model": official_state_dict("llamagen")}, wrapped)
    with pytest.raises(ValueError, match="does not look like a taming VQGAN checkpoint"):
        convert_taming_checkpoint(wrapped)
    llamagen = tmp_path / "vq_state_dict.pt"
    torch.save(official_state_dict("llamagen"), llamagen)
    with pytest.raises(ValueError, match="Cannot infer the taming VQGAN architecture"):
        convert_taming_checkpoint(llamagen)
    with pytest.raises(ValueError, match=r"match no known taming VQGAN weight: \['decoder\.conv_blocks"):
        convert_taming_checkpoint(llamagen, config=tiny_config())


def test_lightning_callback_classes_load_without_lightning(tmp_path, monkeypatch):
    """Lightning 1.x pickles its callback states keyed by the callback class."""
    module_names = ["pytorch_lightning", "pytorch_lightning.callbacks", "pytorch_lightning.callbacks.model_checkpoint"]
    for name in module_names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    ModelCheckpoint = type("ModelCheckpoint", (), {"__module__": module_names[-1]})
    sys.modules[module_names[-1]].ModelCheckpoint = ModelCheckpoint
    checkpoint = write_lightning_checkpoint(
        tmp_path / "last.ckpt", official_state_dict(), callbacks={ModelCheckpoint: {"best_model_score": torch.tensor(0.5)}}
    )
    for name in module_names:  # the converter must not need Lightning installed
        monkeypatch.delitem(sys.modules, name)
    model = convert_taming_checkpoint(checkpoint, image_size=32)
    assert model.config.codebook_size == 64


def test_checkpoint_with_arbitrary_python_objects_is_refused(tmp_path):
    path = tmp_path / "unsafe.ckpt"
    torch.save({"state_dict": official_state_dict(), "hook": os.getcwd}, path)
    with pytest.raises(ValueError, match="weights_only=True"):
        convert_taming_checkpoint(path)


def test_missing_file_and_unknown_preset_raise(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        convert_taming_checkpoint(tmp_path / "nope.ckpt")
    checkpoint = write_lightning_checkpoint(tmp_path / "last.ckpt", official_state_dict())
    with pytest.raises(ValueError, match="Unknown taming VQGAN preset"):
        convert_taming_checkpoint(checkpoint, preset="f8-1024")


def test_f16_presets_parameter_counts_match_official_architecture():
    # Independent references: sum(p.numel()) of the official Encoder + Decoder +
    # VectorQuantizer2 + quant_conv + post_quant_conv built from taming's
    # configs/imagenet_vqgan.yaml ddconfig (ch 128, ch_mult [1,1,2,2,4], 2 res blocks,
    # attn_resolutions [16], z 256, embed_dim 256) with n_embed 1024 and 16384.
    model = VQGANModel(VQGANConfig.taming_f16_1024())
    assert sum(p.numel() for p in model.parameters()) == 72_141_699
    assert sum(p.numel() for p in model.encoder.parameters()) == 29_298_176
    assert sum(p.numel() for p in model.decoder.parameters()) == 42_449_795
    assert model.config.attention_levels == [4] and model.downsample_factor == 16
    assert model.quantizer.codebook.shape == (1024, 256)
    large = VQGANConfig.taming_f16_16384()
    # Only the codebook differs: 15360 more codes of 256 channels.
    assert 72_141_699 + (large.codebook_size - 1024) * 256 == 76_073_859


def test_legacy_beta_puts_beta_on_the_codebook_term():
    x = official_outputs()["pixel_values"]
    for legacy in (True, False):
        torch.manual_seed(0)
        model = VQGANModel(tiny_config(legacy_beta=legacy)).train()
        terms = model(x).loss_terms
        ratio = (terms["codebook"] / terms["commitment"]).item()
        assert ratio == pytest.approx(0.25 if legacy else 4.0, rel=1e-5)


def test_config_rejects_bad_architectures():
    with pytest.raises(ValueError, match="match no level"):
        VQGANConfig(attn_resolutions=[20])
    with pytest.raises(ValueError, match="multiple of 32"):
        VQGANModel(tiny_config(base_channels=48))
    with pytest.raises(ValueError, match="at least one level"):
        VQGANConfig(channel_multipliers=[])


def test_tiny_model_trains(tmp_path):
    """A few Adam steps on ``model(x).loss`` (L1 + quantizer terms). The GAN-on training test
    waits for the project's GAN trainer, which is not in the tree yet."""
    torch.manual_seed(0)
    model = VQGANModel(tiny_config(attn_resolutions=[16])).train()
    x = official_outputs()["pixel_values"][:, :, :16, :16]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.5, 0.9))
    losses = []
    for _ in range(10):
        loss = model(x).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    assert model.last_layer.grad is not None
    model.save_pretrained(tmp_path)
    reloaded = VQGANModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.quantizer.codebook, model.quantizer.codebook)
