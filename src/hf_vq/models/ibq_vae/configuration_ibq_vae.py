"""IBQ-VAE configuration (SimpleCNN + IBQ)."""

from huggingface_hub.dataclasses import strict

from ..simple_cnn import SimpleCNNConfig


@strict
class IBQVAEConfig(SimpleCNNConfig):
    """IBQ-VAE: the IBQ rows of the ImageNet 64x64 benchmark (index backpropagation quantization).

    Args:
        codebook_size: number of codes (512 / 2048 / 16384 in the benchmark).
        codebook_dim: code channels (64).
        commitment_beta: weight of the commitment term (0.25).
        entropy_weight: weight of the entropy regulariser over softmax(z . c / T) (0.1, the benchmark's
            ``configs/imagenet64/ibqvae.yaml``; IBQ collapses without it).
        entropy_temperature: its temperature T (0.01).
    """

    model_type = "ibq_vae"

    codebook_size: int = 512
    codebook_dim: int = 64
    commitment_beta: float = 0.25
    entropy_weight: float = 0.1
    entropy_temperature: float = 0.01


__all__ = ["IBQVAEConfig"]
