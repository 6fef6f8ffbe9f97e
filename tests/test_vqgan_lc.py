"""VQGAN-LC: parity with the official code after conversion, frozen codebook, projector, save/load.

Fixtures ``tests/fixtures/vqgan_lc_tiny_*.safetensors`` were generated once by
``tests/fixtures/make_vqgan_lc_fixtures.py`` running the official ``vqgan-gpt-lc`` model code
(see that script for the tiny architecture and how the weights were drawn).
"""

import os

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel

from hf_vq import VQGANLCConfig, VQGANLCModel
from hf_vq.cli.main import main as cli_main
from hf_vq.quantizers import ProjectedCodebookQuantizer

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def official():
    state_dict = load_file(os.path.join(FIXTURES, "vqgan_lc_tiny_state_dict.safetensors"))
    outputs = load_file(os.path.join(FIXTURES, "vqgan_lc_tiny_outputs.safetensors"))
    return state_dict, outputs


def _write_checkpoint(path, state_dict):
    # The official training checkpoints: {"model": state_dict, "optimizer": ..., "epoch": ...}.
    torch.save({"model": state_dict, "epoch": 19}, path)
    return str(path)


def _check_parity(model, outputs):
    pixels = outputs["pixel_values"]
    with torch.no_grad():
        encoded = model.encode(pixels)
        reconstruction = model.decode(encoded.quantized).sample
        from_indices = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices, outputs["indices"])
    assert (reconstruction - outputs["reconstruction"]).abs().max() < TOLERANCE
    assert (from_indices - outputs["reconstruction"]).abs().max() < TOLERANCE
    # Our quantizer terms carry rate_q = 0.1; the official qloss does not.
    loss = model.encode(pixels).quantizer_loss
    torch.testing.assert_close(loss, 0.1 * outputs["quantizer_loss"][0], atol=1e-6, rtol=1e-4)


def test_converted_checkpoint_matches_the_official_model(official, tmp_path):
    state_dict, outputs = official
    checkpoint = _write_checkpoint(tmp_path / "vqgan-lc.pth", state_dict)
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "vqgan-lc", checkpoint, str(out_dir), "--image-size", "32"]) == 0
    model = AutoModel.from_pretrained(out_dir).eval()
    assert isinstance(model, VQGANLCModel)
    config = model.config
    assert (config.codebook_size, config.codebook_feature_dim, config.codebook_dim) == (64, 12, 4)
    assert list(config.channel_multipliers) == [1, 2] and list(config.attn_resolutions) == [16]
    _check_parity(model, outputs)


def test_codebook_given_as_a_separate_file(official, tmp_path):
    from hf_vq.convert.vqgan_lc import convert_vqgan_lc_checkpoint

    state_dict, outputs = official
    without = {key: value for key, value in state_dict.items() if key != "tok_embeddings.weight"}
    checkpoint = _write_checkpoint(tmp_path / "no-codebook.pth", without)
    with pytest.raises(ValueError, match="--codebook"):
        convert_vqgan_lc_checkpoint(checkpoint, image_size=32)
    codebook_file = tmp_path / "codebook-64.pth"
    torch.save(state_dict["tok_embeddings.weight"].float(), codebook_file)  # the official codebook: a bare tensor
    model = convert_vqgan_lc_checkpoint(checkpoint, codebook=codebook_file, image_size=32)
    _check_parity(model, outputs)
    torch.save(torch.zeros(64, 12), codebook_file)
    with pytest.raises(ValueError, match="differs"):
        convert_vqgan_lc_checkpoint(_write_checkpoint(tmp_path / "with.pth", state_dict), codebook=codebook_file,
                                    image_size=32)


def _tiny_config(**kwargs):
    return VQGANLCConfig(image_size=32, base_channels=32, channel_multipliers=[1, 2], num_res_blocks=1,
                         attn_resolutions=[16], z_channels=32, codebook_dim=4, codebook_size=50,
                         codebook_feature_dim=12, **kwargs)


def test_only_the_projector_and_backbone_train_the_codebook_stays_frozen(tmp_path):
    features = torch.randn(50, 12)
    file = tmp_path / "codebook.safetensors"
    save_file({"codebook": features}, str(file))
    model = VQGANLCModel.from_codebook(_tiny_config(), file)
    assert model.config.codebook_source == str(file)
    quantizer = model.quantizer
    assert isinstance(quantizer, ProjectedCodebookQuantizer)
    assert torch.equal(quantizer.frozen_codebook, features)
    assert all(parameter is not quantizer.frozen_codebook for parameter in model.parameters())
    # VQGAN-LC's projector init: N(0, dim^-0.5) (std 0.5 for dim 4; 48 weights, a loose check).
    assert 0.3 < quantizer.codebook_projection.weight.std().item() < 0.7

    before = {name: value.detach().clone() for name, value in model.named_parameters()}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    out = model(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert set(out.loss_terms) == {"reconstruction", "commitment", "codebook"}
    out.loss.backward()
    optimizer.step()
    assert torch.equal(quantizer.frozen_codebook, features)
    for name in ("quantizer.codebook_projection.weight", "encoder.conv_in.weight", "decoder.conv_out.weight"):
        assert not torch.equal(dict(model.named_parameters())[name], before[name]), name

    model.eval()
    model.save_pretrained(tmp_path / "saved")
    loaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    assert torch.equal(loaded.quantizer.frozen_codebook, features)
    pixels = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.encode(pixels).indices, model.encode(pixels).indices)
        torch.testing.assert_close(loaded(pixels).reconstruction, model(pixels).reconstruction, atol=1e-5, rtol=1e-5)


def test_search_and_lookup_use_the_projected_codebook():
    quantizer = ProjectedCodebookQuantizer(dim=4, codebook_size=30, feature_dim=6)
    quantizer.set_frozen_codebook(torch.randn(30, 6))
    z = torch.randn(7, 4)
    with torch.no_grad():
        table = quantizer.frozen_codebook @ quantizer.codebook_projection.weight.t() + quantizer.codebook_projection.bias
        expected = torch.cdist(z, table).argmin(1)
        out = quantizer(z)
    assert torch.equal(out.indices, expected)
    torch.testing.assert_close(out.quantized, table[expected])
    torch.testing.assert_close(quantizer.indices_to_codes(expected), table[expected])
    with pytest.raises(ValueError, match="frozen codebook"):
        quantizer.set_frozen_codebook(torch.randn(29, 6))


def test_presets():
    f16, f8 = VQGANLCConfig.f16(), VQGANLCConfig.f8()
    assert f16.downsample_factor == 16 and f16.codebook_dim == 8 and f16.codebook_size == 100000
    assert f8.downsample_factor == 8 and f8.codebook_dim == 4 and list(f8.attn_resolutions) == []


def test_cli_preset_names_agree_with_the_converter():
    from hf_vq.cli import convert as convert_cli
    from hf_vq.convert.vqgan_lc import VQGAN_LC_PRESETS

    assert set(convert_cli.VQGAN_LC_PRESET_NAMES) == set(VQGAN_LC_PRESETS)
