"""IBQ-VAE: SimpleCNN encoder -> IBQ (argmax of z . c, gradient through the soft assignment) -> decoder."""

from ...quantizers import IBQ
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_ibq_vae import IBQVAEConfig


class IBQVAEModel(SimpleCNNTokenizerModel):
    config: IBQVAEConfig
    config_class = IBQVAEConfig

    def build_quantizer(self, config: IBQVAEConfig) -> IBQ:
        return IBQ(
            config.codebook_dim,
            config.codebook_size,
            beta=config.commitment_beta,
            entropy_weight=config.entropy_weight,
            entropy_temperature=config.entropy_temperature,
        )


__all__ = ["IBQVAEModel"]
