"""TiTok: conversion parity with the official code, shapes, parameter counts, save/load, 1D tokens.

The fixtures ``tests/fixtures/titok_tiny_*.safetensors`` were made once with the official code by
``tests/fixtures/make_titok_fixtures.py`` (its docstring says how): official state dicts of two
tiny random TiTok models (the official ViT "small" size shrunk to width 32, 2 layers, 2 heads),
their [0, 1] input images, the official tokens and ``decode_tokens`` outputs.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from hf_vq import TiTokConfig, TiTokModel
from hf_vq.cli import convert as convert_cli
from hf_vq.cli.main import main as cli_main
from hf_vq.convert import TITOK_PRESETS, convert_titok_checkpoint
from hf_vq.generation.images import tokens_to_indices
from hf_vq.models.titok import configuration_titok

FIXTURES = Path(__file__).parent / "fixtures"
TOLERANCE = 1e-4
TINY_VIT = (32, 2, 2)  # what the fixture script made of the official "small" size


def fixture(name):
    tensors = load_file(FIXTURES / f"titok_tiny_{name}.safetensors")
    state_dict = {key[len("state."):]: value.float() for key, value in tensors.items() if key.startswith("state.")}
    return state_dict, tensors


def tiny_official_config(two_stage: bool, **overrides):
    """The fixture models' architecture, field by field (independent of the converter's inference)."""
    fields = {
        "image_size": 32, "num_latent_tokens": 6, "patch_size": 8, "decoder_patch_size": 8,
        "encoder_hidden_size": 32, "encoder_num_layers": 2, "encoder_num_heads": 2,
        "decoder_hidden_size": 32, "decoder_num_layers": 2, "decoder_num_heads": 2,
        "codebook_size": 16, "codebook_dim": 4, "l2_norm": two_stage,
        "decoder_type": "maskgit" if two_stage else "pixel", "legacy_latent_layout": two_stage, **overrides,
    }
    if fields["decoder_type"] in configuration_titok.MASKGIT_DECODER_TYPES:
        fields.update(
            maskgit_base_channels=32, maskgit_channel_multipliers=[1, 1, 2, 1], maskgit_num_res_blocks=1,
            maskgit_z_channels=8, maskgit_codebook_size=1024,
        )
    return TiTokConfig(**fields)


def assert_matches_official(model, tensors):
    pixel_values = tensors["pixel_values"] * 2 - 1  # official [0, 1] -> ours [-1, 1]
    expected = tensors["decoded"] * 2 - 1
    with torch.no_grad():
        encoded = model.encode(pixel_values)
        from_quantized = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(tensors["tokens"]).sample
    assert encoded.indices.shape == tensors["tokens"].shape
    assert torch.equal(encoded.indices, tensors["tokens"])
    assert (from_indices - expected).abs().max() < TOLERANCE
    assert (from_quantized - expected).abs().max() < TOLERANCE


@pytest.mark.parametrize("name", ["two_stage", "single_stage"])
def test_conversion_matches_official_tokens_and_decode(tmp_path, name):
    state_dict, tensors = fixture(name)
    checkpoint = tmp_path / "tokenizer_titok_tiny.bin"
    torch.save(state_dict, checkpoint)
    model = convert_titok_checkpoint(checkpoint, config=tiny_official_config(name == "two_stage"))
    assert model.config.zero_one_pixels
    assert_matches_official(model, tensors)


def test_training_loss_and_gradients_match_official():
    """One single-stage training step on the official weights: the loss terms and every parameter's gradient
    equal the official ones (the fixture holds the official gradients of L2 on [0, 1] pixels + quantizer_loss)."""
    from hf_vq.convert.titok import convert_titok_state_dict

    state_dict, tensors = fixture("single_stage")
    config = tiny_official_config(False)
    model = convert_titok_state_dict(state_dict, config).train()
    pixel_values = tensors["pixel_values"] * 2 - 1
    out = model(pixel_values)
    # Ours reconstructs in [-1, 1]: (ours - input) = 2 (official - input in [0, 1]), a factor 4 in the square.
    reconstruction_loss = ((out.reconstruction - pixel_values) ** 2).mean() / 4
    assert float(reconstruction_loss) == pytest.approx(float(tensors["loss.reconstruction"]), rel=1e-5)
    assert float(out.quantizer_loss) == pytest.approx(float(tensors["loss.quantizer"]), rel=1e-5)
    (reconstruction_loss + out.quantizer_loss).backward()
    # The official gradients, renamed and reshaped by the converter like the weights they belong to.
    official = {key[len("grad."):]: value for key, value in tensors.items() if key.startswith("grad.")}
    official = dict(convert_titok_state_dict(official, config).named_parameters())
    assert set(official) == {name for name, _ in model.named_parameters()}
    for name, parameter in model.named_parameters():
        scale = official[name].abs().max().clamp_min(1e-3)
        assert (parameter.grad - official[name]).abs().max() < 1e-4 * scale, name


def test_cli_variant_conversion_loads_with_auto_classes(tmp_path, monkeypatch):
    state_dict, tensors = fixture("two_stage")
    checkpoint = tmp_path / "tokenizer_titok_s128.bin"
    torch.save(state_dict, checkpoint)
    monkeypatch.setitem(TITOK_PRESETS, "s128", lambda: tiny_official_config(True))
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "titok", str(checkpoint), str(out_dir), "--variant", "s128"]) == 0
    model = AutoModel.from_pretrained(out_dir).eval()
    assert isinstance(model, TiTokModel)
    assert_matches_official(model, tensors)


def test_hub_folder_with_official_config_converts(tmp_path, monkeypatch):
    """A Hub folder (model.safetensors + the official config.json) needs no variant."""
    monkeypatch.setitem(configuration_titok.VIT_SIZES, "small", TINY_VIT)
    state_dict, tensors = fixture("single_stage")
    folder = tmp_path / "tokenizer_titok_tiny_imagenet"
    folder.mkdir()
    save_file(state_dict, folder / "model.safetensors")
    official = {
        "experiment": {"tokenizer_checkpoint": "tokenizer_titok_tiny.bin"},
        "model": {"vq_model": {
            "codebook_size": 16, "token_size": 4, "use_l2_norm": False, "commitment_cost": 0.25,
            "vit_enc_model_size": "small", "vit_dec_model_size": "small", "vit_enc_patch_size": 8,
            "vit_dec_patch_size": 8, "num_latent_tokens": 6, "finetune_decoder": False, "is_legacy": False,
        }},
        "dataset": {"preprocessing": {"crop_size": 32}},
    }
    (folder / "config.json").write_text(json.dumps(official))
    model = convert_titok_checkpoint(folder)
    assert model.config.to_diff_dict() == tiny_official_config(False).to_diff_dict()
    assert_matches_official(model, tensors)


@pytest.mark.parametrize("name", ["two_stage", "single_stage"])
def test_config_inferred_from_weights(name, monkeypatch):
    from hf_vq.convert.titok import infer_titok_config

    monkeypatch.setitem(configuration_titok.VIT_SIZES, "small", TINY_VIT)
    state_dict, _ = fixture(name)
    inferred = infer_titok_config(state_dict)
    assert inferred.to_diff_dict() == tiny_official_config(name == "two_stage").to_diff_dict()


def test_unknown_width_cannot_be_inferred():
    from hf_vq.convert.titok import infer_titok_config

    with pytest.raises(ValueError, match="width 32 is not an official TiTok size"):
        infer_titok_config(fixture("two_stage")[0])


@pytest.mark.parametrize("change", ["missing", "extra", "shape"])
def test_missing_extra_or_mismatched_keys_raise_naming_them(tmp_path, change):
    state_dict, _ = fixture("two_stage")
    if change == "missing":
        del state_dict["pixel_decoder.up.1.block.0.nin_shortcut.weight"]
        expected = "pixel_decoder.up_blocks.2.res_blocks.0.shortcut.weight"
    elif change == "extra":
        state_dict["encoder.transformer.0.attn.extra"] = torch.zeros(1)
        expected = "encoder.transformer.0.attn.extra"
    else:
        state_dict["latent_tokens"] = torch.zeros(7, 32)
        expected = r"encoder\.latent_tokens: checkpoint \(7, 32\)"
    checkpoint = tmp_path / "tokenizer.bin"
    torch.save(state_dict, checkpoint)
    with pytest.raises(ValueError, match=expected if change == "shape" else expected.replace(".", r"\.")):
        convert_titok_checkpoint(checkpoint, config=tiny_official_config(True))


def test_cli_variant_names_match_presets():
    assert set(convert_cli.TITOK_VARIANT_NAMES) == set(TITOK_PRESETS)


@pytest.mark.parametrize(
    ("preset", "parameters"),
    [("titok_s128", 83_674_639), ("titok_b64", 204_814_095), ("titok_l32", 641_054_735)],
)
def test_official_parameter_counts_and_shapes(preset, parameters):
    """The counts the TiTok README gives, and every released size/token count runs end to end (meta device)."""
    config = getattr(TiTokConfig, preset)()
    with torch.device("meta"):
        model = TiTokModel(config)
        latents = model.encoder(torch.empty(2, 3, 256, 256))
        images = model.decode_latents(latents)
    assert model.num_parameters() == parameters
    assert latents.shape == (2, 12, config.num_latent_tokens)
    assert images.shape == (2, 3, 256, 256)


@pytest.mark.parametrize("preset", ["titok_bl64_vq8k", "titok_bl128_vq8k", "titok_sl256_vq8k"])
def test_single_stage_presets_shapes(preset):
    config = getattr(TiTokConfig, preset)()
    with torch.device("meta"):
        model = TiTokModel(config)
        latents = model.encoder(torch.empty(1, 3, 256, 256))
        images = model.decode_latents(latents)
    assert model.pixel_decoder is None and not config.l2_norm
    assert latents.shape == (1, 64, config.num_latent_tokens) and images.shape == (1, 3, 256, 256)


def tiny_model(num_latent_tokens=32, decoder_type="pixel"):
    torch.manual_seed(0)
    return TiTokModel(tiny_official_config(False, num_latent_tokens=num_latent_tokens, decoder_type=decoder_type,
                                           legacy_latent_layout=decoder_type == "maskgit", zero_one_pixels=False))


@pytest.mark.parametrize("num_latent_tokens", [32, 64, 128])
@pytest.mark.parametrize("decoder_type", ["pixel", "maskgit", "conv"])
def test_shapes_for_every_token_count(num_latent_tokens, decoder_type):
    model = tiny_model(num_latent_tokens, decoder_type).train()
    pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
    out = model(pixel_values)
    assert out.indices.shape == (2, num_latent_tokens) and out.quantized.shape == (2, 4, num_latent_tokens)
    assert out.reconstruction.shape == pixel_values.shape
    out.loss.backward()
    assert model.encoder.latent_tokens.grad.abs().sum() > 0 and model.encoder.patch_embed.weight.grad.abs().sum() > 0
    if decoder_type == "maskgit":
        assert model.decode_logits(out.quantized).shape == (2, 1024, 4, 4)
    if decoder_type == "conv":
        assert model.pixel_codebook is None and model.decoder.head.out_features == 8  # maskgit_z_channels
        assert model.pixel_decoder.conv_out.weight.grad.abs().sum() > 0


def test_conv_decoder_paints_across_cells_where_the_pixel_head_does_not():
    """``decoder_type="conv"`` has no per-cell pixel head: a change to one grid cell's output reaches pixels
    cells away (the MaskGIT decoder convolves across cells). The single-stage "pixel" decoder's per-cell head
    output reaches only the pixels of its cell and the 1 px ring its final 3x3 conv sees."""
    torch.manual_seed(0)
    model = tiny_model(16, "conv").eval()
    with torch.no_grad():
        latents = model.decoder(torch.randn(1, 4, 16))  # (1, z, 4, 4) grid of 8 px cells
        changed = latents.clone()
        changed[:, :, 0, 0] += 1.0
        difference = (model.pixel_decoder(changed) - model.pixel_decoder(latents)).abs().amax(dim=1)[0]
    assert difference[16:, 16:].amax() > 1e-4  # two cells away from the changed cell (0, 0) in both directions
    pixel = tiny_model(16, "pixel").eval()
    cell = pixel.config.decoder_patch_size
    with torch.no_grad():
        head = torch.randn(1, 3, 32, 32)  # the head's per-cell pixels before the final 3x3 conv
        changed = head.clone()
        changed[:, :, :cell, :cell] += 1.0
        difference = (pixel.decoder.conv_out(changed) - pixel.decoder.conv_out(head)).abs().amax(dim=1)[0]
    assert difference[: cell + 1, : cell + 1].amax() > 0
    assert difference[cell + 1 :, :].amax() == 0 and difference[:, cell + 1 :].amax() == 0
    with pytest.raises(ValueError, match='needs decoder_type="maskgit"'):
        model.decode_logits(torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match="MaskGIT decoder upsamples by 8"):
        tiny_official_config(False, decoder_type="conv", decoder_patch_size=4)


@pytest.mark.parametrize("decoder_type", ["maskgit", "conv"])
def test_save_load_round_trip(tmp_path, decoder_type):
    model = tiny_model(16, decoder_type).eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, TiTokModel)
    pixel_values = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        a, b = model.encode(pixel_values), loaded.encode(pixel_values)
        assert torch.equal(a.indices, b.indices)
        assert torch.allclose(model.decode_indices(a.indices).sample, loaded.decode_indices(b.indices).sample, atol=1e-6)


def test_autoregressive_tokens_decode():
    """GPT samples are (B, N): they go to decode_indices as they are."""
    model = tiny_model(8).eval()
    tokens = torch.randint(0, 16, (3, 8))
    indices = tokens_to_indices(model, tokens)
    assert indices.shape == (3, 8)
    with torch.no_grad():
        images = model.decode_indices(indices).sample
    assert images.shape == (3, 3, 32, 32) and torch.isfinite(images).all()


def test_bad_inputs_raise_clear_errors():
    model = tiny_model(8).eval()
    with pytest.raises(ValueError, match="learned positions for 32x32 images only"):
        model.encode(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="sequences of 8 tokens"):
        model.decode_indices(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"indices must have shape \(batch, num_tokens\)"):
        model.decode_indices(torch.zeros(1, 2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(batch, 4, 8\)"):
        model.decode(torch.zeros(1, 4, 9))
    with pytest.raises(ValueError, match="MaskGIT decoder upsamples by 8"):
        tiny_official_config(True, decoder_patch_size=4)


def test_init_follows_the_official_code():
    """The official blocks are ``nn.MultiheadAttention``: the official ``_init_weights`` (Linear / Conv only)
    leaves its fused ``in_proj_weight`` at PyTorch's Xavier-uniform, while ``out_proj``, the MLPs, the patch
    embedding, projections and head get N(0, 0.02) and the embeddings N(0, width^-1). At width 64 Xavier is
    4.4 x wider than 0.02; a small qkv init makes attention uniform and slow to learn."""
    width = 64
    fields = {
        "image_size": 64, "num_latent_tokens": 16, "patch_size": 16, "decoder_patch_size": 16, "encoder_hidden_size": width,
        "encoder_num_layers": 2, "encoder_num_heads": 4, "decoder_hidden_size": width, "decoder_num_layers": 2,
        "decoder_num_heads": 4, "codebook_size": 64, "codebook_dim": 8, "l2_norm": False, "decoder_type": "pixel",
        "legacy_latent_layout": False,
    }
    torch.manual_seed(0)
    model = TiTokModel(TiTokConfig(**fields))
    reference = torch.nn.MultiheadAttention(width, 4).in_proj_weight.detach()  # what the official blocks start from
    bound = (6 / (width + 3 * width)) ** 0.5  # Xavier-uniform over the stacked (3 width, width) matrix
    for stack in (model.encoder.transformer, model.decoder.transformer):
        for block in stack.blocks:
            qkv = block.attn.qkv.weight.detach()
            assert qkv.abs().max() <= bound and qkv.abs().max() > 0.95 * bound
            assert float(qkv.std()) == pytest.approx(float(reference.std()), rel=0.05)
            assert float(qkv.std()) == pytest.approx(bound / 3**0.5, rel=0.05)
            assert torch.equal(block.attn.qkv.bias, torch.zeros(3 * width))
            for linear in (block.attn.proj, block.mlp.fc1, block.mlp.fc2):
                assert float(linear.weight.std()) == pytest.approx(0.02, rel=0.1) and not linear.bias.any()
    for linear in (model.encoder.patch_embed, model.encoder.proj_out, model.decoder.embed, model.decoder.head):
        assert float(linear.weight.std()) == pytest.approx(0.02, rel=0.15)
    for embedding in (model.encoder.position_embedding, model.encoder.latent_tokens, model.decoder.mask_token):
        assert float(embedding.std()) == pytest.approx(width**-0.5, rel=0.2)
    # initializer_range replaces the 0.02 (a narrow model's shrink rule); Xavier and the embeddings stay.
    wider = TiTokModel(TiTokConfig(**fields, initializer_range=0.07))
    assert float(wider.decoder.head.weight.std()) == pytest.approx(0.07, rel=0.1)
    assert float(wider.decoder.transformer.blocks[0].attn.qkv.weight.std()) == pytest.approx(bound / 3**0.5, rel=0.05)
    with pytest.raises(ValueError, match="initializer_range must be a positive number"):
        TiTokConfig(initializer_range=0.0)
