"""Config fields of the SimpleCNN backbone shared by the ImageNet-64 tokenizers."""

from ..configuration_base import VQTokenizerConfig


class SimpleCNNConfig(VQTokenizerConfig):
    """SimpleCNN fields (not registered; the tokenizer configs subclass it).

    Args:
        hidden_dim: channels of the encoder/decoder (256 in the benchmark).
        num_res_blocks: residual blocks in encoder and decoder (2).
        codebook_dim: channels of the quantized latents.
    """

    hidden_dim: int = 256
    num_res_blocks: int = 2
    codebook_dim: int = 64


__all__ = ["SimpleCNNConfig"]
