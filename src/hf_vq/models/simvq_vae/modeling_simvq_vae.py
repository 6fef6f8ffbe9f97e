"""SimVQ-VAE: SimpleCNN encoder -> SimVQ (frozen codebook, learned Linear) -> decoder."""

from ...quantizers import SimVQ
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_simvq_vae import SimVQVAEConfig


class SimVQVAEModel(SimpleCNNTokenizerModel):
    config: SimVQVAEConfig
    config_class = SimVQVAEConfig

    def build_quantizer(self, config: SimVQVAEConfig) -> SimVQ:
        return SimVQ(config.codebook_dim, config.codebook_size, beta=config.commitment_beta)


__all__ = ["SimVQVAEModel"]
