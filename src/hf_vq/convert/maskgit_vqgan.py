"""Convert the official MaskGIT-VQGAN (``maskgit-vqgan-imagenet-f16-256.bin``, the frozen tokenizer of TiTok's
two-stage recipe) to ``MaskGITVQGANModel``.

Official key -> our key: ``encoder.down.{i}.block.{j}.*`` -> ``encoder.down_blocks.{i}.res_blocks.{j}.*``;
``{encoder,decoder}.mid.{j}.*`` -> ``*.mid_blocks.{j}.*``; ``decoder.up.{i}.*`` -> ``decoder.up_blocks.{L-1-i}.*``
(as TiTok's ``pixel_decoder``); ``nin_shortcut`` -> ``shortcut``; ``quantize.embedding.weight`` ->
``quantizer.codebook``; ``conv_in`` / ``norm_out`` / ``conv_out`` keep their names. The weights take
[0, 1] images; the converted model (``zero_one_pixels``) takes and returns [-1, 1]: same codes,
``decode_indices`` = 2 x official decode - 1 (before the official clamp).
"""

import os

from ..models.maskgit_vqgan import MaskGITVQGANConfig, MaskGITVQGANModel
from .common import (
    count_indexed,
    extract_state_dict,
    load_checkpoint,
    load_converted_weights,
    rename_state_dict,
    require_keys,
    save_converted,
)

SOURCE = "MaskGIT-VQGAN"
_RESNET_PARAM = r"(norm1|conv1|norm2|conv2)\.(weight|bias)"


def maskgit_vqgan_rename_rules(config: MaskGITVQGANConfig):
    num_levels = len(config.channel_multipliers)

    def up(match):
        return str(num_levels - 1 - int(match.group(1)))

    return [
        (r"(encoder|decoder)\.(conv_in|norm_out|conv_out)\.(weight|bias)", r"\1.\2.\3"),
        (rf"(encoder|decoder)\.mid\.(\d+)\.{_RESNET_PARAM}", r"\1.mid_blocks.\2.\3.\4"),
        (rf"encoder\.down\.(\d+)\.block\.(\d+)\.{_RESNET_PARAM}", r"encoder.down_blocks.\1.res_blocks.\2.\3.\4"),
        (r"encoder\.down\.(\d+)\.block\.(\d+)\.nin_shortcut\.weight", r"encoder.down_blocks.\1.res_blocks.\2.shortcut.weight"),
        (rf"decoder\.up\.(\d+)\.block\.(\d+)\.{_RESNET_PARAM}",
         lambda m: f"decoder.up_blocks.{up(m)}.res_blocks.{m.group(2)}.{m.group(3)}.{m.group(4)}"),
        (r"decoder\.up\.(\d+)\.block\.(\d+)\.nin_shortcut\.weight",
         lambda m: f"decoder.up_blocks.{up(m)}.res_blocks.{m.group(2)}.shortcut.weight"),
        (r"decoder\.up\.(\d+)\.upsample_conv\.(weight|bias)", lambda m: f"decoder.up_blocks.{up(m)}.upsample_conv.{m.group(2)}"),
        (r"quantize\.embedding\.weight", "quantizer.codebook"),
    ]


def infer_maskgit_vqgan_config(state_dict: dict, image_size: int = 256) -> MaskGITVQGANConfig:
    """The architecture from the weight shapes (the image size is not in the weights: 256 for the release)."""
    require_keys(state_dict, ["encoder.conv_in.weight", "encoder.conv_out.weight", "quantize.embedding.weight"], SOURCE)
    base = state_dict["encoder.conv_in.weight"].shape[0]
    num_levels = count_indexed(state_dict, "encoder.down.{}.")
    codebook_size, codebook_dim = state_dict["quantize.embedding.weight"].shape
    return MaskGITVQGANConfig(
        image_size=image_size, base_channels=base,
        channel_multipliers=[state_dict[f"encoder.down.{i}.block.0.conv1.weight"].shape[0] // base for i in range(num_levels)],
        num_res_blocks=count_indexed(state_dict, "encoder.mid.{}."), codebook_dim=codebook_dim, codebook_size=codebook_size,
        num_channels=state_dict["encoder.conv_in.weight"].shape[1],
    )


def convert_maskgit_vqgan_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                                     config: MaskGITVQGANConfig | None = None, image_size: int = 256) -> MaskGITVQGANModel:
    """Convert ``maskgit-vqgan-imagenet-f16-256.bin`` (a state dict); save it with its image processor to ``out_dir``."""
    state_dict = extract_state_dict(load_checkpoint(checkpoint), "state_dict", SOURCE)
    config = config or infer_maskgit_vqgan_config(state_dict, image_size)
    renamed, unmatched = rename_state_dict(state_dict, maskgit_vqgan_rename_rules(config), [])
    model = MaskGITVQGANModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    model.eval()
    save_converted(model, out_dir)
    return model


__all__ = ["convert_maskgit_vqgan_checkpoint", "infer_maskgit_vqgan_config", "maskgit_vqgan_rename_rules"]
