"""Building blocks shared by the tokenizers (conv encoders/decoders, the MaskGIT pixel decoder, ViT blocks, discriminators)."""

from .discriminators import DISCRIMINATORS, PatchGANDiscriminator, StyleGANDiscriminator, build_discriminator
from .maskgit_vqgan import MaskGITDecoder
from .simple_cnn import SimpleCNNDecoder, SimpleCNNEncoder
from .vit_blocks import ViTBlock, ViTStack
from .vqgan_blocks import VQGANDecoder, VQGANEncoder

__all__ = [
    "DISCRIMINATORS",
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
]
