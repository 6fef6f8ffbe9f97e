"""Building blocks shared by the tokenizers (conv encoders/decoders, ViT blocks, discriminators)."""

from .simple_cnn import SimpleCNNDecoder, SimpleCNNEncoder
from .vqgan_blocks import VQGANDecoder, VQGANEncoder

__all__ = ["SimpleCNNDecoder", "SimpleCNNEncoder", "VQGANDecoder", "VQGANEncoder"]
