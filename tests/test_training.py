"""The training loop on real photograph crops, the demo config and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hf_vq.cli.main import build_parser, main
from hf_vq.training import DEMO_CONFIG, TrainConfig, apply_overrides, load_config, train

REPO = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path, steps=300):
    raw = {
        "output_dir": str(tmp_path / "run"),
        "seed": 0,
        "model": {"model_type": "vqvae", "image_size": 16, "hidden_dim": 32, "codebook_size": 64,
                  "codebook_dim": 8, "l2_norm": True},
        "data": {"dataset": "embedded", "image_size": 16},
        "training": {"batch_size": 16, "max_steps": steps, "learning_rate": 1e-3, "log_every": 10},
        "eval": {"batch_size": 64, "num_grid_images": 8},
    }
    return TrainConfig.from_dict(raw)


def test_training_on_real_crops_lowers_reconstruction_loss(tmp_path):
    out = train(tiny_config(tmp_path))
    history = json.loads((out / "train_history.json").read_text())
    first = np.mean([h["reconstruction"] for h in history[:3]])
    last = np.mean([h["reconstruction"] for h in history[-3:]])
    assert last < 0.5 * first, (first, last)
    for name in ("model.safetensors", "config.json", "preprocessor_config.json", "reconstructions.png", "metrics.json"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_images"] == 256 and 0 < metrics["codebook_usage"] <= 1
    assert metrics["psnr"] > 15

    # the saved model reproduces the reported PSNR on the held-out crops (independent numpy PSNR)
    from transformers import AutoModel

    from hf_vq.data import EvalTransform, load_embedded_dataset

    model = AutoModel.from_pretrained(out).eval()
    images = load_embedded_dataset("validation")["image"]
    x = torch.stack([EvalTransform(16)(img) for img in images])
    with torch.no_grad():
        recon = model(x).reconstruction
    a = ((x.numpy() + 1) / 2).astype(np.float64)
    b = ((np.clip(recon.numpy(), -1, 1) + 1) / 2).astype(np.float64)
    psnr = 10 * np.log10(1 / ((a - b) ** 2).reshape(len(a), -1).mean(1))
    assert abs(psnr.mean() - metrics["psnr"]) < 1e-3


def test_demo_yaml_mirrors_the_builtin_default():
    assert yaml.safe_load((REPO / "configs/demo/vqvae.yaml").read_text()) == DEMO_CONFIG
    assert load_config().model == DEMO_CONFIG["model"]


def test_config_errors_and_overrides(tmp_path):
    raw = apply_overrides(DEMO_CONFIG, ["--training.max_steps", "7", "--model.codebook_size=128", "--output_dir", "x"])
    config = TrainConfig.from_dict(raw)
    assert config.training.max_steps == 7 and config.model["codebook_size"] == 128 and config.output_dir == "x"
    with pytest.raises(ValueError, match="Unknown keys"):
        TrainConfig.from_dict(apply_overrides(DEMO_CONFIG, ["--training.max_stpes", "7"]))
    with pytest.raises(ValueError, match="model_type"):
        TrainConfig.from_dict({"model": {}})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="not divisible"):
        train(TrainConfig.from_dict(apply_overrides(DEMO_CONFIG, ["--data.image_size", "30", "--output_dir", str(tmp_path)])))


def test_cli_lists_subcommands(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert "train" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["evaluate-nothing"])


def test_every_section_is_typed_and_validated_at_load(tmp_path):
    from hf_vq.training import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(DEMO_CONFIG).replace("learning_rate: 0.0004", "learning_rate: 1e-4")
                    + "loss:\n  lpips_weight: 5e-1\n")
    assert yaml.safe_load(path.read_text())["training"]["learning_rate"] == "1e-4"  # what PyYAML alone gives
    config = load_config(path, ["--training.learning_rate", "1e-3", "--model.entropy_weight", "2.5E-1"])
    assert config.training.learning_rate == 1e-3 and isinstance(config.training.learning_rate, float)
    assert config.loss.lpips_weight == 0.5 and config.model["entropy_weight"] == 0.25
    assert load_config(path).training.learning_rate == 1e-4

    bad = {
        ("--training.max_steps", "abc"): r"training\.max_steps must be an integer; got 'abc'",
        ("--training.max_steps", "0"): r"training\.max_steps must be > 0; got 0",
        ("--training.max_steps", "-5"): r"training\.max_steps must be > 0; got -5",
        ("--training.batch_size", "1.5"): r"training\.batch_size must be an integer; got 1\.5",
        ("--training.learning_rate", "fast"): r"training\.learning_rate must be a number; got 'fast'",
        ("--training.mixed_precision", "fp8"): r"training\.mixed_precision must be one of 'no', 'fp16', 'bf16'",
        ("--training.lr_scheduler", "cosin"): r"training\.lr_scheduler must be one of",
        ("--training.ema_decay", "1.5"): r"training\.ema_decay must be in \(0, 1\)",
        ("--training.min_learning_rate", "1e-5"): r"training\.min_learning_rate must be 0 unless training\.lr_scheduler is cosine",
        ("--training.min_learning_rate", "-1e-5"): r"training\.min_learning_rate must be >= 0",
        ("--data.image_size", "big"): r"data\.image_size must be an integer",
        ("--data.streaming", "maybe"): r"data\.streaming must be true or false",
        ("--loss.disc_loss", "wasserstein"): r"loss\.disc_loss must be one of 'hinge', 'non_saturating'",
        ("--loss.lpips_weight", "-1"): r"loss\.lpips_weight must be >= 0",
        ("--eval.batch_size", "0"): r"eval\.batch_size must be > 0",
        ("--model.codebook_size", "many"): r"model\.codebook_size must be an integer; got 'many'",
        ("--model.codebok_size", "8"): r"Unknown keys \['codebok_size'\] in `model:`",
        ("--eval.grid", "8"): r"Unknown keys \['grid'\] in `eval:`",
        ("--seed", "x"): r"seed must be an integer",
    }
    for override, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(None, list(override))


def test_unknown_model_type_is_named_at_load():
    from hf_vq.training import ConfigError

    with pytest.raises(ConfigError, match=r"model\.model_type must be one of \[.*'vqvae'.*\]; got 'vqvea'"):
        load_config(None, ["--model.model_type", "vqvea"])


def test_cosine_floor_follows_titoks_schedule():
    """training.min_learning_rate: TiTok's get_cosine_schedule_with_warmup(end_lr=...) written out by hand;
    without a floor the schedule stays transformers' cosine."""
    import math

    from hf_vq.training import ConfigError
    from hf_vq.training.config import TrainingArguments
    from hf_vq.training.engine import build_lr_scheduler

    base, end, warmup, total = 1e-3, 1e-5, 4, 20

    def official(step):
        if step < warmup:
            return base * step / warmup
        ratio = 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        return end + (base - end) * ratio

    def learning_rates(args):
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
        scheduler = build_lr_scheduler(optimizer, base, args, total)
        rates = []
        for _ in range(total + 1):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return rates

    floored = learning_rates(TrainingArguments(lr_scheduler="cosine", warmup_steps=warmup, min_learning_rate=end))
    assert floored == pytest.approx([official(step) for step in range(total + 1)], rel=1e-12, abs=1e-15)
    assert floored[-1] == pytest.approx(end)
    plain = learning_rates(TrainingArguments(lr_scheduler="cosine", warmup_steps=warmup))
    assert plain[-1] == 0 and plain[warmup] == pytest.approx(base)
    with pytest.raises(ConfigError, match=r"training\.min_learning_rate must be below training\.learning_rate"):
        TrainingArguments(lr_scheduler="cosine", learning_rate=1e-5, min_learning_rate=1e-4).check()


