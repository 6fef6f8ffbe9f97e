"""Image grids of originals vs reconstructions, and of generated samples."""

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, C, H, W) in [-1, 1] -> (B, H, W, C) uint8 (the metrics protocol's clamp, then [0, 1] -> 0-255)."""
    images = ((images.detach().float().clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images, num_columns: int | None = None, padding: int = 0) -> Image.Image:
    """One PIL image of a batch: a (B, C, H, W) tensor in [-1, 1] or a (B, H, W, C) uint8 array.

    ``num_columns`` images per row (default: a square grid); ``padding`` white pixels between them.
    """
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(f"make_grid expects a (B, C, H, W) tensor; got shape {tuple(images.shape)}.")
        images = to_uint8(images)
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"make_grid expects a (B, H, W, C) uint8 array; got {images.dtype} {images.shape}.")
    count, height, width, channels = images.shape
    num_columns = min(num_columns or math.ceil(math.sqrt(count)), count)
    num_rows = math.ceil(count / num_columns)
    grid = np.full(
        (num_rows * (height + padding) + padding, num_columns * (width + padding) + padding, channels), 255, dtype=np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, num_columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return Image.fromarray(grid.squeeze(-1) if channels == 1 else grid)


def save_reconstruction_grid(originals: torch.Tensor, reconstructions: torch.Tensor, path, nrow: int = 8) -> Path:
    """Rows alternate: a row of originals, then the row of their reconstructions."""
    if originals.shape != reconstructions.shape:
        raise ValueError(f"Shapes differ: {tuple(originals.shape)} vs {tuple(reconstructions.shape)}.")
    rows = []
    for start in range(0, originals.shape[0], nrow):
        rows.append(originals[start : start + nrow])
        rows.append(reconstructions[start : start + nrow])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(torch.cat(rows), num_columns=nrow, padding=2).save(path)
    return path
