"""LFQ-VAE configuration (SimpleCNN + LFQ)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import LFQ
from ..simple_cnn import SimpleCNNConfig


@strict
class LFQVAEConfig(SimpleCNNConfig):
    """LFQ-VAE: the LFQ rows of the ImageNet 64x64 benchmark.

    Args:
        codebook_dim: number of sign bits (9 -> 512 codes, 11 -> 2048, 14 -> 16384).
            ``codebook_size = 2 ** codebook_dim`` is derived (a different value is an error).
        commitment_beta: weight of the commitment term (0.25).
        entropy_weight: weight of the entropy regulariser (0.1; LFQ collapses without it).
        entropy_temperature: its softmax temperature (0.01).
    """

    model_type = "lfq_vae"

    codebook_dim: int = 9
    codebook_size: int | None = None
    commitment_beta: float = 0.25
    entropy_weight: float = 0.1
    entropy_temperature: float = 0.01

    def __post_init__(self, **kwargs):
        size = LFQ.codebook_size_for(self.codebook_dim)
        if self.codebook_size not in (None, size):
            raise ValueError(
                f"codebook_dim {self.codebook_dim} gives codebook_size {size}; got {self.codebook_size}. "
                "Set codebook_dim only."
            )
        self.codebook_size = size
        super().__post_init__(**kwargs)


__all__ = ["LFQVAEConfig"]
