"""CVQ-VAE: SimpleCNN encoder -> VectorQuantizer + DeadCodeReinit anchors -> decoder."""

from ...quantizers import DeadCodeReinit, VectorQuantizer
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_cvq_vae import CVQVAEConfig


class CVQVAEModel(SimpleCNNTokenizerModel):
    config: CVQVAEConfig
    config_class = CVQVAEConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("distance",)

    def build_quantizer(self, config: CVQVAEConfig) -> VectorQuantizer:
        return VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            distance=config.distance,
            beta=config.commitment_beta,
            behaviours=[DeadCodeReinit(anchor=config.anchor, decay=config.usage_decay)],
        )


__all__ = ["CVQVAEModel"]
