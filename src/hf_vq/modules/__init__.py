"""Building blocks shared by the tokenizers (conv encoders/decoders, ViT blocks, discriminators)."""

from .discriminators import DISCRIMINATORS, PatchGANDiscriminator, StyleGANDiscriminator, build_discriminator
from .simple_cnn import SimpleCNNDecoder, SimpleCNNEncoder
from .vqgan_blocks import VQGANDecoder, VQGANEncoder

__all__ = [
    "DISCRIMINATORS",
    "PatchGANDiscriminator",
    "SimpleCNNDecoder",
    "SimpleCNNEncoder",
    "StyleGANDiscriminator",
    "VQGANDecoder",
    "VQGANEncoder",
    "build_discriminator",
]
