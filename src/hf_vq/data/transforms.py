"""Image transforms of the benchmark protocol.

Train: a random square crop of 80-100% of the short side, horizontal flip, resize.
Eval: the ADM center crop (``hf_vq.processing.center_crop_arr``).
Both return float tensors (C, H, W) in [-1, 1].
"""

import numpy as np
import torch
from PIL import Image

from ..processing import center_crop_arr


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).float() / 127.5 - 1.0


class TrainTransform:
    """Randomness comes from ``generator`` when given (the trainer passes one per image so crops
    are reproducible and resumable), else from torch's global generator."""

    def __init__(self, image_size: int, min_scale: float = 0.8, max_scale: float = 1.0, flip: bool = True):
        if not 0 < min_scale <= max_scale <= 1:
            raise ValueError(f"Need 0 < min_scale <= max_scale <= 1; got {min_scale}, {max_scale}.")
        self.image_size = image_size
        self.min_scale = min_scale
        self.max_scale = max_scale
        self.flip = flip

    def __call__(self, image: Image.Image, generator: torch.Generator = None) -> torch.Tensor:
        image = image.convert("RGB")
        width, height = image.size
        scale = self.min_scale + (self.max_scale - self.min_scale) * torch.rand((), generator=generator).item()
        side = max(1, round(min(width, height) * scale))
        left = int(torch.randint(0, width - side + 1, (), generator=generator))
        top = int(torch.randint(0, height - side + 1, (), generator=generator))
        crop = image.crop((left, top, left + side, top + side)).resize((self.image_size, self.image_size), Image.BICUBIC)
        if self.flip and torch.rand((), generator=generator).item() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return to_tensor(np.array(crop))


class EvalTransform:
    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, image: Image.Image, generator: torch.Generator = None) -> torch.Tensor:
        """``generator`` is unused (the center crop is deterministic); accepted so both transforms share a signature."""
        return to_tensor(center_crop_arr(image.convert("RGB"), self.image_size))
