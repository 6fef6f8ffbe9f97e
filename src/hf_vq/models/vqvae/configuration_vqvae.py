"""VQ-VAE configuration (SimpleCNN + VectorQuantizer)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import l2_norm_mode
from ..simple_cnn import SimpleCNNConfig


@strict
class VQVAEConfig(SimpleCNNConfig):
    """VQ-VAE on the SimpleCNN backbone: the VQ rows of the ImageNet 64x64 benchmark.

    Args:
        codebook_size: number of codes (512 / 2048 / 16384 in the ablations).
        codebook_dim: code channels (64 or 8).
        l2_norm: ``"search"`` (the benchmark's l2 rows: normalised search and output codes, losses
            on the raw latents), ``"full"`` (LlamaGen: normalised everywhere) or ``False``.
            ``True`` means ``"full"`` (what it meant in saved configs before the modes existed).
        commitment_beta: weight of the commitment term (0.25).
        use_ema: learn the codebook by EMA k-means instead of the codebook loss.
        ema_decay: EMA decay (0.99).
        ema_count_init: initial EMA count of every code: 1.0, or 0.0 as the benchmark code (its EMA row).
        entropy_weight: weight of the entropy regulariser (0 = off; 0.1 in the ablation).
        entropy_temperature: softmax temperature of the entropy regulariser (0.01).
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of that k-means.
    """

    model_type = "vqvae"

    codebook_size: int = 512
    codebook_dim: int = 64
    l2_norm: bool | str = False
    commitment_beta: float = 0.25
    use_ema: bool = False
    ema_decay: float = 0.99
    ema_count_init: float = 1.0
    entropy_weight: float = 0.0
    entropy_temperature: float = 0.01
    kmeans_init: bool = False
    kmeans_iters: int = 10

    def __post_init__(self, **kwargs):
        l2_norm_mode(self.l2_norm)  # raises on an unknown value
        super().__post_init__(**kwargs)


__all__ = ["VQVAEConfig"]
