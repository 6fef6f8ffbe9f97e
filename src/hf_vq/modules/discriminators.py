"""Image discriminators for adversarial tokenizer training.

* :class:`PatchGANDiscriminator`: taming-transformers' ``NLayerDiscriminator`` (pix2pix
  PatchGAN): 4x4 convs, BatchNorm, LeakyReLU(0.2), one logit per overlapping patch,
  weights N(0, 0.02), BatchNorm weights N(1, 0.02).
* :class:`StyleGANDiscriminator`: a StyleGAN2-style residual discriminator: residual
  blocks that halve the resolution (skip scaled by 1/sqrt(2)), minibatch standard
  deviation, then one logit per image.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class PatchGANDiscriminator(nn.Module):
    """PatchGAN with ``num_layers`` stride-2 convs (3 in taming) and ``base_channels`` filters (64).

    Needs inputs of at least ``3 * 2**num_layers`` pixels per side (24 for 3 layers).
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1; got {num_layers}.")
        self.num_layers = num_layers
        layers = [nn.Conv2d(in_channels, base_channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        channels = base_channels
        for n in range(1, num_layers + 1):
            out_channels = base_channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1  # the last block keeps the resolution, as in taming
            layers += [
                nn.Conv2d(channels, out_channels, 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.LeakyReLU(0.2, True),
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, 0.0, 0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, 0.02)
            nn.init.zeros_(module.bias)

    @property
    def min_image_size(self) -> int:
        # num_layers halvings, then two 4x4 stride-1 convs that each remove one pixel.
        return 3 * 2**self.num_layers

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = min(images.shape[-2:])
        if size < self.min_image_size:
            raise ValueError(
                f"PatchGAN with {self.num_layers} layers needs images of at least {self.min_image_size}px; "
                f"got {size}px. Lower loss.disc_layers."
            )
        return self.main(images)


class _StyleGANBlock(nn.Module):
    """Two 3x3 convs with LeakyReLU then 2x average-pool downsampling, plus a 1x1 skip path."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.avg_pool2d(self.skip(x), 2)
        x = F.leaky_relu(self.conv1(x), 0.2)
        x = F.avg_pool2d(F.leaky_relu(self.conv2(x), 0.2), 2)
        return (x + skip) / math.sqrt(2)


class StyleGANDiscriminator(nn.Module):
    """Residual discriminator (StyleGAN2 layout) from ``image_size`` down to 4x4, one logit per image.

    Args:
        image_size: input resolution (a power of two >= 8).
        base_channels: channels at full resolution; doubled per block up to ``max_channels``.
        mbstd_group_size: group size of the minibatch standard deviation feature.
    """

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 256,
        base_channels: int = 64,
        max_channels: int = 512,
        mbstd_group_size: int = 4,
    ):
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"StyleGANDiscriminator needs a power-of-two image_size >= 8; got {image_size}.")
        self.image_size = image_size
        self.mbstd_group_size = mbstd_group_size
        num_blocks = int(math.log2(image_size)) - 2
        channels = [min(base_channels * 2**i, max_channels) for i in range(num_blocks + 1)]
        self.from_rgb = nn.Conv2d(in_channels, channels[0], 1)
        self.blocks = nn.ModuleList(_StyleGANBlock(channels[i], channels[i + 1]) for i in range(num_blocks))
        self.final_conv = nn.Conv2d(channels[-1] + 1, channels[-1], 3, padding=1)
        self.final_linear = nn.Sequential(
            nn.Linear(channels[-1] * 16, channels[-1]), nn.LeakyReLU(0.2), nn.Linear(channels[-1], 1)
        )

    def _minibatch_std(self, x: torch.Tensor) -> torch.Tensor:
        """Append the mean standard deviation over groups of images as one extra feature map."""
        batch, channels, height, width = x.shape
        group = math.gcd(batch, self.mbstd_group_size)
        std = x.reshape(group, -1, channels, height, width).var(dim=0, unbiased=False).add(1e-8).sqrt()
        std = std.mean(dim=(1, 2, 3)).reshape(-1, 1, 1, 1).repeat(group, 1, height, width)
        return torch.cat([x, std], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"StyleGANDiscriminator was built for {self.image_size}px images; got {tuple(images.shape[-2:])}.")
        x = F.leaky_relu(self.from_rgb(images), 0.2)
        for block in self.blocks:
            x = block(x)
        x = F.leaky_relu(self.final_conv(self._minibatch_std(x)), 0.2)
        return self.final_linear(x.flatten(1))


DISCRIMINATORS = ("patchgan", "stylegan")


def build_discriminator(
    name: str, in_channels: int = 3, image_size: int = 256, num_layers: int = 3, base_channels: int = 64
) -> nn.Module:
    """``"patchgan"`` (``num_layers`` stride-2 layers) or ``"stylegan"`` (built for ``image_size``)."""
    if name == "patchgan":
        return PatchGANDiscriminator(in_channels, base_channels, num_layers)
    if name == "stylegan":
        return StyleGANDiscriminator(in_channels, image_size, base_channels)
    raise ValueError(f"Unknown discriminator {name!r}; choose one of {DISCRIMINATORS}.")
