"""The convolutional encoder/decoder of the VQGAN family (taming VQGAN, LlamaGen VQ).

Both code bases use the same blocks: pre-activation ResNet blocks with GroupNorm(32,
eps=1e-6) and swish, single-head spatial self-attention built from 1x1 convolutions,
a stride-2 3x3 convolution after a (0, 1, 0, 1) zero pad to downsample, and nearest x2
upsampling followed by a 3x3 convolution. They differ only in where attention sits and
in the key names of their checkpoints, which ``hf_vq.convert`` maps onto the names here.

Layout of the modules (what the converters target):

- encoder: ``conv_in``, ``down_blocks.{level}.res_blocks.{i}``,
  ``down_blocks.{level}.attn_blocks.{i}``, ``down_blocks.{level}.downsample``,
  ``mid_block.{res_1, attn, res_2}``, ``norm_out``, ``conv_out``. Level 0 is the
  full resolution.
- decoder: ``conv_in``, ``mid_block``, ``up_blocks.{j}`` in execution order, so
  ``up_blocks.0`` works at the LOWEST resolution (encoder level ``L - 1``),
  then ``norm_out``, ``conv_out``.
"""

from collections.abc import Collection, Sequence

import torch
import torch.nn.functional as F
from torch import nn

GROUP_NORM_GROUPS = 32
GROUP_NORM_EPS = 1e-6


def group_norm(channels: int) -> nn.GroupNorm:
    if channels % GROUP_NORM_GROUPS:
        raise ValueError(
            f"VQGAN blocks use GroupNorm with {GROUP_NORM_GROUPS} groups, so every channel count must be a "
            f"multiple of {GROUP_NORM_GROUPS}; got {channels}. Choose base_channels * channel_multipliers accordingly."
        )
    return nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=GROUP_NORM_EPS, affine=True)


class ResnetBlock(nn.Module):
    """x + conv2(dropout(swish(norm2(conv1(swish(norm1(x))))))), with a 1x1 shortcut when channels change."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = group_norm(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One step a line, each result replacing the last: at inference every intermediate is freed as
        # soon as the next exists, so at most three maps of this size live at once (x, h and the newest)
        # besides a convolution's workspace.
        h = self.norm1(x)
        h = F.silu(h)
        h = self.conv1(h)
        h = self.norm2(h)
        h = F.silu(h)
        h = self.dropout(h)
        h = self.conv2(h)
        return self.shortcut(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the h*w positions; q, k, v and the output are 1x1 convs."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        h = self.norm(x)

        def tokens(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1 head, H*W, C)
            return t.reshape(batch, 1, channels, height * width).transpose(-1, -2)

        # softmax(q k^T / sqrt(C)) v, the scale of the reference implementations.
        attended = F.scaled_dot_product_attention(tokens(self.q(h)), tokens(self.k(h)), tokens(self.v(h)))
        attended = attended.transpose(-1, -2).reshape(batch, channels, height, width)
        return x + self.proj_out(attended)


class Downsample(nn.Module):
    """Halve the resolution: pad one zero row/column at the bottom/right, then a stride-2 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The asymmetric pad keeps H/2 outputs with the reference's alignment of the stride-2 grid.
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour x2, then a 3x3 conv."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class MidBlock(nn.Module):
    """ResNet block -> attention -> ResNet block at the lowest resolution."""

    def __init__(self, channels: int, dropout: float = 0.0):
        super().__init__()
        self.res_1 = ResnetBlock(channels, channels, dropout)
        self.attn = AttnBlock(channels)
        self.res_2 = ResnetBlock(channels, channels, dropout)

    def layers(self) -> list:
        """The block's modules in execution order."""
        return [self.res_1, self.attn, self.res_2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.layers(), x)


class ResolutionLevel(nn.Module):
    """``num_res_blocks`` ResNet blocks, each followed by attention when ``use_attention``."""

    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, use_attention: bool, dropout: float):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            ResnetBlock(in_channels if i == 0 else out_channels, out_channels, dropout) for i in range(num_res_blocks)
        )
        self.attn_blocks = nn.ModuleList(AttnBlock(out_channels) for _ in range(num_res_blocks) if use_attention)

    def layers(self) -> list:
        """The level's modules in execution order (a list, not a generator: torch.compile traces lists
        in every torch version)."""
        layers = []
        for i, res_block in enumerate(self.res_blocks):
            layers.append(res_block)
            if self.attn_blocks:
                layers.append(self.attn_blocks[i])
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return run_layers(self.layers(), x)


class EncoderLevel(ResolutionLevel):
    """A resolution level of the encoder, ending in a ``Downsample`` except at the lowest level."""

    def __init__(self, in_channels, out_channels, num_res_blocks, use_attention, dropout, downsample: bool):
        super().__init__(in_channels, out_channels, num_res_blocks, use_attention, dropout)
        self.downsample = Downsample(out_channels) if downsample else None

    def layers(self) -> list:
        return super().layers() + ([self.downsample] if self.downsample is not None else [])


