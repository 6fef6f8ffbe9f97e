"""MaskGIT-VQGAN configuration (Chang et al. 2022; the PyTorch port TiTok uses for its proxy codes)."""

from huggingface_hub.dataclasses import strict

from ..configuration_base import VQTokenizerConfig, check_positive


@strict
class MaskGITVQGANConfig(VQTokenizerConfig):
    """MaskGIT-VQGAN: a ResNet encoder (no attention) -> 1024 x 256 codes -> ResNet decoder.

    TiTok's two-stage recipe uses the released ImageNet 256 model
    (``maskgit-vqgan-imagenet-f16-256.bin``): its codes are the stage-1 targets ("proxy codes")
    and its codebook and decoder become TiTok's pixel decoder. Official names in brackets.

    Args:
        base_channels: channels of the full-resolution level [``hidden_channels``] (128).
        channel_multipliers: per-level multipliers [``channel_mult``] ((1, 1, 2, 2, 4): 16x downsampling).
        num_res_blocks: ResNet blocks per level and in the middle (2).
        codebook_dim: code size = encoder output channels [``z_channels``] (256).
        codebook_size: codes (1024).
        commitment_beta: 0.25, on the codebook term as the official quantizer does.
        zero_one_pixels: the weights were trained on [0, 1] images (the official ones): the model
            maps its [-1, 1] input to [0, 1] before the encoder and the decoder's output back.
    """

    model_type = "maskgit_vqgan"

    image_size: int = 256
    base_channels: int = 128
    channel_multipliers: list[int] | tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    codebook_dim: int = 256
    codebook_size: int = 1024
    commitment_beta: float = 0.25
    zero_one_pixels: bool = True
    reconstruction_loss: str = "mse"

    def __post_init__(self, **kwargs):
        check_positive(self, "base_channels", "num_res_blocks")
        if not self.channel_multipliers:
            raise ValueError("channel_multipliers must list at least one level, e.g. [1, 1, 2, 2, 4].")
        channels = [self.base_channels * m for m in self.channel_multipliers]
        if any(c % 32 for c in channels):
            raise ValueError(f"MaskGIT-VQGAN uses GroupNorm(32): its level channels {channels} must be multiples of 32.")
        if self.image_size % self.downsample_factor:
            raise ValueError(f"image_size {self.image_size} is not divisible by the downsampling factor "
                             f"{self.downsample_factor} of channel_multipliers {list(self.channel_multipliers)}.")
        super().__post_init__(**kwargs)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_multipliers) - 1)


__all__ = ["MaskGITVQGANConfig"]
