"""Per-image reconstruction metrics of the benchmark protocol.

Images are (B, C, H, W) tensors in [-1, 1]; they are clamped to [-1, 1] and mapped to
[0, 1] first, and every metric uses data_range 1.
"""

import torch


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return (images.detach().float().clamp(-1, 1) + 1) / 2


def psnr(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """PSNR per image (B,), data_range 1, on images in [-1, 1] (as skimage's peak_signal_noise_ratio)."""
    if reconstructions.shape != originals.shape:
        raise ValueError(f"Shapes differ: {tuple(reconstructions.shape)} vs {tuple(originals.shape)}.")
    x, y = to_unit_range(reconstructions).double(), to_unit_range(originals).double()
    mse = (x - y).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).float()
