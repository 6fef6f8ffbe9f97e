"""The MaskGIT-VQGAN encoder and pixel decoder (google-research/maskgit, as ported by open-muse and used by TiTok).

Encoder: bias-free 3x3 ``conv_in`` -> one level per channel multiplier (full resolution first),
each ``num_res_blocks`` ResNet blocks then 2x2 average pooling (all but the last level) ->
``num_res_blocks`` mid ResNet blocks -> GroupNorm -> SiLU -> 1x1 ``conv_out`` to ``z_channels``.
Official key -> ours: ``down.{i}.block.{j}`` -> ``down_blocks.{i}.res_blocks.{j}``, ``mid.{j}`` ->
``mid_blocks.{j}``, ``nin_shortcut`` -> ``shortcut``; the rest keep their names.

A taming-like ResNet decoder without attention: ``conv_in`` -> ``num_res_blocks`` mid ResNet
blocks -> one level per channel multiplier (lowest resolution first), each ``num_res_blocks``
ResNet blocks then nearest x2 upsampling + 3x3 conv (all but the last level) -> GroupNorm ->
SiLU -> ``conv_out``. GroupNorm(32, eps 1e-6), bias-free 3x3 convs inside the ResNet blocks.

Official key -> ours: ``conv_in`` / ``norm_out`` / ``conv_out`` keep their names;
``mid.{j}`` -> ``mid_blocks.{j}``; ``up.{i}`` -> ``up_blocks.{L-1-i}`` (the official list is
indexed by resolution, ours in execution order); ``nin_shortcut`` -> ``shortcut``;
``up.{i}.upsample_conv`` -> ``up_blocks.{L-1-i}.upsample_conv``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class MaskGITResnetBlock(nn.Module):
    """norm -> SiLU -> conv -> norm -> SiLU -> dropout -> conv, plus the residual.

    When the channel count changes, the official block computes the residual as
    ``shortcut(h)`` of the block's *output* h (a 1x1 conv from out to out channels), not of its
    input: kept as is, since the released weights were trained that way.
    """

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, in_channels, eps=1e-6)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(32, out_channels, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        residual = x if self.shortcut is None else self.shortcut(h)
        return h + residual


class MaskGITDownBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, downsample: bool, dropout: float):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            MaskGITResnetBlock(in_channels if j == 0 else out_channels, out_channels, dropout) for j in range(num_res_blocks)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return F.avg_pool2d(x, kernel_size=2, stride=2) if self.downsample else x


class MaskGITEncoder(nn.Module):
    """Images (B, in_channels, H, W) -> latents (B, z_channels, H / 2**(L-1), W / 2**(L-1)).

    Args as :class:`MaskGITDecoder` (``in_channels``: image channels).
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers=(1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        z_channels: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        multipliers = list(channel_multipliers)
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1, bias=False)
        channels, down_blocks = base_channels, []
        for level, multiplier in enumerate(multipliers):
            level_channels = base_channels * multiplier
            down_blocks.append(MaskGITDownBlock(channels, level_channels, num_res_blocks,
                                                downsample=level != len(multipliers) - 1, dropout=dropout))
            channels = level_channels
        self.down_blocks = nn.ModuleList(down_blocks)
        self.mid_blocks = nn.ModuleList(MaskGITResnetBlock(channels, channels, dropout) for _ in range(num_res_blocks))
        self.norm_out = nn.GroupNorm(32, channels, eps=1e-6)
        self.conv_out = nn.Conv2d(channels, z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        for block in self.mid_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.norm_out(x)))


class MaskGITUpBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, num_res_blocks: int, upsample: bool, dropout: float):
        super().__init__()
        self.res_blocks = nn.ModuleList(
            MaskGITResnetBlock(in_channels if j == 0 else out_channels, out_channels, dropout) for j in range(num_res_blocks)
        )
        self.upsample_conv = nn.Conv2d(out_channels, out_channels, 3, padding=1) if upsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        if self.upsample_conv is not None:
            x = self.upsample_conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return x


class MaskGITDecoder(nn.Module):
    """Latents (B, z_channels, h, w) -> images (B, out_channels, h * 2**(L-1), w * 2**(L-1)).

    Args:
        out_channels: image channels.
        base_channels: channels of the full-resolution level (128).
        channel_multipliers: per-level multipliers from full resolution down ((1, 1, 2, 2, 4)).
        num_res_blocks: ResNet blocks in the middle and per level (2).
        z_channels: input channels (256).
        dropout: dropout inside the ResNet blocks.
    """

    def __init__(
        self,
        out_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers=(1, 1, 2, 2, 4),
        num_res_blocks: int = 2,
        z_channels: int = 256,
        dropout: float = 0.0,
    ):
        super().__init__()
        multipliers = list(channel_multipliers)
        channels = base_channels * multipliers[-1]
        self.conv_in = nn.Conv2d(z_channels, channels, 3, padding=1)
        self.mid_blocks = nn.ModuleList(MaskGITResnetBlock(channels, channels, dropout) for _ in range(num_res_blocks))
        up_blocks = []
        # Execution order: lowest resolution (last multiplier) first; the full-resolution level does not upsample.
        for level in reversed(range(len(multipliers))):
            level_channels = base_channels * multipliers[level]
            up_blocks.append(MaskGITUpBlock(channels, level_channels, num_res_blocks, upsample=level != 0, dropout=dropout))
            channels = level_channels
        self.up_blocks = nn.ModuleList(up_blocks)
        self.norm_out = nn.GroupNorm(32, channels, eps=1e-6)
        self.conv_out = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(z)
        for block in self.mid_blocks:
            x = block(x)
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.norm_out(x)))

    @property
    def last_layer(self) -> torch.Tensor:
        return self.conv_out.weight


__all__ = ["MaskGITDecoder", "MaskGITEncoder", "MaskGITResnetBlock"]
