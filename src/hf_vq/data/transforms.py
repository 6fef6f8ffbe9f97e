"""Image transforms of the benchmark protocol.

Train, two crops (``TRAIN_CROPS``), each followed by a horizontal flip with probability 0.5:

* ``"random_square"``: a random square crop of ``min_scale``-``max_scale`` of the short side,
  resized (BICUBIC) to ``image_size``;
* ``"adm_random"``: ADM's ``random_crop_arr``, the train crop of the ImageNet 64x64 benchmark
  code (``utils/data.py``, ``crop: random``): the short side is resized to a random integer in
  ``[ceil(image_size / max_scale), ceil(image_size / min_scale)]`` ([64, 80] at 64 px) by
  BOX halving while the image is at least twice that size, then BICUBIC; then a random
  ``image_size`` square crop.

Eval: the ADM center crop (``hf_vq.processing.center_crop_arr``).
All return float tensors (C, H, W) in [-1, 1].
"""

import math

import numpy as np
import torch
from PIL import Image

from ..processing import center_crop_arr


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> contiguous float (C, H, W) in [-1, 1] (x / 127.5 - 1 in float32)."""
    pixels = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    # Written channel-first once, then scaled in place: ``pixels.float()`` would keep the channel-last
    # strides, and every later copy (the batch's torch.stack) would gather across them.
    return torch.empty(pixels.shape, dtype=torch.float32).copy_(pixels).div_(127.5).sub_(1.0)


def as_rgb(image: Image.Image) -> Image.Image:
    """``image`` in mode RGB: converted if it is in another mode, else itself (``convert("RGB")`` of an
    RGB image copies every pixel; the transforms below never write into their input)."""
    return image if image.mode == "RGB" else image.convert("RGB")


TRAIN_CROPS = ("random_square", "adm_random")


def adm_resize_short_side(image: Image.Image, short_side: int) -> Image.Image:
    """ADM's resize: BOX-halve while the short side is at least ``2 * short_side``, then BICUBIC
    so the short side is ``short_side`` (the long side rounded)."""
    while min(*image.size) >= 2 * short_side:
        image = image.resize(tuple(x // 2 for x in image.size), resample=Image.BOX)
    scale = short_side / min(*image.size)
    return image.resize(tuple(round(x * scale) for x in image.size), resample=Image.BICUBIC)


def _randint(low: int, high: int, generator) -> int:
    """Uniform integer in [low, high] (both included)."""
    return int(torch.randint(low, high + 1, (), generator=generator))


class TrainTransform:
    """Randomness comes from ``generator`` when given (the trainer passes one per image so crops
    are reproducible and resumable), else from torch's global generator.

    ``crop`` is one of ``TRAIN_CROPS`` (see the module docstring); both read ``min_scale`` and
    ``max_scale`` (0.8 and 1.0 give the benchmark's [64, 80] short side at 64 px for ``adm_random``).
    """

    def __init__(self, image_size: int, min_scale: float = 0.8, max_scale: float = 1.0, flip: bool = True,
                 crop: str = "random_square"):
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"Need 0 < min_scale <= max_scale <= 1; got {min_scale}, {max_scale}.")
        if crop not in TRAIN_CROPS:
            raise ValueError(f"Unknown train crop {crop!r}; choose one of {TRAIN_CROPS}.")
        self.image_size = image_size
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.flip = flip
        self.crop = crop

    def random_square_crop(self, image: Image.Image, generator) -> Image.Image:
        width, height = image.size
        scale = self.min_scale + (self.max_scale - self.min_scale) * torch.rand((), generator=generator).item()
        side = max(1, round(min(width, height) * scale))
        left = int(torch.randint(0, width - side + 1, (), generator=generator))
        top = int(torch.randint(0, height - side + 1, (), generator=generator))
        return image.crop((left, top, left + side, top + side)).resize((self.image_size, self.image_size), Image.BICUBIC)

    def adm_random_crop(self, image: Image.Image, generator) -> Image.Image:
        short_side = _randint(math.ceil(self.image_size / self.max_scale), math.ceil(self.image_size / self.min_scale),
                              generator)
        resized = adm_resize_short_side(image, short_side)
        width, height = resized.size
        top = _randint(0, height - self.image_size, generator)
        left = _randint(0, width - self.image_size, generator)
        return resized.crop((left, top, left + self.image_size, top + self.image_size))

    def __call__(self, image: Image.Image, generator: torch.Generator = None) -> torch.Tensor:
        image = as_rgb(image)
        if self.crop == "adm_random":
            crop = self.adm_random_crop(image, generator)
        else:
            crop = self.random_square_crop(image, generator)
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(np.array(crop))


class EvalTransform:
    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, image: Image.Image, generator: torch.Generator = None) -> torch.Tensor:
        """``generator`` is unused (the center crop is deterministic); accepted so both transforms share a signature."""
        return to_tensor(center_crop_arr(as_rgb(image), self.image_size))
