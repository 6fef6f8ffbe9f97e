"""VQGAN-CVQ: VQGANEncoder -> quant_conv -> VectorQuantizer + DeadCodeReinit anchors -> post_quant_conv -> VQGANDecoder."""

from ...quantizers import DeadCodeReinit, VectorQuantizer
from ..vqgan import VQGANModel
from .configuration_vqgan_cvq import VQGANCVQConfig


class VQGANCVQModel(VQGANModel):
    config: VQGANCVQConfig
    config_class = VQGANCVQConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("distance",)

    def build_quantizer(self, config: VQGANCVQConfig) -> VectorQuantizer:
        return VectorQuantizer(
            dim=config.codebook_dim,
            codebook_size=config.codebook_size,
            distance=config.distance,
            beta=config.commitment_beta,
            legacy_beta=config.legacy_beta,
            behaviours=[DeadCodeReinit(anchor=config.anchor, decay=config.usage_decay)],
        )


__all__ = ["VQGANCVQModel"]
