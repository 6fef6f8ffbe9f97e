"""Evaluation: the papers' metrics, codebook statistics and image grids."""

from .metrics import psnr, to_unit_range
from .reconstruction import evaluate_reconstruction
from .visualization import make_grid, save_reconstruction_grid

__all__ = ["evaluate_reconstruction", "make_grid", "psnr", "save_reconstruction_grid", "to_unit_range"]
