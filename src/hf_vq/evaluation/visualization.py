"""Image grids of originals vs reconstructions (and of samples)."""

from pathlib import Path

import torch
from PIL import Image


def make_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> Image.Image:
    """(B, C, H, W) in [-1, 1] -> one PIL image, ``nrow`` images per row."""
    if images.ndim != 4:
        raise ValueError(f"make_grid expects (B, C, H, W); got {tuple(images.shape)}.")
    unit = ((images.detach().float().clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8).cpu()
    b, c, h, w = unit.shape
    ncol = min(nrow, b)
    nrows = (b + ncol - 1) // ncol
    canvas = torch.full((c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), 255, dtype=torch.uint8)
    for i in range(b):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        canvas[:, top : top + h, left : left + w] = unit[i]
    array = canvas.permute(1, 2, 0).numpy()
    return Image.fromarray(array.squeeze(-1) if c == 1 else array)


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
    make_grid(torch.cat(rows), nrow=nrow).save(path)
    return path
