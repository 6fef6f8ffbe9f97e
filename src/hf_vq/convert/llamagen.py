"""Convert a LlamaGen VQ tokenizer checkpoint (``vq_ds16_c2i.pt``, ``vq_ds8_c2i.pt``) to ``LlamaGenVQModel``.

Official key -> our key:

- ``encoder.conv_blocks.{i}.res.{j}`` / ``.attn.{j}`` -> ``encoder.down_blocks.{i}.res_blocks.{j}`` / ``.attn_blocks.{j}``
- ``decoder.conv_blocks.{i}`` -> ``decoder.up_blocks.{i}``: both run from the LOWEST resolution
  (``conv_blocks.0``) upwards, so the index is kept.
- ``{encoder,decoder}.mid.{0,1,2}`` -> ``*.mid_block.{res_1, attn, res_2}``
- ``nin_shortcut`` -> ``shortcut``; ``quantize.embedding.weight`` -> ``quantizer.codebook``.
- ``quantize.codebook_used`` (a training-time usage monitor of the last 65536 indices) is dropped.
"""

import os

from ..models.llamagen_vq import LlamaGenVQConfig, LlamaGenVQModel
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

SOURCE = "LlamaGen VQ"
DROPPED_KEYS = [r"quantize\.codebook_used"]
LLAMAGEN_PRESETS = {
    "vq-16": LlamaGenVQConfig.vq_16,
    "vq-8": LlamaGenVQConfig.vq_8,
}
WEIGHTS_KEYS = ("model", "ema")
_MID_NAMES = {"0": "res_1", "1": "attn", "2": "res_2"}

LLAMAGEN_RENAME_RULES = [
    *ENDPOINT_RULES,
    (r"(encoder|decoder)\.mid\.([02])\." + RESNET_PARAM, lambda m: f"{m.group(1)}.mid_block.{_MID_NAMES[m.group(2)]}.{m.group(3)}.{m.group(4)}"),
    (r"(encoder|decoder)\.mid\.1\." + ATTENTION_PARAM, r"\1.mid_block.attn.\2.\3"),
    (r"encoder\.conv_blocks\.(\d+)\.res\.(\d+)\." + RESNET_PARAM, r"encoder.down_blocks.\1.res_blocks.\2.\3.\4"),
    (r"encoder\.conv_blocks\.(\d+)\.res\.(\d+)\.nin_shortcut\.(weight|bias)", r"encoder.down_blocks.\1.res_blocks.\2.shortcut.\3"),
    (r"encoder\.conv_blocks\.(\d+)\.attn\.(\d+)\." + ATTENTION_PARAM, r"encoder.down_blocks.\1.attn_blocks.\2.\3.\4"),
    (r"encoder\.conv_blocks\.(\d+)\.downsample\.conv\.(weight|bias)", r"encoder.down_blocks.\1.downsample.conv.\2"),
    (r"decoder\.conv_blocks\.(\d+)\.res\.(\d+)\." + RESNET_PARAM, r"decoder.up_blocks.\1.res_blocks.\2.\3.\4"),
    (r"decoder\.conv_blocks\.(\d+)\.res\.(\d+)\.nin_shortcut\.(weight|bias)", r"decoder.up_blocks.\1.res_blocks.\2.shortcut.\3"),
    (r"decoder\.conv_blocks\.(\d+)\.attn\.(\d+)\." + ATTENTION_PARAM, r"decoder.up_blocks.\1.attn_blocks.\2.\3.\4"),
    (r"decoder\.conv_blocks\.(\d+)\.upsample\.conv\.(weight|bias)", r"decoder.up_blocks.\1.upsample.conv.\2"),
    *QUANTIZER_RULES,
]


def infer_llamagen_config(state_dict, image_size: int = 256) -> LlamaGenVQConfig:
    """Read the architecture off the weight shapes. ``l2_norm`` cannot be seen in weights: LlamaGen's
    released tokenizers use it (the default)."""
    require_keys(
        state_dict,
        ["encoder.conv_in.weight", "encoder.conv_blocks.0.res.0.conv1.weight", "encoder.conv_out.weight", "quantize.embedding.weight"],
        SOURCE,
    )
    base_channels = state_dict["encoder.conv_in.weight"].shape[0]
    num_levels = count_indexed(state_dict, "encoder.conv_blocks.{}.")
    codebook_size, codebook_dim = state_dict["quantize.embedding.weight"].shape
    return LlamaGenVQConfig(
        image_size=image_size,
        base_channels=base_channels,
        channel_multipliers=[
            state_dict[f"encoder.conv_blocks.{level}.res.0.conv1.weight"].shape[0] // base_channels
            for level in range(num_levels)
        ],
        num_res_blocks=count_indexed(state_dict, "encoder.conv_blocks.0.res.{}."),
        z_channels=state_dict["encoder.conv_out.weight"].shape[0],
        codebook_size=codebook_size,
        codebook_dim=codebook_dim,
    )


def convert_llamagen_checkpoint(
    ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    config: LlamaGenVQConfig | None = None,
    preset: str | None = None,
    image_size: int = 256,
    weights: str = "model",
) -> LlamaGenVQModel:
    """Convert a LlamaGen VQ checkpoint; save it (with its image processor) to ``out_dir`` if given.

    Args:
        ckpt_path: the ``.pt`` file (weights under ``"model"``; training checkpoints may add ``"ema"``).
        out_dir: where to ``save_pretrained``; ``None`` only returns the model.
        config: the architecture; by default inferred from the weight shapes.
        preset: instead of ``config``, one of ``LLAMAGEN_PRESETS`` ("vq-16", "vq-8").
        image_size: training resolution of an inferred or preset config (256); an explicit config keeps its own.
        weights: which weights of a training checkpoint to take, "model" or "ema".
    """
    if weights not in WEIGHTS_KEYS:
        raise ValueError(f"weights must be one of {WEIGHTS_KEYS}; got {weights!r}.")
    checkpoint = load_checkpoint(ckpt_path)
    if weights == "ema" and "ema" not in checkpoint:
        raise ValueError(f"{str(ckpt_path)!r} has no 'ema' weights (top-level keys: {sorted(checkpoint)}).")
    state_dict = extract_state_dict(checkpoint, weights, SOURCE)
    config = resolve_config(
        LLAMAGEN_PRESETS, preset, config, lambda size: infer_llamagen_config(state_dict, size), image_size, SOURCE
    )
    renamed, unmatched = rename_state_dict(state_dict, LLAMAGEN_RENAME_RULES, DROPPED_KEYS)
    model = LlamaGenVQModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    model.eval()
    save_converted(model, out_dir)
    return model


__all__ = ["LLAMAGEN_PRESETS", "LLAMAGEN_RENAME_RULES", "convert_llamagen_checkpoint", "infer_llamagen_config"]
