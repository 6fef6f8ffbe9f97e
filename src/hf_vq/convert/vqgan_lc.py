"""Convert an official VQGAN-LC checkpoint (``vqgan-gpt-lc``, e.g. ``vqgan-lc-100K-f16-dim8.pth``) to ``VQGANLCModel``.

The official ``VQModel`` (``vqgan-gpt-lc/models/models_vq.py``) is taming's encoder/decoder
(same blocks and key names) plus:

- ``tok_embeddings.weight`` (the frozen 100,000 x 768 CLIP codebook) -> ``quantizer.frozen_codebook``;
  when a checkpoint does not hold it, pass the codebook file the official code loads
  (``--local_embedding_path``, e.g. ``codebook-100K.pth``, a bare tensor) as ``codebook``;
- ``codebook_projection.{weight,bias}`` (``use_cblinear=1``) -> ``quantizer.codebook_projection.*``;
- ``discriminator.*`` and ``perceptual_loss.*`` (LPIPS) are dropped: not part of the tokenizer.

Training checkpoints hold the weights under ``model`` (with the optimizer and the argparse
``args``); they load with ``torch.load(weights_only=True)``.
"""

import os

import torch

from ..models.vqgan_lc import VQGANLCConfig, VQGANLCModel
from .common import (
    count_indexed,
    extract_state_dict,
    load_checkpoint,
    load_converted_weights,
    rename_state_dict,
    require_keys,
    resolve_config,
    save_converted,
)
from .taming import taming_rename_rules

SOURCE = "VQGAN-LC"
DROPPED_KEYS = [r"discriminator\..*", r"perceptual_loss\..*"]
VQGAN_LC_PRESETS = {"f16": VQGANLCConfig.f16, "f8": VQGANLCConfig.f8}
CODEBOOK_KEY = "tok_embeddings.weight"


def vqgan_lc_rename_rules(num_levels: int):
    """Taming's backbone table plus the LC codebook and projector."""
    return taming_rename_rules(num_levels) + [
        (r"tok_embeddings\.weight", "quantizer.frozen_codebook"),
        (r"codebook_projection\.(weight|bias)", r"quantizer.codebook_projection.\1"),
    ]


def infer_vqgan_lc_config(state_dict, image_size: int = 256) -> VQGANLCConfig:
    """The architecture read off the weight shapes (the official ddconfig lives in a yaml)."""
    require_keys(
        state_dict,
        ["encoder.conv_in.weight", "encoder.down.0.block.0.conv1.weight", "decoder.conv_in.weight",
         "quant_conv.weight", "codebook_projection.weight", CODEBOOK_KEY],
        SOURCE,
    )
    base_channels = state_dict["encoder.conv_in.weight"].shape[0]
    num_levels = count_indexed(state_dict, "encoder.down.{}.")
    channel_multipliers = [
        state_dict[f"encoder.down.{level}.block.0.conv1.weight"].shape[0] // base_channels for level in range(num_levels)
    ]
    attention_levels = [level for level in range(num_levels) if f"encoder.down.{level}.attn.0.q.weight" in state_dict]
    codebook_size, feature_dim = state_dict[CODEBOOK_KEY].shape
    return VQGANLCConfig(
        image_size=image_size,
        base_channels=base_channels,
        channel_multipliers=channel_multipliers,
        num_res_blocks=count_indexed(state_dict, "encoder.down.0.block.{}."),
        attn_resolutions=[image_size // 2**level for level in attention_levels],
        z_channels=state_dict["decoder.conv_in.weight"].shape[1],
        codebook_dim=state_dict["quant_conv.weight"].shape[0],
        codebook_size=codebook_size,
        codebook_feature_dim=feature_dim,
    )


def _load_codebook(path) -> torch.Tensor:
    if not os.path.isfile(path):
        raise ValueError(f"Codebook file {str(path)!r} does not exist.")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and "codebook" in loaded:
        loaded = loaded["codebook"]
    if not isinstance(loaded, torch.Tensor) or loaded.ndim != 2:
        raise ValueError(f"{str(path)!r} does not hold a (codes, features) codebook tensor.")
    return loaded.float()


def convert_vqgan_lc_checkpoint(
    ckpt_path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    codebook: str | os.PathLike | None = None,
    config: VQGANLCConfig | None = None,
    preset: str | None = None,
    image_size: int = 256,
) -> VQGANLCModel:
    """Convert a VQGAN-LC checkpoint; save it (with its image processor) to ``out_dir`` if given.

    Args:
        ckpt_path: the official ``.pth`` (weights under ``model``) or a bare state dict.
        out_dir: where to ``save_pretrained``; ``None`` only returns the model.
        codebook: the frozen codebook file (``codebook-100K.pth``), needed when the checkpoint lacks
            ``tok_embeddings.weight``; when both exist they must be equal.
        config / preset: the architecture ("f16", "f8"); by default inferred from the weights.
        image_size: training resolution recorded with an inferred or preset config (256).
    """
    state_dict = extract_state_dict(load_checkpoint(ckpt_path), "model", SOURCE)
    if codebook is not None:
        external = _load_codebook(codebook)
        inside = state_dict.get(CODEBOOK_KEY)
        if inside is not None and (inside.shape != external.shape or not torch.equal(inside.float(), external)):
            raise ValueError(f"The checkpoint's {CODEBOOK_KEY} differs from the codebook file {str(codebook)!r}.")
        state_dict[CODEBOOK_KEY] = external
    if CODEBOOK_KEY not in state_dict:
        raise ValueError(
            f"{str(ckpt_path)!r} does not hold the frozen codebook ({CODEBOOK_KEY}); pass the codebook file the "
            "official code loads (--codebook codebook-100K.pth)."
        )
    config = resolve_config(
        VQGAN_LC_PRESETS, preset, config, lambda size: infer_vqgan_lc_config(state_dict, size), image_size, SOURCE
    )
    renamed, unmatched = rename_state_dict(state_dict, vqgan_lc_rename_rules(len(config.channel_multipliers)), DROPPED_KEYS)
    renamed = {key: value.float() for key, value in renamed.items()}
    model = VQGANLCModel(config)
    load_converted_weights(model, renamed, unmatched, SOURCE)
    model.eval()
    save_converted(model, out_dir)
    return model


__all__ = ["VQGAN_LC_PRESETS", "convert_vqgan_lc_checkpoint", "infer_vqgan_lc_config", "vqgan_lc_rename_rules"]
