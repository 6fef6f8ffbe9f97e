"""CVQ-VAE configuration (SimpleCNN + VectorQuantizer with dead-code anchors)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import ANCHORS, DISTANCES
from ..simple_cnn import SimpleCNNConfig


@strict
class CVQVAEConfig(SimpleCNNConfig):
    """CVQ-VAE (Zheng & Vedaldi 2023): online clustered codebook re-initialisation.

    Args:
        codebook_size: number of codes (512).
        codebook_dim: code channels (64).
        distance: "cosine" (official default: search by cosine, output raw codes) or "euclidean".
        anchor: "closest", "random" or "probabilistic" anchor features for dead codes.
        usage_decay: EMA decay of the code usage (0.99).
        commitment_beta: weight of the commitment term (0.25).
    """

    model_type = "cvq_vae"

    codebook_size: int = 512
    codebook_dim: int = 64
    distance: str = "cosine"
    anchor: str = "closest"
    usage_decay: float = 0.99
    commitment_beta: float = 0.25

    def __post_init__(self, **kwargs):
        if self.distance not in DISTANCES:
            raise ValueError(f"Unknown distance {self.distance!r}; choose one of {DISTANCES}.")
        if self.anchor not in ANCHORS:
            raise ValueError(f"Unknown anchor {self.anchor!r}; choose one of {ANCHORS}.")
        super().__post_init__(**kwargs)


__all__ = ["CVQVAEConfig"]
