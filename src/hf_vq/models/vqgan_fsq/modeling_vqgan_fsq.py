"""VQGAN-FSQ: VQGANEncoder -> quant_conv -> FSQ (no codebook, no loss) -> post_quant_conv -> VQGANDecoder."""

from ...quantizers import FSQ
from ..vqgan import VQGANModel
from .configuration_vqgan_fsq import VQGANFSQConfig


class VQGANFSQModel(VQGANModel):
    config: VQGANFSQConfig
    config_class = VQGANFSQConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("levels",)

    def build_quantizer(self, config: VQGANFSQConfig) -> FSQ:
        return FSQ(config.levels)


__all__ = ["VQGANFSQModel"]
