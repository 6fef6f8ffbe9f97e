"""The examples and the quantizer benchmark in their quick forms: they run, and their output means something."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import hf_vq

REPO = Path(__file__).resolve().parents[1]


def run_script(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """Smooth images (gradients + a disc) a tiny tokenizer can learn to reconstruct better."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:40] / 40
    for index in range(6):
        image = np.stack([yy * rng.uniform(0.2, 1), xx * rng.uniform(0.2, 1), np.full_like(yy, rng.uniform())], -1)
        disc = (yy - rng.uniform(0.3, 0.7)) ** 2 + (xx - rng.uniform(0.3, 0.7)) ** 2 < 0.04
        image[disc] = rng.uniform(0, 1, 3)
        Image.fromarray((image * 255).astype(np.uint8)).save(folder / f"{index}.png")
    return folder


def save_tiny_vqgan(path):
    torch.manual_seed(0)
    config = hf_vq.VQGANConfig(image_size=32, base_channels=32, channel_multipliers=[1, 1], num_res_blocks=1,
                               attn_resolutions=[], z_channels=8, codebook_dim=8, codebook_size=32)
    hf_vq.VQGANModel(config).save_pretrained(path)
    hf_vq.VQImageProcessor(size=32).save_pretrained(path)
    return path


def test_finetune_converted_vqgan_lowers_the_reconstruction_loss(image_folder, tmp_path):
    model_dir = save_tiny_vqgan(tmp_path / "vqgan")
    output = tmp_path / "finetuned"
    done = run_script(REPO / "examples" / "finetune_converted_vqgan.py", "--model", model_dir, "--images", image_folder,
                      "--output-dir", output, "--steps", "30", "--batch-size", "4", "--learning-rate", "1e-3")
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((output / "finetune_metrics.json").read_text())
    assert np.isfinite(metrics["reconstruction_loss_before"]) and np.isfinite(metrics["reconstruction_loss_after"])
    assert metrics["reconstruction_loss_after"] < 0.8 * metrics["reconstruction_loss_before"]
    reloaded = hf_vq.VQGANModel.from_pretrained(output)  # the saved tokenizer loads and is the fine-tuned one
    original = hf_vq.VQGANModel.from_pretrained(model_dir)
    assert not torch.allclose(reloaded.decoder.conv_out.weight, original.decoder.conv_out.weight)


def load_example(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_converted_vqgan_refuses_other_tokenizers_clearly(image_folder, tmp_path, capsys):
    example = load_example("finetune_converted_vqgan")
    hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16)).save_pretrained(
        tmp_path / "vqvae"
    )
    common = ["--images", str(image_folder), "--output-dir", str(tmp_path / "out"), "--steps", "1"]
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--model", str(tmp_path / "vqvae"), *common])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "holds a 'vqvae' model; this example fine-tunes converted VQGAN / LlamaGen VQ" in err
    assert "hf-vq train CONFIG --model.pretrained" in err
    with pytest.raises(SystemExit) as exit_info:
        example.main(["--model", str(tmp_path / "missing"), *common])
    assert exit_info.value.code == 2 and "no config.json there" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_quantizer_benchmark_quick_measures_every_peer(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_VQ_CACHE", str(tmp_path / "cache"))  # the fused kernel's build goes there
    output = tmp_path / "speed.json"
    done = run_script(REPO / "benchmarks" / "quantizer_speed.py", "--quick", "--output", output)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(output.read_text())
    rows = results["rows"]
    measured = {(row["impl"], row["mode"]) for row in rows if "seconds" in row}
    has_compiler = shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc")  # CI has gcc
    impls = ("hf_vq", "hf_vq_fused", "cdist", "vqp") if has_compiler else ("hf_vq", "cdist", "vqp")
    assert measured == {(impl, mode) for impl in impls for mode in ("forward", "forward+backward")}, [
        row.get("error") for row in rows
    ]
    assert all(np.isfinite(row["seconds"]) and row["seconds"] > 0 for row in rows if row["impl"] in impls)
    # all four find the same nearest codes on the same data
    by_case = {(row["impl"], row["mode"]): row["indices"] for row in rows}
    for mode in ("forward", "forward+backward"):
        assert by_case[("hf_vq", mode)] == by_case[("cdist", mode)] == by_case[("vqp", mode)]
        assert not has_compiler or by_case[("hf_vq_fused", mode)] == by_case[("hf_vq", mode)]
    assert results["index_mismatches_vs_cdist"] == {"4096x1024": 0}
    assert "| 4096 x 1024 | forward+backward |" in done.stdout and "failed" not in done.stdout
