"""Image discriminators for adversarial tokenizer training.

* :class:`PatchGANDiscriminator`: taming-transformers' ``NLayerDiscriminator`` (pix2pix
  PatchGAN): 4x4 convs, BatchNorm, LeakyReLU(0.2), one logit per overlapping patch,
  weights N(0, 0.02), BatchNorm weights N(1, 0.02).
* :class:`StyleGANDiscriminator`: a StyleGAN2-style residual discriminator: residual
  blocks that halve the resolution (skip scaled by 1/sqrt(2)), minibatch standard
  deviation, then one logit per image.
* :class:`MaskBitDiscriminator`: the discriminator of MaskBit and TiTok (bytedance/1d-tokenizer
  ``NLayerDiscriminator``): a 5x5 input conv, stages of 3x3 conv + blurred stride-2
  downsampling + GroupNorm(32) + LeakyReLU(0.1), a 16x16 adaptive max-pool, then one logit
  per pooled cell.
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


MASKBIT_LEAKY_SLOPE = 0.1
# Binomial blur taps per kernel size (MaskBit's BLUR_KERNEL_MAP); normalised to sum 1 in 2D.
BLUR_TAPS = {3: (1, 2, 1), 4: (1, 3, 3, 1), 5: (1, 4, 6, 4, 1)}


def _padding_of_4_tap_stride_2(size: int) -> tuple[int, int]:
    """"Same" padding of a 4-tap, stride-2 filter: 1 pixel each side for an even size, 1 before and
    2 after for an odd one (TensorFlow's convention: the extra pixel goes after)."""
    total = max((math.ceil(size / 2) - 1) * 2 + 4 - size, 0)
    return total // 2, total - total // 2


class BlurDownsample(nn.Module):
    """Per-channel binomial blur with stride 2 (MaskBit's ``BlurBlock``): halves the resolution with less aliasing
    than strided convolution or plain subsampling.

    The padding is that of a 4-tap filter whatever ``kernel_size`` is, as in the official code: a 3-tap kernel
    then gives ``ceil(size / 2)`` pixels, a 5-tap kernel one pixel fewer than a 4-tap one on even sizes.
    """

    def __init__(self, kernel_size: int = 4):
        super().__init__()
        if kernel_size not in BLUR_TAPS:
            raise ValueError(f"blur_kernel_size must be one of {sorted(BLUR_TAPS)}; got {kernel_size!r}.")
        taps = torch.tensor(BLUR_TAPS[kernel_size], dtype=torch.float32)
        kernel = taps[None, :] * taps[:, None]
        # A constant, rebuilt from kernel_size: not saved with the weights.
        self.register_buffer("kernel", (kernel / kernel.sum())[None, None], persistent=False)

    def output_size(self, size: int) -> int:
        before, after = _padding_of_4_tap_stride_2(size)
        padded, kernel_size = size + before + after, self.kernel.shape[-1]
        return (padded - kernel_size) // 2 + 1 if padded >= kernel_size else 0

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        top, bottom = _padding_of_4_tap_stride_2(hidden_states.shape[-2])
        left, right = _padding_of_4_tap_stride_2(hidden_states.shape[-1])
        hidden_states = F.pad(hidden_states, [left, right, top, bottom])
        channels = hidden_states.shape[1]
        kernel = self.kernel.to(hidden_states.dtype).expand(channels, -1, -1, -1)
        return F.conv2d(hidden_states, kernel, stride=2, groups=channels)


class AveragePoolDownsample(nn.AvgPool2d):
    """2x2 average pooling (MaskBit's downsampling with ``blur_resample: false``)."""

    def __init__(self):
        super().__init__(kernel_size=2, stride=2)

    def output_size(self, size: int) -> int:
        return size // 2


class MaskBitDiscriminatorStage(nn.Module):
    """3x3 conv, downsampling by 2, GroupNorm with 32 groups, LeakyReLU(0.1)."""

    def __init__(self, in_channels: int, out_channels: int, blur_resample: bool, blur_kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.downsample = BlurDownsample(blur_kernel_size) if blur_resample else AveragePoolDownsample()
        self.norm = nn.GroupNorm(32, out_channels)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(self.downsample(self.conv(hidden_states)))
        return F.leaky_relu(hidden_states, MASKBIT_LEAKY_SLOPE)


class MaskBitDiscriminator(nn.Module):
    """The MaskBit discriminator that TiTok's official training uses (bytedance/1d-tokenizer
    ``modeling/modules/discriminator.py``, ``NLayerDiscriminator``), same layers, initialisation and
    parameter count (1,909,889 with the defaults).

    Layout: 5x5 conv (``num_channels`` -> ``hidden_channels``) + LeakyReLU(0.1); ``num_stages`` stages
    (channels ``hidden_channels`` x 1, 1, 2, 4, ...: the first stage keeps the width, each later one
    doubles it); adaptive max-pooling to 16x16; 1x1 conv + LeakyReLU(0.1); 5x5 conv to one logit per
    pooled cell, so the output is (B, 1, 16, 16) for any input size. The official convolutions use
    "same" padding computed at run time; with stride 1 and odd kernels that is symmetric zero padding
    of ``kernel_size // 2``, which is what the plain ``nn.Conv2d`` layers here use.

    Args:
        num_channels: image channels.
        hidden_channels: width of the input conv and the first stage; a multiple of 32 (GroupNorm's groups).
        num_stages: downsampling stages (at least 1).
        blur_resample: downsample with a stride-2 binomial blur (:class:`BlurDownsample`); otherwise
            2x2 average pooling.
        blur_kernel_size: taps of the blur, 3, 4 or 5.
        zero_one_pixels: map hf_vq's [-1, 1] images to [0, 1] first, the range the official
            discriminator sees (TiTok and MaskBit train on [0, 1] images). The zero padding of the
            first conv makes this more than a change of its weights.
    """

    def __init__(self, num_channels: int = 3, hidden_channels: int = 128, num_stages: int = 3,
                 blur_resample: bool = True, blur_kernel_size: int = 4, zero_one_pixels: bool = True):
        super().__init__()
        for name, value in (("num_channels", num_channels), ("hidden_channels", hidden_channels),
                            ("num_stages", num_stages), ("blur_kernel_size", blur_kernel_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MaskBitDiscriminator {name} must be a positive integer; got {value!r}.")
        for name, value in (("blur_resample", blur_resample), ("zero_one_pixels", zero_one_pixels)):
            if not isinstance(value, bool):
                raise ValueError(f"MaskBitDiscriminator {name} must be true or false; got {value!r}.")
        if hidden_channels % 32:
            raise ValueError(f"MaskBitDiscriminator hidden_channels must be a multiple of 32 (each stage's "
                             f"GroupNorm has 32 groups); got {hidden_channels}.")
        if blur_resample and blur_kernel_size not in BLUR_TAPS:
            raise ValueError(f"MaskBitDiscriminator blur_kernel_size must be one of {sorted(BLUR_TAPS)} with "
                             f"blur_resample; got {blur_kernel_size}.")
        self.zero_one_pixels = zero_one_pixels
        self.input_conv = nn.Conv2d(num_channels, hidden_channels, 5, padding=2)
        widths = [hidden_channels] + [hidden_channels * 2**i for i in range(num_stages)]
        self.stages = nn.ModuleList(
            MaskBitDiscriminatorStage(widths[i], widths[i + 1], blur_resample, blur_kernel_size)
            for i in range(num_stages)
        )
        self.pool = nn.AdaptiveMaxPool2d((16, 16))
        self.logits_hidden_conv = nn.Conv2d(widths[-1], widths[-1], 1)
        self.logits_conv = nn.Conv2d(widths[-1], 1, 5, padding=2)

    def _check_size(self, height: int, width: int) -> None:
        sizes = [min(height, width)]
        for stage in self.stages:
            sizes.append(stage.downsample.output_size(sizes[-1]))
        if sizes[-1] < 1:
            raise ValueError(
                f"MaskBitDiscriminator with {len(self.stages)} stages has no pixels left after its downsampling for "
                f"{height}x{width} images (sizes {sizes}); use larger images or fewer "
                "loss.discriminator_options.num_stages."
            )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self._check_size(*images.shape[-2:])
        if self.zero_one_pixels:
            images = images * 0.5 + 0.5
        hidden_states = F.leaky_relu(self.input_conv(images), MASKBIT_LEAKY_SLOPE)
        for stage in self.stages:
            hidden_states = stage(hidden_states)
        hidden_states = F.leaky_relu(self.logits_hidden_conv(self.pool(hidden_states)), MASKBIT_LEAKY_SLOPE)
        return self.logits_conv(hidden_states)


DISCRIMINATORS = ("patchgan", "stylegan", "maskbit")
MASKBIT_OPTIONS = ("num_channels", "hidden_channels", "num_stages", "blur_resample", "blur_kernel_size",
                   "zero_one_pixels")


def check_discriminator_options(name: str, options: dict | None) -> None:
    """``loss.discriminator_options`` are the MaskBit discriminator's constructor options; other names take none."""
    options = options or {}
    if name != "maskbit":
        if options:
            raise ValueError(f"loss.discriminator_options {sorted(options)} are options of the maskbit discriminator; "
                             f"{name!r} is set by loss.disc_layers and loss.disc_channels. Remove them.")
        return
    unknown = sorted(set(options) - set(MASKBIT_OPTIONS))
    if unknown:
        raise ValueError(f"Unknown maskbit discriminator options {unknown} in loss.discriminator_options; "
                         f"allowed: {list(MASKBIT_OPTIONS)}.")


def build_discriminator(
    name: str, in_channels: int = 3, image_size: int = 256, num_layers: int = 3, base_channels: int = 64,
    options: dict | None = None,
) -> nn.Module:
    """``"patchgan"`` (``num_layers`` stride-2 layers), ``"stylegan"`` (built for ``image_size``) or
    ``"maskbit"`` (:class:`MaskBitDiscriminator` with ``options``, its constructor's keyword arguments;
    ``num_channels`` is ``in_channels``, the images' channels)."""
    if name not in DISCRIMINATORS:
        raise ValueError(f"Unknown discriminator {name!r}; choose one of {DISCRIMINATORS}.")
    check_discriminator_options(name, options)
    if name == "patchgan":
        return PatchGANDiscriminator(in_channels, base_channels, num_layers)
    if name == "stylegan":
        return StyleGANDiscriminator(in_channels, image_size, base_channels)
    options = dict(options or {})
    num_channels = options.pop("num_channels", in_channels)
    if num_channels != in_channels:
        raise ValueError(f"maskbit discriminator num_channels {num_channels!r} differs from the images' "
                         f"{in_channels} channels; remove it from loss.discriminator_options.")
    return MaskBitDiscriminator(num_channels=in_channels, **options)
