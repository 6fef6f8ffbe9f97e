"""VQ-VAE configuration (SimpleCNN + VectorQuantizer)."""

from huggingface_hub.dataclasses import strict

from ..simple_cnn import SimpleCNNConfig


@strict
class VQVAEConfig(SimpleCNNConfig):
    """VQ-VAE on the SimpleCNN backbone: the VQ rows of the ImageNet 64x64 benchmark.

    Args:
        codebook_size: number of codes (512 / 2048 / 16384 in the ablations).
        codebook_dim: code channels (64 or 8).
        l2_norm: l2-normalise latents and codes before the search (cosine codes).
        commitment_beta: weight of the commitment term (0.25).
        use_ema: learn the codebook by EMA k-means instead of the codebook loss.
        ema_decay: EMA decay (0.99).
        entropy_weight: weight of the entropy regulariser (0 = off; 0.1 in the ablation).
        entropy_temperature: softmax temperature of the entropy regulariser (0.01).
        kmeans_init: initialise the codebook by k-means on the first training batch.
        kmeans_iters: Lloyd iterations of that k-means.
    """

    model_type = "vqvae"

    codebook_size: int = 512
    codebook_dim: int = 64
    l2_norm: bool = False
    commitment_beta: float = 0.25
    use_ema: bool = False
    ema_decay: float = 0.99
    entropy_weight: float = 0.0
    entropy_temperature: float = 0.01
    kmeans_init: bool = False
    kmeans_iters: int = 10


__all__ = ["VQVAEConfig"]
