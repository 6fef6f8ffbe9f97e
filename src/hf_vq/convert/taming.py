"""Convert a taming-transformers VQGAN checkpoint (``VQModel`` Lightning ``.ckpt``) to ``VQGANModel``.

Official key -> our key (``L`` = number of resolution levels):

- ``{encoder,decoder}.mid.block_1 / attn_1 / block_2`` -> ``*.mid_block.res_1 / attn / res_2``
- ``encoder.down.{i}.block.{j}`` -> ``encoder.down_blocks.{i}.res_blocks.{j}``
- ``encoder.down.{i}.attn.{j}`` -> ``encoder.down_blocks.{i}.attn_blocks.{j}``
- ``decoder.up.{i}.*`` -> ``decoder.up_blocks.{L-1-i}.*``: taming indexes the decoder levels by
  resolution (``up.{L-1}`` runs first), ours run in execution order.
- ``nin_shortcut`` -> ``shortcut``; ``quantize.embedding.weight`` -> ``quantizer.codebook``.
- ``loss.*`` (LPIPS and discriminator) is dropped: it is not part of the tokenizer.
"""

import os

from ..models.vqgan import VQGANConfig, VQGANModel
from .common import (
    ATTENTION_PARAM,
    ENDPOINT_RULES,
    QUANTIZER_RULES,
    RESNET_PARAM,
    count_indexed,
    extract_state_dict,
    load_checkpoint,
    load_converted_weights,
    rename_state_dict,
    require_keys,
    resolve_config,
    save_converted,
)

SOURCE = "taming VQGAN"
DROPPED_KEYS = [r"loss\..*"]
TAMING_PRESETS = {
    "f16-1024": VQGANConfig.taming_f16_1024,
    "f16-16384": VQGANConfig.taming_f16_16384,
}
_MID_NAMES = {"block_1": "res_1", "block_2": "res_2"}


def taming_rename_rules(num_levels: int):
    """The (pattern, replacement) table from taming keys to ``VQGANModel`` keys."""

    def up_block(match):
        # taming's decoder.up.0 is the highest resolution; our decoder level 0 is the lowest.
        return str(num_levels - 1 - int(match.group(1)))

    return [
        *ENDPOINT_RULES,
        (
            rf"(encoder|decoder)\.mid\.(block_1|block_2)\.{RESNET_PARAM}",
            lambda m: f"{m.group(1)}.mid_block.{_MID_NAMES[m.group(2)]}.{m.group(3)}.{m.group(4)}",
        ),
        (rf"(encoder|decoder)\.mid\.attn_1\.{ATTENTION_PARAM}", r"\1.mid_block.attn.\2.\3"),
        (rf"encoder\.down\.(\d+)\.block\.(\d+)\.{RESNET_PARAM}", r"encoder.down_blocks.\1.res_blocks.\2.\3.\4"),
        (r"encoder\.down\.(\d+)\.block\.(\d+)\.nin_shortcut\.(weight|bias)", r"encoder.down_blocks.\1.res_blocks.\2.shortcut.\3"),
        (rf"encoder\.down\.(\d+)\.attn\.(\d+)\.{ATTENTION_PARAM}", r"encoder.down_blocks.\1.attn_blocks.\2.\3.\4"),
        (r"encoder\.down\.(\d+)\.downsample\.conv\.(weight|bias)", r"encoder.down_blocks.\1.downsample.conv.\2"),
        (rf"decoder\.up\.(\d+)\.block\.(\d+)\.{RESNET_PARAM}",
         lambda m: f"decoder.up_blocks.{up_block(m)}.res_blocks.{m.group(2)}.{m.group(3)}.{m.group(4)}"),
        (r"decoder\.up\.(\d+)\.block\.(\d+)\.nin_shortcut\.(weight|bias)",
         lambda m: f"decoder.up_blocks.{up_block(m)}.res_blocks.{m.group(2)}.shortcut.{m.group(3)}"),
        (rf"decoder\.up\.(\d+)\.attn\.(\d+)\.{ATTENTION_PARAM}",
         lambda m: f"decoder.up_blocks.{up_block(m)}.attn_blocks.{m.group(2)}.{m.group(3)}.{m.group(4)}"),
        (r"decoder\.up\.(\d+)\.upsample\.conv\.(weight|bias)", lambda m: f"decoder.up_blocks.{up_block(m)}.upsample.conv.{m.group(2)}"),
        *QUANTIZER_RULES,
    ]


def infer_taming_config(state_dict, image_size: int = 256) -> VQGANConfig:
    """Read the architecture off the weight shapes (taming keeps its ``ddconfig`` in a separate yaml).

    ``image_size`` is the training resolution (256 for the released ImageNet models); the
    attention levels found in the weights are expressed as ``attn_resolutions`` relative to it.
    """
    require_keys(
        state_dict,
        ["encoder.conv_in.weight", "encoder.down.0.block.0.conv1.weight", "decoder.conv_in.weight", "quantize.embedding.weight"],
        SOURCE,
    )
    base_channels = state_dict["encoder.conv_in.weight"].shape[0]
    num_levels = count_indexed(state_dict, "encoder.down.{}.")
    channel_multipliers = [
        state_dict[f"encoder.down.{level}.block.0.conv1.weight"].shape[0] // base_channels for level in range(num_levels)
    ]
    attention_levels = [level for level in range(num_levels) if f"encoder.down.{level}.attn.0.q.weight" in state_dict]
    codebook_size, codebook_dim = state_dict["quantize.embedding.weight"].shape
    return VQGANConfig(
        image_size=image_size,
        base_channels=base_channels,
        channel_multipliers=channel_multipliers,
        num_res_blocks=count_indexed(state_dict, "encoder.down.0.block.{}."),
        attn_resolutions=[image_size // 2**level for level in attention_levels],
        z_channels=state_dict["decoder.conv_in.weight"].shape[1],
        codebook_dim=codebook_dim,
        codebook_size=codebook_size,
        legacy_beta=True,
    )


def convert_taming_checkpoint(
    ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    config: VQGANConfig | None = None,
    preset: str | None = None,
    image_size: int = 256,
) -> VQGANModel:
    """Convert a taming VQGAN checkpoint; save it (with its image processor) to ``out_dir`` if given.

    Args:
        ckpt_path: the Lightning ``.ckpt`` (weights under ``state_dict``) or a bare state dict.
        out_dir: where to ``save_pretrained``; ``None`` only returns the model.
        config: the architecture; by default inferred from the weight shapes.
        preset: instead of ``config``, one of ``TAMING_PRESETS`` ("f16-1024", "f16-16384").
        image_size: training resolution of an inferred or preset config (256); an explicit config keeps its own.
    """
    state_dict = extract_state_dict(load_checkpoint(ckpt_path), "state_dict", SOURCE)
    config = resolve_config(
        TAMING_PRESETS, preset, config, lambda size: infer_taming_config(state_dict, size), image_size, SOURCE
    )
    renamed, unmatched = rename_state_dict(state_dict, taming_rename_rules(len(config.channel_multipliers)), DROPPED_KEYS)
    model = VQGANModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    model.eval()
    save_converted(model, out_dir)
    return model


__all__ = ["TAMING_PRESETS", "convert_taming_checkpoint", "infer_taming_config", "taming_rename_rules"]
