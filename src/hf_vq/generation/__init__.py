"""Sampling image tokens from autoregressive GPTs: filtering, guidance, the KV-cached loop, image helpers.

gFID of the samples: ``hf_vq.evaluation.compute_gfid`` (generation never imports evaluation).
"""

from .images import (
    generate_images,
    generate_samples,
    make_grid,
    to_uint8,
    tokens_to_indices,
)
from .sampling import (
    DEFAULT_GUIDANCE_SCALE,
    classifier_free_guidance,
    filter_top_k,
    filter_top_p,
    generate,
    guidance_active,
    sample_from_logits,
)

__all__ = [
    "DEFAULT_GUIDANCE_SCALE",
    "classifier_free_guidance",
    "filter_top_k",
    "filter_top_p",
    "generate",
    "generate_images",
    "generate_samples",
    "guidance_active",
    "make_grid",
    "sample_from_logits",
    "to_uint8",
    "tokens_to_indices",
]
