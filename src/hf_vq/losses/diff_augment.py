"""Differentiable augmentation of the discriminator's inputs (DiffAugment: Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training", arXiv 2006.10738).

A discriminator trained on few images memorises them and wins; its gradient then rewards whatever separates
those images from the generator's, not realism. DiffAugment draws a random augmentation for every image the
discriminator sees, real or generated, in its own step and in the generator's, and the augmentation is
differentiable, so the generator is trained through it. The three policies and their ranges are the paper's,
for images in [-1, 1]:

- ``color``: brightness + U(-0.5, 0.5); saturation: each pixel's distance to its channel mean x U(0, 2);
  contrast: the distance to the image mean x U(0.5, 1.5);
- ``translation``: a shift by up to 1/8 of the side in each direction (whole pixels), zeros shifted in;
- ``cutout``: a rectangle of half the height and half the width, set to 0; its centre is drawn as in the
  official code (rows 0 to H - 1 for an odd size, 0 to H for an even one, so that it overhangs either edge
  by as much; the same for columns), clipped at the image's edges.

Every draw is per image, from torch's global generator (the engine seeds it and saves its state).
"""

from collections.abc import Sequence

import torch
from torch import nn

DIFF_AUGMENT_POLICIES = ("color", "translation", "cutout")


def _uniform(images: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """One draw per image, shaped to broadcast over (C, H, W)."""
    return low + (high - low) * torch.rand(images.shape[0], 1, 1, 1, device=images.device, dtype=images.dtype)


def random_color(images: torch.Tensor) -> torch.Tensor:
    """Brightness, then saturation, then contrast, each with its own draw per image."""
    images = images + _uniform(images, -0.5, 0.5)
    channel_mean = images.mean(dim=1, keepdim=True)
    images = (images - channel_mean) * _uniform(images, 0.0, 2.0) + channel_mean
    image_mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - image_mean) * _uniform(images, 0.5, 1.5) + image_mean


def _integers_per_axis(images: torch.Tensor, counts, offsets=(0, 0)) -> torch.Tensor:
    """(B, 2) whole numbers, one per image and axis (row, column), uniform in [-offset, count - offset). The bounds
    stay Python numbers: no tensor copied from the host every step."""
    draws = torch.rand(images.shape[0], 2, device=images.device)
    return torch.stack([torch.floor(draws[:, axis] * count).long() - offset
                        for axis, (count, offset) in enumerate(zip(counts, offsets))], dim=1)


def translate(images: torch.Tensor, shifts: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Shift image b by ``shifts[b] = (down, right)`` whole pixels, each in [-max_shift, max_shift]:
    out[b, :, y, x] = images[b, :, y - down, x - right], zero where that falls outside the image. (``max_shift``
    is the caller's bound, a Python int: reading it from ``shifts`` would wait for the device every step.)"""
    batch, _, height, width = images.shape
    padded = nn.functional.pad(images, (max_shift,) * 4)
    rows = torch.arange(height, device=images.device)[None, :] - shifts[:, 0:1] + max_shift  # (B, H)
    cols = torch.arange(width, device=images.device)[None, :] - shifts[:, 1:2] + max_shift  # (B, W)
    picked = padded[torch.arange(batch, device=images.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2)  # advanced indexing put the channel axis last


def random_translation(images: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    height, width = images.shape[-2:]
    max_shifts = (int(height * ratio + 0.5), int(width * ratio + 0.5))
    shifts = _integers_per_axis(images, counts=[2 * bound + 1 for bound in max_shifts], offsets=max_shifts)
    return translate(images, shifts, max(max_shifts))


def cut_out(images: torch.Tensor, centres: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Set to 0 a ``size = (rows, columns)`` rectangle of image b whose top-left corner is ``centres[b] - size // 2``
    (row, column), clipped at the image's edges."""
    height, width = images.shape[-2:]
    size_rows, size_cols = size
    top = centres[:, 0:1] - size_rows // 2  # (B, 1)
    left = centres[:, 1:2] - size_cols // 2
    rows = torch.arange(height, device=images.device)[None, :]
    cols = torch.arange(width, device=images.device)[None, :]
    inside_rows = (rows >= top) & (rows < top + size_rows)  # (B, H)
    inside_cols = (cols >= left) & (cols < left + size_cols)  # (B, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])
    return images * keep[:, None].to(images.dtype)


def random_cutout(images: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    sides = images.shape[-2:]
    sizes = tuple(int(side * ratio + 0.5) for side in sides)
    # Centres in [0, side + 1 - size % 2) (the official range): an even-sized rectangle centred on row `side`
    # overhangs the bottom edge by half its height, as one centred on row 0 overhangs the top.
    centres = _integers_per_axis(images, counts=[side + 1 - size % 2 for side, size in zip(sides, sizes)])
    return cut_out(images, centres, sizes)


_POLICY_FUNCTIONS = {"color": random_color, "translation": random_translation, "cutout": random_cutout}


def check_diff_augment_policy(policy: Sequence[str]) -> None:
    unknown = [name for name in policy if name not in DIFF_AUGMENT_POLICIES]
    if unknown:
        raise ValueError(f"Unknown DiffAugment policies {unknown}; choose from {list(DIFF_AUGMENT_POLICIES)}.")
    if len(set(policy)) != len(policy):
        raise ValueError(f"DiffAugment policy {list(policy)} names one policy twice; name each at most once.")


class DiffAugment(nn.Module):
    """Applies the named policies in order (the paper's: color, translation, cutout); no parameters."""

    def __init__(self, policy: Sequence[str] = DIFF_AUGMENT_POLICIES):
        super().__init__()
        check_diff_augment_policy(policy)
        if not policy:
            raise ValueError("DiffAugment needs at least one policy; leave it out to augment nothing.")
        self.policy = tuple(policy)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for name in self.policy:
            images = _POLICY_FUNCTIONS[name](images)
        return images

    def extra_repr(self) -> str:
        return f"policy={list(self.policy)}"


__all__ = ["DIFF_AUGMENT_POLICIES", "DiffAugment", "check_diff_augment_policy", "cut_out", "random_color",
           "random_cutout", "random_translation", "translate"]
