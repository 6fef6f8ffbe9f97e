"""VQ-VAE: SimpleCNN encoder -> VectorQuantizer (+ EMA / k-means / entropy behaviours) -> decoder."""

from ...quantizers import EMAUpdate, EntropyRegularization, KMeansInit, VectorQuantizer
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_vqvae import VQVAEConfig


class VQVAEModel(SimpleCNNTokenizerModel):
    config: VQVAEConfig
    config_class = VQVAEConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("l2_norm",)

    def build_quantizer(self, config: VQVAEConfig) -> VectorQuantizer:
        behaviours = []
        if config.kmeans_init:
            behaviours.append(KMeansInit(iters=config.kmeans_iters))
        if config.use_ema:
            behaviours.append(EMAUpdate(decay=config.ema_decay))
        if config.entropy_weight > 0:
            behaviours.append(EntropyRegularization(config.entropy_weight, config.entropy_temperature))
        return VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            l2_norm=config.l2_norm,
            beta=config.commitment_beta,
            behaviours=behaviours,
        )


__all__ = ["VQVAEModel"]
