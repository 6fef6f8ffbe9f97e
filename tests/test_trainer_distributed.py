"""Two CPU processes under ``accelerate launch``: data is sharded, codebook statistics are shared."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer import make_image_folder, tiny_raw

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("streaming", [False, True], ids=["map-style", "streaming"])
def test_two_processes_see_different_images_and_keep_identical_codebooks(tmp_path, streaming):
    images = make_image_folder(tmp_path / "images", 32)
    raw = tiny_raw(
        tmp_path,
        model={"use_ema": True, "kmeans_init": True, "codebook_size": 16},
        data={"train_data_dir": str(images), "eval_data_dir": str(images), "max_eval_images": 8, "streaming": streaming},
        loss={"disc_weight": 0.5, "disc_start": 1, "disc_layers": 2, "disc_channels": 8, "lecam_weight": 0.01},
        training={
            "batch_size": 4,
            "max_steps": 3,
            "gradient_accumulation_steps": 2,
            "ema_decay": 0.9,
            "checkpoint_every": 3,
            "report_to": "none",
        },
    )
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(raw))
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    # Accelerate runs several CPU processes (gloo) through its torchrun launcher when told to use the CPU.
    env = {
        **os.environ,
        "ACCELERATE_USE_CPU": "true",
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO / 'tests'}",
        "OMP_NUM_THREADS": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = [
        accelerate,
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(REPO / "tests" / "distributed_probe.py"),
        str(config_path),
        str(tmp_path),
    ]
    run = subprocess.run(command, check=False, env=env, capture_output=True, text=True, timeout=400)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]

    rank0, rank1 = (torch.load(tmp_path / f"rank{i}.pt", weights_only=False) for i in (0, 1))
    assert rank0["world_size"] == rank1["world_size"] == 2
    # evaluation splits the 8 held-out images between the processes and sums the code counts
    assert rank0["metrics"]["num_tokens"] == 8 * 4 * 4
    # each process trains on different images
    assert rank0["first_batch"].shape == rank1["first_batch"].shape == (4, 3, 16, 16)
    assert not torch.allclose(rank0["first_batch"], rank1["first_batch"])
    # k-means init and EMA codebook updates use statistics summed over both processes: the
    # codebooks (a parameter that gets no gradient, so DDP does not sync it) stay identical
    codebook = "quantizer.codebook"
    assert codebook in rank0["state"]
    assert rank0["state"]["quantizer.behaviours.0.initialised"].item()
    assert not torch.allclose(rank0["state"][codebook], rank0["state"][codebook].mean(0))  # not collapsed
    # Exact on purpose: replicas apply the same all-reduced update to the same weights and DDP
    # never re-synchronises them, so any difference, however small, is a bug that grows.
    for name, tensor in rank0["state"].items():
        assert torch.equal(tensor, rank1["state"][name]), name
    # both processes wrote their RNG states into the one checkpoint, which was then published
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-00000003"
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text() == checkpoint.name
    files = {p.name for p in checkpoint.iterdir()}
    assert {"rng_state_0.safetensors", "rng_state_1.safetensors", "model.safetensors", "trainer_state.json"} <= files
    assert all(name.endswith((".safetensors", ".json")) for name in files), files  # no pickles
    # the discriminator trained on both ranks (steps >= disc_start have its loss)
    assert all("discriminator" in entry for entry in rank0["history"][1:])
