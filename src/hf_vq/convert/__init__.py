"""Exact conversion of official checkpoints into hf_vq models (explicit key maps, strict checks)."""

from .llamagen import (
    LLAMAGEN_PRESETS,
    convert_llamagen_checkpoint,
    infer_llamagen_config,
)
from .taming import TAMING_PRESETS, convert_taming_checkpoint, infer_taming_config

__all__ = [
    "LLAMAGEN_PRESETS",
    "TAMING_PRESETS",
    "convert_llamagen_checkpoint",
    "convert_taming_checkpoint",
    "infer_llamagen_config",
    "infer_taming_config",
]
