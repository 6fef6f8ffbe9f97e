"""Building blocks shared by the tokenizers (conv encoders/decoders, the MaskGIT pixel decoder, ViT blocks, discriminators)."""

from .discriminators import (
    DISCRIMINATORS,
    MaskBitDiscriminator,
    PatchGANDiscriminator,
    StyleGANDiscriminator,
    build_discriminator,
    check_discriminator_options,
)
from .maskgit_vqgan import MaskGITDecoder
from .simple_cnn import SimpleCNNDecoder, SimpleCNNEncoder
from .vit_blocks import ViTBlock, ViTStack
from .vqgan_blocks import VQGANDecoder, VQGANEncoder

__all__ = [
    "DISCRIMINATORS",
    "MaskBitDiscriminator",
    "MaskGITDecoder",
    "PatchGANDiscriminator",
    "SimpleCNNDecoder",
    "SimpleCNNEncoder",
    "StyleGANDiscriminator",
    "VQGANDecoder",
    "ViTBlock",
    "ViTStack",
    "VQGANEncoder",
    "build_discriminator",
    "check_discriminator_options",
]