def test_optimizer_is_fused_on_cuda_only_and_makes_the_same_update():
    """build_optimizer: torch's fused AdamW on a CUDA device (as LlamaGen's train_c2i.py), the default
    implementation elsewhere; the fused kernel (here its CPU build) takes the same AdamW steps."""
    from hf_vq.training.config import TrainingArguments
    from hf_vq.training.engine import build_optimizer

    args = TrainingArguments(optimizer="adamw", weight_decay=0.05)
    generator = torch.Generator().manual_seed(0)
    fused_weight = torch.nn.Parameter(torch.randn(5, 3, generator=generator))
    plain_weight = torch.nn.Parameter(fused_weight.detach().clone())
    fused = build_optimizer([fused_weight], 1e-2, args, device=torch.device("cuda"))
    plain = build_optimizer([plain_weight], 1e-2, args, device=torch.device("cpu"))
    assert fused.defaults["fused"] is True and not plain.defaults.get("fused")
    for _ in range(3):
        gradient = torch.randn(5, 3, generator=generator)
        fused_weight.grad, plain_weight.grad = gradient.clone(), gradient.clone()
        fused.step()
        plain.step()
    assert not torch.equal(fused_weight, torch.randn(5, 3, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(fused_weight, plain_weight, rtol=1e-6, atol=1e-7)
