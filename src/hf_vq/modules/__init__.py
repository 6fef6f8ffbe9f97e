"""Building blocks shared by the tokenizers (conv encoders/decoders, ViT blocks, discriminators)."""

from .simple_cnn import SimpleCNNDecoder, SimpleCNNEncoder

__all__ = ["SimpleCNNDecoder", "SimpleCNNEncoder"]
