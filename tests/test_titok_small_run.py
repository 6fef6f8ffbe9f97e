"""examples/titok_small_run.py: its repeated-pattern measure against numpy's FFT and on synthetic images
(a pattern tiled over a photograph scores high, the photograph alone does not), and its --quick run."""

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


def photo_crops() -> torch.Tensor:
    """Four 64 px crops of scikit-image's astronaut, in [-1, 1] (an independent photograph, not the run's data)."""
    import skimage.data

    array = skimage.data.astronaut()
    crops = [array[top : top + 64, left : left + 64] for top, left in ((40, 200), (300, 100), (150, 300), (400, 400))]
    return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).double() / 127.5 - 1


def fft_periodic_energy(image: np.ndarray, cell: int) -> float:
    """Per-pixel energy of the image's non-zero frequencies on the lattice of multiples of the cell
    frequency (Parseval): the cell-periodic part of the image minus its mean, computed in Fourier space."""
    _, h, w = image.shape
    spectrum = np.fft.fft2(image, axes=(1, 2))
    on_lattice = np.zeros((h, w), dtype=bool)
    on_lattice[:: h // cell, :: w // cell] = True
    on_lattice[0, 0] = False
    return float((np.abs(spectrum[:, on_lattice]) ** 2).sum() / (h * w) ** 2 / image.shape[0])


@pytest.mark.parametrize("cell", [4, 8, 16])
def test_periodic_energy_equals_the_fourier_lattice_energy(cell):
    rng = np.random.default_rng(0)
    images = torch.cat([photo_crops(), torch.from_numpy(rng.normal(size=(2, 3, 64, 64)))])
    ours = small_run.periodic_energy(images, cell).numpy()
    reference = [fft_periodic_energy(image, cell) for image in images.numpy()]
    np.testing.assert_allclose(ours, reference, rtol=1e-9)


def test_a_pattern_tiled_over_a_photograph_scores_high_and_the_photograph_alone_does_not():
    photos = photo_crops()
    tile = 0.1 * torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    tiled = photos + tile.repeat(1, 1, 8, 8)  # the same 8 x 8 pattern painted into every decoder cell
    assert small_run.periodic_energy_ratio(photos, photos, 8) == pytest.approx(1.0)
    assert small_run.periodic_energy_ratio(photos, tiled, 8) > 10
    # A flat reconstruction (each image's mean colour) paints nothing into the cells: 0.
    flat = photos.mean(dim=(2, 3), keepdim=True).expand_as(photos)
    assert small_run.periodic_energy_ratio(photos, flat, 8) == pytest.approx(0.0, abs=1e-12)
    # A wave repeating at another period (32 px: 2 cycles per image, off the cell lattice) changes nothing.
    wave = 0.3 * torch.sin(2 * torch.pi * 2 * torch.arange(64, dtype=torch.float64) / 64).view(1, 1, 1, 64)
    assert small_run.periodic_energy_ratio(photos, photos + wave, 8) == pytest.approx(1.0, abs=1e-9)
    # The photograph's own cells share little: its periodic component is a few percent of its cell detail;
    # a pure tiling is all periodic.
    assert small_run.periodic_fraction(photos, 8) < 0.1
    assert small_run.periodic_fraction(tiled, 8) > 5 * small_run.periodic_fraction(photos, 8)
    assert small_run.periodic_fraction(tile.repeat(1, 1, 8, 8), 8) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not a multiple of the cell size"):
        small_run.cell_periodic_component(photos[..., :60], 8)


def test_amplified_detail_keeps_the_mean_and_scales_the_rest():
    image = torch.full((1, 3, 4, 4), 0.2)
    image[..., 0, 0] = 0.3  # one pixel 0.1 above the rest
    amplified = small_run.amplified_detail(image, gain=3)
    mean = image.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(amplified - mean, 3 * (image - mean))
    assert small_run.amplified_detail(torch.ones(1, 3, 4, 4) * 0.9 + torch.eye(4), gain=10).max() == 1  # clamped


def test_trivial_baselines_against_skimage():
    """The no-tokenizer rows, rebuilt with numpy and scored with scikit-image's PSNR on [0, 1] images."""
    from skimage.metrics import peak_signal_noise_ratio

    photos = photo_crops().float()
    baselines = small_run.trivial_baselines(photos, 16)
    unit = (photos.numpy() + 1) / 2
    cells = unit.reshape(4, 3, 4, 16, 4, 16).mean(axis=(3, 5), keepdims=True)
    references = {
        "mean image of all crops": np.broadcast_to(unit.mean(axis=0, keepdims=True), unit.shape),
        "each crop's mean colour": np.broadcast_to(unit.mean(axis=(2, 3), keepdims=True), unit.shape),
        "each crop's 16 px cell means": np.broadcast_to(cells, (4, 3, 4, 16, 4, 16)).reshape(unit.shape),
    }
    assert set(baselines) == set(references)
    for name, images in references.items():
        expected = np.mean([peak_signal_noise_ratio(o, r, data_range=1) for o, r in zip(unit, images)])
        assert baselines[name]["psnr"] == pytest.approx(expected, abs=1e-3), name
    # Finer detail kept -> higher PSNR (a sanity order that every photograph satisfies).
    order = [baselines[name]["psnr"] for name in references]
    assert order == sorted(order)


def test_token_diversity_hand_case():
    indices = torch.tensor([[1, 1, 2, 3], [1, 5, 6, 7]])
    diversity = small_run.token_diversity(indices)
    assert diversity["distinct_codes_per_image"] == pytest.approx((3 / 4 + 4 / 4) / 2)
    assert diversity["distinct_codes_per_position"] == pytest.approx((1 / 2 + 2 / 2 + 2 / 2 + 2 / 2) / 4)


def test_held_out_crops_come_from_other_photographs():
    assert not set(small_run.TRAIN_SOURCES) & set(small_run.HELD_OUT_SOURCES)
    crops = small_run.random_crops(small_run.HELD_OUT_SOURCES, 4, seed=1)
    assert [crop.size for crop in crops] == [(64, 64)] * 4 and all(crop.mode == "RGB" for crop in crops)


def test_quick_run_writes_grid_metrics_and_table(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "titok_small_run.py"), "--quick", "--output-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "titok_small_run.json").read_text())
    assert set(report["metrics"]) == {"benchmark, seed 0", "ours, seed 0"}
    for row in report["metrics"].values():
        assert all(np.isfinite(value) for value in row.values())
        assert row["periodic_energy_ratio"] >= 0 and 0 < row["distinct_codes_per_position"] <= 1
        assert 0 < row["codebook_usage"] <= 1
    assert report["variants"]["benchmark"]["l2_norm"] and not report["variants"]["ours"]["l2_norm"]
    # 5 rows (held-out crops, benchmark setting, ours, both with amplified detail) of 8 images of 64 px.
    assert Image.open(tmp_path / "titok_small_run.png").size == (8 * 65 + 1, 5 * 65 + 1)
    assert "benchmark page" in (tmp_path / "titok_small_run.md").read_text()
    assert "each crop's mean colour" in report["baselines"] and "no tokenizer" in (tmp_path / "titok_small_run.md").read_text()
