"""Config fields of the SimpleCNN backbone shared by the ImageNet-64 tokenizers."""

from ...modules.simple_cnn import SimpleCNNEncoder
from ..configuration_base import VQTokenizerConfig, check_positive


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

    def __post_init__(self, **kwargs):
        check_positive(self, "hidden_dim")
        if self.num_res_blocks < 0:
            raise ValueError(f"num_res_blocks must be >= 0; got {self.num_res_blocks}.")
        factor = SimpleCNNEncoder.downsample_factor
        if isinstance(self.image_size, int) and self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the SimpleCNN downsampling factor {factor}: "
                f"use a multiple of {factor}."
            )
        super().__post_init__(**kwargs)


__all__ = ["SimpleCNNConfig"]