class DecoderLevel(ResolutionLevel):
    """A resolution level of the decoder, ending in an ``Upsample`` except at full resolution."""

    def __init__(self, in_channels, out_channels, num_res_blocks, use_attention, dropout, upsample: bool):
        super().__init__(in_channels, out_channels, num_res_blocks, use_attention, dropout)
        self.upsample = Upsample(out_channels) if upsample else None

    def layers(self) -> list:
        return super().layers() + ([self.upsample] if self.upsample is not None else [])


def run_layers(layers, h: torch.Tensor) -> torch.Tensor:
    """``h`` through ``layers`` in turn, from one frame.

    The encoder and decoder call every level's layers from here instead of calling each level:
    a level called as a module keeps its input referenced (by the caller and by the call) until
    its last layer is done, one extra activation at the level's resolution at the inference
    peak (measured on an H100 at batch 64, 256 px: 14.3 GiB against the official code's 10.2 GiB).
    """
    for layer in layers:
        h = layer(h)
    return h


def _check_levels(channel_multipliers: Sequence[int], attention_levels: Collection[int]) -> None:
    if not channel_multipliers:
        raise ValueError("channel_multipliers must list at least one resolution level.")
    bad = sorted(level for level in attention_levels if not 0 <= level < len(channel_multipliers))
    if bad:
        raise ValueError(
            f"attention levels {bad} do not exist: there are {len(channel_multipliers)} levels "
            f"(0 = full resolution ... {len(channel_multipliers) - 1} = lowest)."
        )


class VQGANEncoder(nn.Module):
    """Pixels (B, C, H, W) -> latents (B, z_channels, H / 2^(L-1), W / 2^(L-1)) for L = len(channel_multipliers).

    Args:
        in_channels: image channels.
        base_channels: channels of level 0 (taming ``ch``).
        channel_multipliers: channels of level ``i`` are ``base_channels * channel_multipliers[i]``.
        num_res_blocks: ResNet blocks per level.
        attention_levels: levels (0 = full resolution) whose ResNet blocks are each followed by attention.
        z_channels: output channels.
        dropout: dropout inside the ResNet blocks.
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        attention_levels: Collection[int],
        z_channels: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_levels(channel_multipliers, attention_levels)
        num_levels = len(channel_multipliers)
        self.conv_in = nn.Conv2d(in_channels, base_channels, kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList()
        channels = base_channels
        for level, multiplier in enumerate(channel_multipliers):
            out_channels = base_channels * multiplier
            self.down_blocks.append(
                EncoderLevel(
                    channels, out_channels, num_res_blocks, level in attention_levels, dropout,
                    downsample=level != num_levels - 1,
                )
            )
            channels = out_channels
        self.mid_block = MidBlock(channels, dropout)
        self.norm_out = group_norm(channels)
        self.conv_out = nn.Conv2d(channels, z_channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layers = [layer for level in self.down_blocks for layer in level.layers()] + self.mid_block.layers()
        h = run_layers(layers, self.conv_in(x))
        return self.conv_out(F.silu(self.norm_out(h)))


class VQGANDecoder(nn.Module):
    """Latents (B, z_channels, h, w) -> pixels (B, C, h * 2^(L-1), w * 2^(L-1)), mirroring :class:`VQGANEncoder`.

    ``channel_multipliers`` and ``attention_levels`` are given as for the encoder (level 0 =
    full resolution); the decoder walks them from the lowest level up, so ``up_blocks[j]``
    is level ``L - 1 - j``.

    Args:
        out_channels: image channels.
        base_channels, channel_multipliers, attention_levels, z_channels, dropout: as for the encoder.
        num_res_blocks: ResNet blocks per level (taming and LlamaGen use the encoder's count + 1).
    """

    def __init__(
        self,
        out_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        attention_levels: Collection[int],
        z_channels: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        _check_levels(channel_multipliers, attention_levels)
        channels = base_channels * channel_multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, channels, kernel_size=3, padding=1)
        self.mid_block = MidBlock(channels, dropout)
        self.up_blocks = nn.ModuleList()
        for level in reversed(range(len(channel_multipliers))):
            level_channels = base_channels * channel_multipliers[level]
            self.up_blocks.append(
                DecoderLevel(
                    channels, level_channels, num_res_blocks, level in attention_levels, dropout, upsample=level != 0
                )
            )
            channels = level_channels
        self.norm_out = group_norm(channels)
        self.conv_out = nn.Conv2d(channels, out_channels, kernel_size=3, padding=1)

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the final conv: the adaptive GAN weight compares gradients here."""
        return self.conv_out.weight

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        layers = self.mid_block.layers() + [layer for level in self.up_blocks for layer in level.layers()]
        h = run_layers(layers, self.conv_in(z))
        return self.conv_out(F.silu(self.norm_out(h)))


__all__ = [
    "AttnBlock",
    "DecoderLevel",
    "Downsample",
    "EncoderLevel",
    "MidBlock",
    "ResnetBlock",
    "ResolutionLevel",
    "Upsample",
    "VQGANDecoder",
    "VQGANEncoder",
]
