"""LFQ-VAE: SimpleCNN encoder -> LFQ (sign bits + entropy loss) -> decoder."""

from ...quantizers import LFQ
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_lfq_vae import LFQVAEConfig


class LFQVAEModel(SimpleCNNTokenizerModel):
    config: LFQVAEConfig
    config_class = LFQVAEConfig

    def build_quantizer(self, config: LFQVAEConfig) -> LFQ:
        return LFQ(
            config.codebook_dim,
            beta=config.commitment_beta,
            entropy_weight=config.entropy_weight,
            entropy_temperature=config.entropy_temperature,
        )


__all__ = ["LFQVAEModel"]
