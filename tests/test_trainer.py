"""The trainer end to end on tiny models: GAN + LPIPS, image folders with a corrupt file,
streaming, NaN stop, and resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import lpips
import numpy as np
import pytest
import yaml
from PIL import Image

from hf_vq.losses import LPIPSLoss
from hf_vq.training import NonFiniteLossError, TrainConfig, run_training, train

REPO = Path(__file__).resolve().parents[1]


# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def make_image_folder(path: Path, count: int, corrupt: bool = False, seed: int = 0) -> Path:
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = (rng.random((6, 6, 3)) * 255).astype("uint8")
        Image.fromarray(pixels).resize((24, 24), Image.BICUBIC).save(path / f"img{i:03d}.png")
    if corrupt:
        (path / "broken.png").write_bytes(b"this is not a png" * 8)
    return path


def tiny_raw(tmp_path, **sections) -> dict:
    raw = {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "model": {"model_type": "vqvae", "image_size": 16, "hidden_dim": 16, "codebook_size": 32,
                  "codebook_dim": 8, "l2_norm": True},
        "data": {"dataset": "embedded", "image_size": 16, "max_eval_images": 32},
        "training": {"batch_size": 8, "max_steps": 6, "learning_rate": 1e-3, "log_every": 1},
        "eval": {"batch_size": 32, "num_grid_images": 4},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def random_lpips() -> LPIPSLoss:
    # LPIPS's linear layers ship with the package; the VGG trunk is random here (no download in CI).
    return LPIPSLoss(network=lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False))


def scalar_tags(log_dir: Path) -> set:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return set(events.Tags()["scalars"]), set(events.Tags()["images"])


def test_gan_lpips_run_with_ema_accumulation_and_tensorboard(tmp_path):
    raw = tiny_raw(
        tmp_path,
        loss={"lpips_weight": 1.0, "disc_weight": 0.8, "disc_start": 2, "disc_layers": 2, "disc_channels": 8,
              "lecam_weight": 0.001, "reconstruction": "l1"},
        training={"gradient_accumulation_steps": 2, "ema_decay": 0.9, "lr_scheduler": "cosine", "warmup_steps": 2,
                  "max_grad_norm": 1.0, "log_images_every": 3},
    )
    result = run_training(TrainConfig.from_dict(raw), perceptual_loss=random_lpips())
    history = result.history
    assert [h["step"] for h in history] == list(range(6))
    for entry in history[:2]:  # before disc_start: no GAN term, no discriminator update
        assert "generator_adversarial" not in entry and "discriminator" not in entry
    for entry in history[2:]:
        assert entry["adversarial_weight"] > 0 and {"discriminator", "lecam", "lpips"} <= set(entry)
        expected = (entry["reconstruction"] + entry["lpips"] + entry["quantizer_commitment"]
                    + entry["quantizer_codebook"] + entry["adversarial_weight"] * entry["generator_adversarial"])
        assert entry["total"] == pytest.approx(expected, rel=1e-5)
    assert all(np.isfinite(h["total"]) for h in history)

    out = result.output_dir
    for name in ("model.safetensors", "preprocessor_config.json", "reconstructions.png", "metrics.json",
                 "train_history.json", "train_config.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"] == "EMA (decay 0.9)" and metrics["num_images"] == 32
    scalars, images = scalar_tags(out / "logs" / "hf_vq")
    assert {"train/lpips", "train/discriminator", "train/lecam", "train/codebook_usage", "train/lr",
            "train/disc_lr", "data/unreadable_images"} <= scalars
    assert images, "reconstruction grids were not logged"


def test_discriminator_loss_weight_scales_only_the_discriminators_loss(tmp_path):
    # LlamaGen's VQLoss multiplies the discriminator's hinge loss by disc_weight; taming does not. At the
    # first discriminator step both runs are identical up to that factor (the discriminator is not updated yet).
    def first_discriminator_step(weight):
        raw = tiny_raw(tmp_path / str(weight), loss={"disc_weight": 0.5, "adaptive_disc_weight": False, "disc_start": 1,
                                                     "disc_layers": 2, "disc_channels": 8,
                                                     "discriminator_loss_weight": weight},
                       training={"max_steps": 2})
        return run_training(TrainConfig.from_dict(raw)).history[1]

    plain, scaled = first_discriminator_step(1.0), first_discriminator_step(0.5)
    assert scaled["generator_adversarial"] == pytest.approx(plain["generator_adversarial"], rel=1e-6)
    assert scaled["discriminator"] == pytest.approx(0.5 * plain["discriminator"], rel=1e-6)
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)), halved; with logits near 0 it is near 1
    assert 0.5 < plain["discriminator"] < 2.0
    with pytest.raises(ValueError, match="discriminator_loss_weight"):
        TrainConfig.from_dict(tiny_raw(tmp_path, loss={"discriminator_loss_weight": -1.0}))


def test_image_folder_with_a_corrupt_file_is_skipped_and_counted(tmp_path):
    train_dir = make_image_folder(tmp_path / "train", 40, corrupt=True)
    eval_dir = make_image_folder(tmp_path / "eval", 8, seed=1)
    raw = tiny_raw(
        tmp_path,
        data={"train_data_dir": str(train_dir), "eval_data_dir": str(eval_dir)},
        loss={"disc_weight": 0.1, "adaptive_disc_weight": False, "discriminator": "stylegan",
              "disc_loss": "non_saturating", "disc_channels": 8},
        # 41 files / batch 8 = 5 batches: 5 steps read every file once, the broken one included
        training={"max_steps": 5, "report_to": "none", "mixed_precision": "bf16"},
    )
    with pytest.warns(UserWarning, match="broken.png"):
        result = run_training(TrainConfig.from_dict(raw))
    assert result.metrics["unreadable_images_skipped"] == 1
    assert result.metrics["num_images"] == 8
    assert all(entry["adversarial_weight"] == pytest.approx(0.1) for entry in result.history)


def test_dataloader_workers_give_the_same_crops_and_count_unreadable_images(tmp_path):
    import torch

    from hf_vq.data import (
        DecodedImageDataset,
        EpochShuffleSampler,
        TrainTransform,
        collate_images,
        load_image_dataset,
    )

    folder = make_image_folder(tmp_path / "images", 11, corrupt=True)
    dataset = DecodedImageDataset(load_image_dataset("imagefolder", data_dir=str(folder)), TrainTransform(16), seed=3)

    def epoch(workers):
        sampler = EpochShuffleSampler(len(dataset), seed=3)
        loader = torch.utils.data.DataLoader(dataset, batch_size=4, sampler=sampler, num_workers=workers,
                                             collate_fn=collate_images)
        batches = list(loader)
        return torch.cat([b["pixel_values"] for b in batches]), sum(int(b["num_unreadable"]) for b in batches)

    with pytest.warns(UserWarning, match="broken.png"):
        in_process, skipped = epoch(0)
    with_workers, skipped_in_workers = epoch(2)
    assert skipped == skipped_in_workers == 1
    assert torch.equal(in_process, with_workers)  # the same PIL crop + elementwise scaling per image: exact
    dataset.set_epoch(1)  # a new epoch draws new crops
    assert not torch.equal(epoch(0)[0], in_process)


def test_folder_of_only_unreadable_files_fails_fast(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(4):
        (folder / f"x{i}.png").write_bytes(b"garbage")
    raw = tiny_raw(tmp_path, data={"train_data_dir": str(folder), "eval_data_dir": str(folder)},
                   training={"batch_size": 2, "report_to": "none"})
    with pytest.warns(UserWarning), pytest.raises(RuntimeError, match="could not be read"):
        train(TrainConfig.from_dict(raw))


def test_streaming_image_folder(tmp_path):
    train_dir = make_image_folder(tmp_path / "train", 20)
    raw = tiny_raw(tmp_path, data={"train_data_dir": str(train_dir), "eval_data_dir": str(train_dir),
                                   "streaming": True, "max_eval_images": 8},
                   training={"max_steps": 4, "report_to": "none"})
    result = run_training(TrainConfig.from_dict(raw))
    assert len(result.history) == 4 and result.metrics["num_images"] == 8


def test_nan_loss_stops_with_the_step_and_term_and_keeps_the_last_checkpoint(tmp_path):
    from hf_vq.training import build_model

    raw = tiny_raw(tmp_path, training={"checkpoint_every": 2, "report_to": "none"})
    config = TrainConfig.from_dict(raw)
    model = build_model(config.model)
    decode, calls = model.decode_latents, []

    def decode_that_breaks_at_step_3(quantized):
        calls.append(1)
        out = decode(quantized)
        return out * float("nan") if len(calls) == 4 else out  # the 4th training forward = step 3

    model.decode_latents = decode_that_breaks_at_step_3
    with pytest.raises(NonFiniteLossError, match=r"step 3: .*reconstruction=nan") as error:
        train(config, model=model)
    checkpoints = Path(config.output_dir) / "checkpoints"
    assert "checkpoint-00000002" in str(error.value)
    assert (checkpoints / "latest").read_text() == "checkpoint-00000002"
    state = json.loads((checkpoints / "checkpoint-00000002" / "trainer_state.json").read_text())
    assert state["step"] == 2 and all(np.isfinite(h["total"]) for h in state["history"])
    assert not (Path(config.output_dir) / "model.safetensors").exists()


def test_existing_checkpoints_without_resume_is_an_error(tmp_path):
    raw = tiny_raw(tmp_path, data={"max_eval_images": 4},
                   training={"max_steps": 1, "checkpoint_every": 1, "report_to": "none"})
    train(TrainConfig.from_dict(raw))
    with pytest.raises(ValueError, match="resume_from latest"):
        train(TrainConfig.from_dict(raw))


def test_model_pretrained_loads_saved_weights_to_fine_tune(tmp_path):
    import torch

    from hf_vq.training import build_model

    saved = build_model({"model_type": "vqvae", "hidden_dim": 16, "codebook_size": 32, "codebook_dim": 8})
    saved.save_pretrained(tmp_path / "saved")
    loaded = build_model({"pretrained": str(tmp_path / "saved"), "entropy_weight": 0.1})
    assert loaded.config.entropy_weight == 0.1 and loaded.config.hidden_dim == 16
    for name, tensor in saved.state_dict().items():  # loading copies the saved tensors: exact
        assert torch.equal(tensor, loaded.state_dict()[name]), name
    with pytest.raises(ValueError, match="is a 'vqvae' model"):
        build_model({"pretrained": str(tmp_path / "saved"), "model_type": "fsq_vae"})


def _cli(config_path: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "hf_vq.cli.main", "train", str(config_path), *overrides]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> tuple:
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def test_resume_after_sigkill_continues_the_same_loss_curve(tmp_path):
    images = make_image_folder(tmp_path / "images", 40)
    raw = tiny_raw(
        tmp_path,
        model={"kmeans_init": True, "use_ema": True},
        data={"train_data_dir": str(images), "eval_data_dir": str(images), "max_eval_images": 8},
        loss={"disc_weight": 0.5, "disc_start": 2, "disc_layers": 2, "disc_channels": 8, "lecam_weight": 0.01},
        # 40 images / batch 8 = 5 micro-batches per epoch, 2 per step: the resume lands mid-epoch
        training={"max_steps": 8, "gradient_accumulation_steps": 2, "ema_decay": 0.9, "lr_scheduler": "cosine",
                  "warmup_steps": 2, "checkpoint_every": 3, "keep_checkpoints": 2, "report_to": "none"},
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    reference = _cli(config_path, "--output_dir", str(tmp_path / "reference"))
    crashed = _cli(config_path, "--output_dir", str(tmp_path / "crashed"), "--training.debug_kill_at_step", "5")
    (reference_code, reference_log), (crashed_code, crashed_log) = _finish(reference), _finish(crashed)
    assert reference_code == 0, reference_log[-3000:]
    assert crashed_code == -signal.SIGKILL, crashed_log[-3000:]

    checkpoints = tmp_path / "crashed" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "checkpoint-00000003"
    # a save that died half-way leaves only a temp directory: it is ignored and cleaned up
    (checkpoints / ".tmp-checkpoint-00000006").mkdir()
    (checkpoints / ".tmp-checkpoint-00000006" / "model.safetensors").write_bytes(b"half written")
    resumed_code, resumed_log = _finish(_cli(config_path, "--output_dir", str(tmp_path / "crashed"),
                                             "--resume", "latest"))
    assert resumed_code == 0, resumed_log[-3000:]
    assert "Resumed from" in resumed_log and "checkpoint-00000003" in resumed_log
    assert not (checkpoints / ".tmp-checkpoint-00000006").exists()
    assert sorted(p.name for p in checkpoints.glob("checkpoint-*")) == ["checkpoint-00000003", "checkpoint-00000006"]

    expected = json.loads((tmp_path / "reference" / "train_history.json").read_text())
    resumed = json.loads((tmp_path / "crashed" / "train_history.json").read_text())
    assert [h["step"] for h in resumed] == list(range(8))
    assert "discriminator" in resumed[5] and "lecam" in resumed[5]
    for want, got in zip(expected, resumed):
        assert set(want) == set(got)
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-6, abs=1e-7), (want["step"], name)
    # the losses really change from step to step (the comparison above is not comparing constants)
    assert len({round(h["total"], 6) for h in expected}) == len(expected)
