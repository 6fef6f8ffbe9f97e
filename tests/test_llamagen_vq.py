"""LlamaGen VQ: conversion of official checkpoints, parity with the official code, presets, training.

How the fixtures in ``tests/fixtures/llamagen_tiny_*.safetensors`` were made (the official code
is not part of this repository, so the script that ran it is not either):

1. ``tokenizer/tokenizer_image/vq_model.py`` of FoundationVision/LlamaGen was copied to a
   scratch directory outside the repository and imported from there.
2. ``VQModel(ModelArgs(codebook_size=64, codebook_embed_dim=8, z_channels=16,
   encoder_ch_mult=[2, 1], decoder_ch_mult=[2, 1]))`` was built, with its encoder and
   decoder replaced by ``Encoder(ch=32, ch_mult=[2, 1], num_res_blocks=1, z_channels=16)``
   and ``Decoder(ch=32, ch_mult=[2, 1], num_res_blocks=1, z_channels=16)`` (so the decoder
   has 2 ResNet blocks per level, attention at the lowest level, shortcuts on both sides).
3. All parameters were randomised with a fixed seed (codebook N(0, 1), GroupNorm affine near
   identity, small biases, default conv init) and rounded to float16 values, which are
   stored as float16 to keep the files small; the official model then ran in float32 in
   eval mode on ``pixel_values`` (2, 3, 32, 32) uniform in [-1, 1].
4. Saved: ``VQModel.state_dict()`` as is (including the ``quantize.codebook_used`` buffer,
   which must be dropped), the input, the official indices (2, 16, 16) and
   ``decode(quant)``.
"""

import argparse
import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoImageProcessor, AutoModel

from hf_vq import LlamaGenVQConfig, LlamaGenVQModel, VQImageProcessor
from hf_vq.cli.main import main as cli_main
from hf_vq.convert import convert_llamagen_checkpoint
from hf_vq.convert.common import rename_state_dict
from hf_vq.convert.llamagen import DROPPED_KEYS, LLAMAGEN_RENAME_RULES

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TOLERANCE = 1e-4


def official_state_dict(name="llamagen"):
    """The fixture weights, upcast to float32 as an official fp32 checkpoint stores them."""
    return {key: value.float() for key, value in load_file(os.path.join(FIXTURES, f"{name}_tiny_state_dict.safetensors")).items()}


def official_outputs():
    return load_file(os.path.join(FIXTURES, "llamagen_tiny_outputs.safetensors"))


def tiny_config(**overrides):
    fields = {
        "image_size": 32, "base_channels": 32, "channel_multipliers": [2, 1], "num_res_blocks": 1, "z_channels": 16,
        "codebook_size": 64, "codebook_dim": 8,
    }
    return LlamaGenVQConfig(**{**fields, **overrides})


def check_parity(model):
    expected = official_outputs()
    with torch.no_grad():
        encoded = model.encode(expected["pixel_values"])
        reconstruction = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices, expected["indices"])
    assert (reconstruction - expected["reconstruction"]).abs().max() < TOLERANCE
    assert (from_indices - expected["reconstruction"]).abs().max() < TOLERANCE


def test_llamagen_cli_conversion_matches_official_and_loads_with_auto_classes(tmp_path):
    checkpoint = tmp_path / "vq_ds16_c2i.pt"
    torch.save({"model": official_state_dict()}, checkpoint)
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "llamagen", str(checkpoint), str(out_dir), "--image-size", "32"]) == 0

    model = AutoModel.from_pretrained(out_dir).eval()
    assert isinstance(model, LlamaGenVQModel)
    assert model.config.attention_levels == [1] and model.config.l2_norm
    processor = AutoImageProcessor.from_pretrained(out_dir)
    assert isinstance(processor, VQImageProcessor) and processor.size == 32
    check_parity(model)


def test_training_checkpoint_with_args_and_ema_converts(tmp_path):
    """vq_train.py saves model, ema, optimizer states and its argparse Namespace."""
    weights = official_state_dict()
    shifted = {key: value + 1.0 if key == "post_quant_conv.bias" else value for key, value in weights.items()}
    checkpoint = tmp_path / "0005000.pt"
    torch.save(
        {"model": shifted, "ema": weights, "optimizer": {"state": {}, "param_groups": []}, "steps": 5000,
         "args": argparse.Namespace(vq_model="VQ-16", lr=1e-4)},
        checkpoint,
    )
    check_parity(convert_llamagen_checkpoint(checkpoint, weights="ema", image_size=32))
    model = convert_llamagen_checkpoint(checkpoint, image_size=32)
    assert torch.equal(model.post_quant_conv.bias, shifted["post_quant_conv.bias"])  # a copy: exact
    with pytest.raises(ValueError, match="weights must be one of"):
        convert_llamagen_checkpoint(checkpoint, weights="discriminator")


