"""MaskGIT-VQGAN (TiTok's proxy tokenizer): conversion parity with the official code, CLI, save/load.

``tests/fixtures/maskgit_vqgan_tiny.safetensors`` was made once with the official
``modeling/modules/maskgit_vqgan.py`` by ``tests/fixtures/make_maskgit_vqgan_fixtures.py``.
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from hf_vq import MaskGITVQGANConfig, MaskGITVQGANModel
from hf_vq.cli.main import main as cli_main
from hf_vq.convert import convert_maskgit_vqgan_checkpoint

FIXTURE = Path(__file__).parent / "fixtures" / "maskgit_vqgan_tiny.safetensors"


def official_checkpoint(tmp_path):
    tensors = load_file(FIXTURE)
    state_dict = {key[len("state."):]: value.float() for key, value in tensors.items() if key.startswith("state.")}
    path = tmp_path / "maskgit-vqgan-tiny.bin"
    torch.save(state_dict, path)
    return path, tensors


def test_conversion_matches_official_codes_and_decode(tmp_path):
    path, tensors = official_checkpoint(tmp_path)
    model = convert_maskgit_vqgan_checkpoint(path, image_size=32)
    # Independent of the converter's shape inference: the fixture's architecture, field by field.
    assert model.config.to_diff_dict() == MaskGITVQGANConfig(
        image_size=32, base_channels=32, channel_multipliers=[1, 1, 2, 1], num_res_blocks=1, codebook_dim=8,
        codebook_size=64).to_diff_dict()
    with torch.no_grad():
        encoded = model.encode(tensors["pixel_values"] * 2 - 1)  # official [0, 1] -> ours [-1, 1]
        decoded = model.decode_indices(encoded.indices).sample
    assert torch.equal(encoded.indices.flatten(1), tensors["codes"])
    assert (decoded - (tensors["decoded"] * 2 - 1)).abs().max() < 1e-4


def test_cli_conversion_loads_with_auto_classes(tmp_path):
    path, tensors = official_checkpoint(tmp_path)
    assert cli_main(["convert", "maskgit-vqgan", str(path), str(tmp_path / "out"), "--image-size", "32"]) == 0
    model = AutoModel.from_pretrained(tmp_path / "out")
    assert isinstance(model, MaskGITVQGANModel)
    with torch.no_grad():
        assert torch.equal(model.encode(tensors["pixel_values"] * 2 - 1).indices.flatten(1), tensors["codes"])


def test_released_size():
    with torch.device("meta"):
        model = MaskGITVQGANModel(MaskGITVQGANConfig())
    # Official PretrainedTokenizer (encoder + decoder + 1024 x 256 codebook), counted with the official code.
    assert model.num_parameters() == 54_515_587
    assert model.downsample_factor == 16  # 16 x 16 codes at 256 px: TiTok's decoder grid


def test_missing_key_is_named(tmp_path):
    path, _ = official_checkpoint(tmp_path)
    state_dict = torch.load(path, weights_only=True)
    del state_dict["decoder.conv_out.bias"]
    torch.save(state_dict, path)
    with pytest.raises(ValueError, match="decoder.conv_out.bias"):
        convert_maskgit_vqgan_checkpoint(path, image_size=32)
