"""SimVQ-VAE configuration (SimpleCNN + SimVQ)."""

from huggingface_hub.dataclasses import strict

from ..simple_cnn import SimpleCNNConfig


@strict
class SimVQVAEConfig(SimpleCNNConfig):
    """SimVQ-VAE: the SimVQ row of the ImageNet 64x64 benchmark (16384 codes, 100% usage).

    Args:
        codebook_size: number of codes.
        codebook_dim: code channels (the frozen codebook and the Linear reparameterisation).
        commitment_beta: weight of the commitment term (0.25).
    """

    model_type = "simvq_vae"

    codebook_size: int = 16384
    codebook_dim: int = 64
    commitment_beta: float = 0.25


__all__ = ["SimVQVAEConfig"]
