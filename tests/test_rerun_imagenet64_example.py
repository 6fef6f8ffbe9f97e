"""examples/rerun_imagenet64_table.py at an even smaller scale: 2 rows, 30 steps, small image folders."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("rerun_imagenet64_table", REPO / "examples" / "rerun_imagenet64_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_crops(folder: Path, names, count: int, seed: int) -> list:
    """``count`` random 32 px crops of the scikit-image photographs ``names``, saved as PNG."""
    import skimage.data

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    images = []
    for i in range(count):
        photo = np.asarray(Image.fromarray(getattr(skimage.data, names[i % len(names)])()).convert("RGB"))
        side = int(rng.integers(48, 128))
        top, left = int(rng.integers(0, photo.shape[0] - side)), int(rng.integers(0, photo.shape[1] - side))
        image = Image.fromarray(photo[top : top + side, left : left + side]).resize((32, 32), Image.BICUBIC)
        image.save(folder / f"{i:03d}.png")
        images.append(image)
    return images


def constant_gray_psnr(images) -> float:
    """PSNR (dB, [0, 1] range) of predicting mid-gray for every pixel: what an untrained decoder is worth."""
    values = []
    for image in images:
        array = np.asarray(image, dtype=np.float64) / 255.0
        values.append(10 * np.log10(1.0 / np.mean((array - 0.5) ** 2)))
    return float(np.mean(values))


def test_quick_rerun_trains_rows_and_renders_both_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no LPIPS / Inception weights: those cells are "-"
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))
    example = load_example()
    write_crops(tmp_path / "train", ["astronaut", "coffee", "chelsea"], 96, seed=0)
    eval_images = write_crops(tmp_path / "eval", ["camera", "rocket"], 32, seed=1)
    rows = ["simvq_k512", "fsq_8-8-8"]
    out = tmp_path / "rerun"
    results = example.main(["--quick", "--rows", ",".join(rows), "--data", str(tmp_path / "train"),
                            "--eval-data", str(tmp_path / "eval"), "--max-steps", "100", "--hidden-dim", "16",
                            "--image-size", "16", "--batch-size", "16", "--learning-rate", "2e-3",
                            "--output-dir", str(out)])

    table = (out / "imagenet64_table.md").read_text()
    for row in rows:
        metrics = json.loads((out / row / "eval_metrics.json").read_text())
        assert metrics["model_type"] == results[row][0]["model"]["model_type"]
        line = next(line for line in table.splitlines() if line.startswith(f"| {row} |"))
        # Each cell is ours / published: ours is read back from the evaluation, published from the benchmark page.
        usage_ours, usage_published = re.search(r"\| ([\d.]+)% / ([\d.]+)% \|", line).groups()
        assert float(usage_ours) == round(100 * metrics["codebook_usage"], 2)
        assert float(usage_published) == round(100 * example.PUBLISHED[row][0], 2)
        assert f"{metrics['psnr']:.4f} / {example.PUBLISHED[row][1]:.4f}" in line
        assert "- / 0." in line  # LPIPS: no weights here, published value shown
        assert 0 < metrics["codebook_usage"] <= 1
    assert "(ours / published)" in table and "16 px, 100 steps" in table

    # Training did something: better than a constant mid-gray guess on the same held-out images.
    from hf_vq.processing import center_crop_arr

    baseline = constant_gray_psnr([center_crop_arr(image, 16) for image in eval_images])
    for row in rows:
        assert results[row][1]["psnr"] > baseline + 0.5, (row, results[row][1]["psnr"], baseline)
        history = json.loads((out / row / "train_history.json").read_text())
        assert history[-1]["reconstruction"] < history[0]["reconstruction"]

    with Image.open(out / "imagenet64_usage.png") as plot:
        assert plot.size[0] > 300 and plot.size[1] > 200
