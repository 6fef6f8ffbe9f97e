"""Evaluation: the papers' metrics, codebook statistics, rFID, gFID, benchmark tables (and, re-exported from
``hf_vq.utils.images``, the image grids)."""

from pathlib import Path

from ..utils.images import make_grid, save_reconstruction_grid, to_uint8
from .benchmark import (
    benchmark_table,
    load_run,
    metrics_markdown,
    plot_codebook_usage,
    render_benchmark,
)
from .fid import (
    FID_PROTOCOLS,
    FIDInceptionV3,
    FIDStatistics,
    TorchFidelityInception,
    compute_fid_statistics,
    frechet_distance,
    load_fid_feature_extractor,
    load_fid_inception,
    load_torch_fidelity_inception,
)
from .gfid import compute_gfid, compute_inception_score
from .metrics import (
    MissingWeightsError,
    load_lpips_network,
    lpips_distance,
    psnr,
    ssim,
    to_unit_range,
)
from .model_evaluation import evaluate_model_dir
from .reconstruction import AVAILABLE_METRICS, DEFAULT_METRICS, evaluate_reconstruction

EVALUATE_MODULES_DIR = Path(__file__).parent / "evaluate_modules"


def evaluate_module_path(name: str) -> str:
    """Path of the packaged ``evaluate`` module ``name`` for ``evaluate.load(path)`` (offline)."""
    path = EVALUATE_MODULES_DIR / name / f"{name}.py"
    if not path.is_file():
        available = sorted(p.name for p in EVALUATE_MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"No evaluate module {name!r} in hf_vq; available: {available}.")
    return str(path)


__all__ = [
    "AVAILABLE_METRICS",
    "DEFAULT_METRICS",
    "FID_PROTOCOLS",
    "FIDInceptionV3",
    "FIDStatistics",
    "MissingWeightsError",
    "TorchFidelityInception",
    "benchmark_table",
    "compute_gfid",
    "compute_inception_score",
    "compute_fid_statistics",
    "evaluate_model_dir",
    "evaluate_module_path",
    "evaluate_reconstruction",
    "frechet_distance",
    "load_fid_feature_extractor",
    "load_fid_inception",
    "load_lpips_network",
    "load_run",
    "load_torch_fidelity_inception",
    "lpips_distance",
    "make_grid",
    "to_uint8",
    "metrics_markdown",
    "plot_codebook_usage",
    "psnr",
    "render_benchmark",
    "save_reconstruction_grid",
    "ssim",
    "to_unit_range",
]
