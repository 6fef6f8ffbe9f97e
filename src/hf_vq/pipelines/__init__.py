"""diffusers pipelines over hf_vq models (importing this registers hf_vq with diffusers' loader)."""

from .pipeline_vq_autoregressive import (
    VQAutoregressivePipeline,
    register_hf_vq_with_diffusers,
)

__all__ = ["VQAutoregressivePipeline", "register_hf_vq_with_diffusers"]
