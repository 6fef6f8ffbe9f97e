"""Per-image reconstruction metrics of the benchmark protocol.

Images are (B, C, H, W) tensors in [-1, 1]; they are clamped to [-1, 1] and mapped to
[0, 1] first, and every metric uses data_range 1. PSNR and SSIM reproduce
scikit-image's ``peak_signal_noise_ratio`` / ``structural_similarity`` (as the benchmark
repository calls them: ``data_range=1, channel_axis=-1``) in torch, so they run on the
evaluation device without a round trip through numpy.
"""

import torch
import torch.nn.functional as F

from ..modules.lpips_network import MissingWeightsError
from ..modules.lpips_network import load_lpips_network as _load_lpips_network

# scikit-image's structural_similarity defaults (gaussian_weights=False).
SSIM_WINDOW_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# AlexNet's stride-4 stem and two 3x3/2 max pools leave no pixel for smaller images.
LPIPS_MIN_IMAGE_SIZE = 31

__all__ = ["MissingWeightsError", "load_lpips_network", "lpips_distance", "psnr", "ssim", "to_unit_range"]

def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    return (images.detach().float().clamp(-1, 1) + 1) / 2


def _check_same_shape(reconstructions: torch.Tensor, originals: torch.Tensor) -> None:
    if reconstructions.shape != originals.shape:
        raise ValueError(f"Shapes differ: {tuple(reconstructions.shape)} vs {tuple(originals.shape)}.")
    if reconstructions.ndim != 4:
        raise ValueError(f"Metrics take image batches (B, C, H, W); got shape {tuple(reconstructions.shape)}.")


def psnr(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """PSNR per image (B,), data_range 1, on images in [-1, 1] (as skimage's peak_signal_noise_ratio)."""
    _check_same_shape(reconstructions, originals)
    x, y = to_unit_range(reconstructions).double(), to_unit_range(originals).double()
    mse = (x - y).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).float()


def ssim(reconstructions: torch.Tensor, originals: torch.Tensor) -> torch.Tensor:
    """SSIM per image (B,), as skimage's ``structural_similarity(data_range=1, channel_axis=-1)``.

    skimage's defaults: a 7x7 uniform window, sample (N-1) covariances, K1 0.01, K2 0.03,
    the SSIM map averaged after cropping (7 - 1) / 2 pixels off every border, then the
    mean over channels. The crop leaves exactly the positions whose window lies inside
    the image, so a padding-free average pool gives the same map without any border mode.
    """
    _check_same_shape(reconstructions, originals)
    height, width = originals.shape[-2:]
    if min(height, width) < SSIM_WINDOW_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW_SIZE}x{SSIM_WINDOW_SIZE} pixels (its window); got {height}x{width}."
        )
    x, y = to_unit_range(reconstructions).double(), to_unit_range(originals).double()

    def window_mean(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, SSIM_WINDOW_SIZE, stride=1)

    num_pixels = SSIM_WINDOW_SIZE**2
    sample_correction = num_pixels / (num_pixels - 1)
    mean_x, mean_y = window_mean(x), window_mean(y)
    var_x = sample_correction * (window_mean(x * x) - mean_x * mean_x)
    var_y = sample_correction * (window_mean(y * y) - mean_y * mean_y)
    cov_xy = sample_correction * (window_mean(x * y) - mean_x * mean_y)
    c1, c2 = SSIM_K1**2, SSIM_K2**2  # (K * data_range)^2 with data_range 1
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    # Every channel's map has the same size, so the mean of channel means is the global mean.
    return ssim_map.flatten(1).mean(1).float()


# -- LPIPS ---------------------------------------------------------------------------------


def load_lpips_network(alexnet_weights_path=None):
    """LPIPS (AlexNet, v0.1) with the backbone read from ``alexnet_weights_path`` or torch's hub cache.

    Never downloads; raises :class:`MissingWeightsError` naming the file and where to put it.
    """
    return _load_lpips_network("alex", alexnet_weights_path, alternative="pass its path (--lpips-weights / alexnet_weights_path)")


def lpips_distance(reconstructions: torch.Tensor, originals: torch.Tensor, network) -> torch.Tensor:
    """LPIPS per image (B,) with ``network`` (see :func:`load_lpips_network`), inputs in [-1, 1].

    As the benchmark: images go through [0, 1] and lpips' ``normalize=True``.
    """
    _check_same_shape(reconstructions, originals)
    height, width = originals.shape[-2:]
    if min(height, width) < LPIPS_MIN_IMAGE_SIZE:
        raise ValueError(
            f"LPIPS (AlexNet) needs images of at least {LPIPS_MIN_IMAGE_SIZE}x{LPIPS_MIN_IMAGE_SIZE} pixels; "
            f"got {height}x{width}. Evaluate at a larger --image-size or leave lpips out of --metrics."
        )
    device = next(network.parameters()).device
    with torch.no_grad():
        distance = network(
            to_unit_range(reconstructions).to(device), to_unit_range(originals).to(device), normalize=True
        )
    return distance.flatten().float()