def test_every_official_key_is_mapped_and_only_codebook_used_dropped():
    state_dict = official_state_dict()
    renamed, unmatched = rename_state_dict(state_dict, LLAMAGEN_RENAME_RULES, DROPPED_KEYS)
    assert unmatched == []
    assert "quantize.codebook_used" in state_dict
    assert len(renamed) == len(state_dict) - 1  # only codebook_used is left out
    assert set(renamed) == set(LlamaGenVQModel(tiny_config()).state_dict())
    # LlamaGen's decoder.conv_blocks.0 is the LOWEST resolution, as our up_blocks.0.
    assert torch.equal(renamed["decoder.up_blocks.0.attn_blocks.0.q.weight"], state_dict["decoder.conv_blocks.0.attn.0.q.weight"])


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_checkpoint_with_missing_or_extra_key_raises_naming_it(tmp_path, change):
    state_dict = official_state_dict()
    if change == "missing":
        del state_dict["encoder.mid.1.proj_out.weight"]
        expected = "encoder.mid_block.attn.proj_out.weight"
    else:
        state_dict["quantize.embedding_ema.weight"] = torch.zeros(1)
        expected = "quantize.embedding_ema.weight"
    checkpoint = tmp_path / "vq.pt"
    torch.save({"model": state_dict}, checkpoint)
    with pytest.raises(ValueError, match=expected.replace(".", r"\.")):
        convert_llamagen_checkpoint(checkpoint, config=tiny_config())


def test_taming_checkpoint_is_rejected_with_unmatched_keys(tmp_path):
    checkpoint = tmp_path / "taming.pt"
    torch.save({"model": official_state_dict("taming")}, checkpoint)
    with pytest.raises(ValueError, match="Cannot infer the LlamaGen VQ architecture"):
        convert_llamagen_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=r"match no known LlamaGen VQ weight: \[.*'encoder\.down\.0\.block\.0\.conv1\.weight'"):
        convert_llamagen_checkpoint(checkpoint, config=tiny_config())


def test_wrong_preset_reports_shape_mismatches(tmp_path):
    checkpoint = tmp_path / "vq.pt"
    torch.save({"model": official_state_dict()}, checkpoint)
    with pytest.raises(ValueError, match="shape mismatches"):
        convert_llamagen_checkpoint(checkpoint, preset="vq-8")


def test_vq16_and_vq8_parameter_counts():
    # Independent references: sum(p.numel()) of the official VQ_16() / VQ_8() models of
    # LlamaGen's vq_model.py (VQ-16 also stated in the LlamaGen paper / REFERENCES.md).
    model = LlamaGenVQModel(LlamaGenVQConfig.vq_16())
    assert sum(p.numel() for p in model.parameters()) == 71_883_403
    assert sum(p.numel() for p in model.encoder.parameters()) == 29_298_176
    assert sum(p.numel() for p in model.decoder.parameters()) == 42_449_795
    assert model.downsample_factor == 16 and model.quant_conv.weight.shape == (8, 256, 1, 1)
    assert model.quantizer.codebook.shape == (16384, 8) and model.quantizer.l2_norm
    assert all(len(block.res_blocks) == 3 for block in model.decoder.up_blocks)
    assert [len(block.attn_blocks) for block in model.encoder.down_blocks] == [0, 0, 0, 0, 2]
    vq8 = LlamaGenVQModel(LlamaGenVQConfig.vq_8())
    assert sum(p.numel() for p in vq8.parameters()) == 70_109_835
    assert vq8.downsample_factor == 8


def test_codes_are_unit_norm_at_init_and_in_outputs():
    torch.manual_seed(0)
    model = LlamaGenVQModel(tiny_config()).eval()
    assert torch.allclose(model.quantizer.codebook.norm(dim=-1), torch.ones(64), atol=1e-6)
    with torch.no_grad():
        quantized = model.encode(official_outputs()["pixel_values"]).quantized
    assert torch.allclose(quantized.norm(dim=1), torch.ones_like(quantized[:, 0]), atol=1e-5)
    # The search compares normalised latents with normalised codes (cosine nearest neighbour).
    latents = F.normalize(model.encode_latents(official_outputs()["pixel_values"]), dim=1)
    similarity = torch.einsum("bchw,kc->bhwk", latents, F.normalize(model.quantizer.codebook, dim=-1))
    # The chosen code is a most similar one; the two float paths may order near-ties differently.
    chosen = model.encode(official_outputs()["pixel_values"]).indices
    chosen_similarity = similarity.gather(-1, chosen[..., None])[..., 0]
    torch.testing.assert_close(chosen_similarity, similarity.max(-1).values, rtol=0, atol=1e-5)


def test_tiny_model_trains(tmp_path):
    """A few Adam steps on ``model(x).loss`` (MSE + quantizer terms). The GAN-on training test
    waits for the project's GAN trainer, which is not in the tree yet."""
    torch.manual_seed(0)
    model = LlamaGenVQModel(tiny_config()).train()
    x = official_outputs()["pixel_values"][:, :, :16, :16]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.95))
    losses = []
    for _ in range(10):
        loss = model(x).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    model.save_pretrained(tmp_path)
    reloaded = LlamaGenVQModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.quantizer.codebook, model.quantizer.codebook)
