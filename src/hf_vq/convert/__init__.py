"""Conversion of official checkpoints into hf_vq models (one module per source code base)."""

from .llamagen_gpt import (
    convert_llamagen_gpt_checkpoint,
    convert_llamagen_gpt_state_dict,
)

__all__ = ["convert_llamagen_gpt_checkpoint", "convert_llamagen_gpt_state_dict"]
