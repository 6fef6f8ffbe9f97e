"""examples/titok_small_run.py: its repeated-pattern measures on hand-made cases, and its --quick run."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("titok_small_run", REPO / "examples" / "titok_small_run.py")
small_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(small_run)


def test_error_repeating_at_the_patch_period_correlates_fully_and_noise_does_not():
    generator = torch.Generator().manual_seed(0)
    original = torch.rand(2, 3, 32, 32, generator=generator)
    tile = torch.randn(2, 3, 4, 4, generator=generator)
    stamped = original + tile.repeat(1, 1, 8, 8)  # the same 4x4 artifact in every cell
    assert small_run.patch_period_error_correlation(original, stamped, 4) == pytest.approx(1.0, abs=1e-9)
    noisy = original + 0.1 * torch.randn(2, 3, 32, 32, generator=generator)
    assert abs(small_run.patch_period_error_correlation(original, noisy, 4)) < 0.1


def test_cell_similarity_hand_cases():
    tile = torch.randn(1, 3, 4, 4)
    assert small_run.cell_similarity(tile.repeat(1, 1, 4, 4), 4) == pytest.approx(1.0)
    # Two cells x and -x: their mean-removed contents point in opposite directions, cosine -1.
    assert small_run.cell_similarity(torch.cat([tile, -tile], dim=3), 4) == pytest.approx(-1.0)
    image = torch.rand(1, 3, 8, 8)
    assert small_run.excess_cell_similarity(image, image, 4) == 0.0


def test_token_diversity_hand_case():
    indices = torch.tensor([[1, 1, 2, 3], [1, 5, 6, 7]])
    diversity = small_run.token_diversity(indices)
    assert diversity["distinct_codes_per_image"] == pytest.approx((3 / 4 + 4 / 4) / 2)
    assert diversity["distinct_codes_per_position"] == pytest.approx((1 / 2 + 2 / 2 + 2 / 2 + 2 / 2) / 4)


def test_quick_run_writes_grid_metrics_and_table(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--output-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert set(report["metrics"]) == {f"{v}, {s} crops" for v in ("benchmark", "ours") for s in ("held-out", "training")}
    for row in report["metrics"].values():
        assert all(np.isfinite(value) for value in row.values())
        assert -1 <= row["patch_period_error_correlation"] <= 1 and 0 < row["distinct_codes_per_position"] <= 1
    assert report["variants"]["benchmark"]["l2_norm"] and not report["variants"]["ours"]["l2_norm"]
    # 6 rows (held-out originals, benchmark setting, ours; the same for training crops) of 8 images of 32 px.
    assert Image.open(tmp_path / "titok_small_run.png").size == (8 * 33 + 1, 6 * 33 + 1)
    assert "benchmark page" in (tmp_path / "titok_small_run.md").read_text()
