"""Taming VQGAN configuration (Esser et al. 2021, CompVis/taming-transformers)."""

from huggingface_hub.dataclasses import strict

from ..configuration_base import VQTokenizerConfig


class VQGANBackboneConfig(VQTokenizerConfig):
    """The ResNet + attention encoder/decoder fields shared by VQGAN and LlamaGen VQ (not registered).

    Args:
        base_channels: channels of the full-resolution level.
        channel_multipliers: per-level channel multipliers; the downsampling factor is
            ``2 ** (len(channel_multipliers) - 1)``.
        num_res_blocks: ResNet blocks per encoder level; the decoder has one more per level.
        z_channels: encoder output / decoder input channels.
        dropout: dropout inside the ResNet blocks.
    """

    image_size: int = 256
    base_channels: int = 128
    channel_multipliers: list[int] | tuple[int, ...] = (1, 1, 2, 2, 4)
    num_res_blocks: int = 2
    z_channels: int = 256
    dropout: float = 0.0

    def __post_init__(self, **kwargs):
        if not self.channel_multipliers:
            raise ValueError("channel_multipliers must list at least one level, e.g. [1, 1, 2, 2, 4].")
        if self.image_size % self.downsample_factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by the downsampling factor {self.downsample_factor} "
                f"of channel_multipliers {list(self.channel_multipliers)}."
            )
        super().__post_init__(**kwargs)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.channel_multipliers) - 1)


@strict
class VQGANConfig(VQGANBackboneConfig):
    """Taming VQGAN: ResNet + attention encoder/decoder around a Euclidean VectorQuantizer.

    Field names of the official ``ddconfig`` in brackets.

    Args:
        image_size: training resolution [``resolution``]; together with ``attn_resolutions`` it
            decides which levels have attention, as in taming (the model itself runs at any size
            divisible by the downsampling factor).
        base_channels: channels of the full-resolution level [``ch``].
        channel_multipliers: per-level channel multipliers; the downsampling factor is
            ``2 ** (len(channel_multipliers) - 1)`` [``ch_mult``].
        num_res_blocks: ResNet blocks per encoder level; the decoder has one more per level.
        attn_resolutions: feature-map sizes at which every ResNet block is followed by attention.
        z_channels: encoder output / decoder input channels.
        codebook_dim: code channels, reached by the 1x1 ``quant_conv`` [``embed_dim``].
        codebook_size: number of codes [``n_embed``].
        commitment_beta: the 0.25 of the quantizer loss.
        legacy_beta: put ``commitment_beta`` on the codebook term instead of the commitment term,
            as taming's ``VectorQuantizer2(legacy=True)`` (its default, used for the released models).
        dropout: dropout inside the ResNet blocks.
        reconstruction_loss: "l1" as taming.
    """

    model_type = "vqgan"

    attn_resolutions: list[int] | tuple[int, ...] = (16,)
    codebook_dim: int = 256
    codebook_size: int = 1024
    commitment_beta: float = 0.25
    legacy_beta: bool = True
    reconstruction_loss: str = "l1"

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        level_sizes = [self.image_size // 2**level for level in range(len(self.channel_multipliers))]
        unreachable = sorted(set(self.attn_resolutions) - set(level_sizes))
        if unreachable:
            raise ValueError(
                f"attn_resolutions {unreachable} match no level: with image_size {self.image_size} the levels work at "
                f"{level_sizes}. (Taming silently skips such entries; here they are an error.)"
            )

    @property
    def attention_levels(self) -> list[int]:
        """Levels (0 = full resolution) whose feature-map size is in ``attn_resolutions``."""
        return [
            level for level in range(len(self.channel_multipliers))
            if self.image_size // 2**level in self.attn_resolutions
        ]

    @classmethod
    def taming_f16(cls, codebook_size: int, **kwargs) -> "VQGANConfig":
        """The ImageNet f16 architecture of ``configs/imagenet_vqgan.yaml``: attention at the lowest
        level (16x16 feature maps at 256 pixels), whatever ``image_size`` is recorded."""
        image_size = kwargs.get("image_size", 256)
        return cls(**{"codebook_size": codebook_size, "attn_resolutions": [image_size // 16], **kwargs})

    @classmethod
    def taming_f16_1024(cls, **kwargs) -> "VQGANConfig":
        """``vqgan_imagenet_f16_1024``: 1024 codes of 256 channels."""
        return cls.taming_f16(1024, **kwargs)

    @classmethod
    def taming_f16_16384(cls, **kwargs) -> "VQGANConfig":
        """``vqgan_imagenet_f16_16384``: 16384 codes of 256 channels."""
        return cls.taming_f16(16384, **kwargs)


__all__ = ["VQGANBackboneConfig", "VQGANConfig"]
