"""GPT training on the engine: `hf-vq train-ar` killed with SIGKILL and resumed follows the
uninterrupted loss curve; YAML configs with dotted overrides."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from datasets import Dataset

import hf_vq
from hf_vq.training import load_ar_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def token_run(tmp_path_factory):
    """A tiny tokenizer folder and a token dataset of 40 sequences of 16 tokens (3 classes)."""
    root = tmp_path_factory.mktemp("ar")
    torch.manual_seed(0)
    hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=16, codebook_size=32, codebook_dim=8, image_size=16)).save_pretrained(
        root / "tokenizer")
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 32, (40, 16), generator=generator)
    ids[:, 1::2] = ids[:, ::2]  # a learnable pattern: every odd token repeats the one before
    Dataset.from_dict({"input_ids": ids.tolist(), "class_labels": [i % 3 for i in range(40)]}).save_to_disk(root / "tokens")
    return root


def ar_raw(root: Path) -> dict:
    return {
        "seed": 0,
        "model": {"preset": "GPT-B", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "multiple_of": 16},
        "data": {"tokens": str(root / "tokens"), "tokenizer": str(root / "tokenizer")},
        # 40 rows / batch 4 = 10 micro-batches per epoch, 2 per step: the kill lands mid-epoch
        "training": {"batch_size": 4, "max_steps": 8, "gradient_accumulation_steps": 2, "learning_rate": 3e-3,
                     "lr_scheduler": "cosine", "warmup_steps": 2, "log_every": 1, "checkpoint_every": 3,
                     "report_to": "none"},
    }


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "hf_vq.cli.main", "train-ar", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> tuple:
    output, _ = process.communicate(timeout=300)
    return process.returncode, output


def test_train_ar_resume_after_sigkill_continues_the_same_loss_curve(token_run, tmp_path):
    config_path = tmp_path / "gpt.yaml"
    config_path.write_text(yaml.safe_dump(ar_raw(token_run)))
    reference = _cli(str(config_path), "--output-dir", str(tmp_path / "reference"))
    crashed = _cli(str(config_path), "--output-dir", str(tmp_path / "crashed"), "--training.debug_kill_at_step", "5")
    (reference_code, reference_log), (crashed_code, crashed_log) = _finish(reference), _finish(crashed)
    assert reference_code == 0, reference_log[-3000:]
    assert crashed_code == -signal.SIGKILL, crashed_log[-3000:]
    checkpoints = tmp_path / "crashed" / "checkpoints"
    assert (checkpoints / "latest").read_text() == "checkpoint-00000003"
    assert not (tmp_path / "crashed" / "model.safetensors").exists()

    resumed_code, resumed_log = _finish(_cli(str(config_path), "--output-dir", str(tmp_path / "crashed"), "--resume"))
    assert resumed_code == 0, resumed_log[-3000:]
    assert "Resumed from" in resumed_log and "checkpoint-00000003" in resumed_log
    expected = json.loads((tmp_path / "reference" / "train_history.json").read_text())
    resumed = json.loads((tmp_path / "crashed" / "train_history.json").read_text())
    assert [h["step"] for h in resumed] == list(range(8))
    for want, got in zip(expected, resumed):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-6, abs=1e-7), want["step"]
    # the losses change from step to step (not comparing constants; the zero-initialised head gives
    # ln(32) until the first update with a non-zero learning rate, step 1) and training lowers them
    assert len({round(h["loss"], 6) for h in expected[1:]}) == len(expected) - 1
    assert expected[-1]["loss"] < expected[0]["loss"] - 0.05
    # the saved models are the same
    reference_model = hf_vq.LlamaGenGPTModel.from_pretrained(tmp_path / "reference")
    resumed_model = hf_vq.LlamaGenGPTModel.from_pretrained(tmp_path / "crashed")
    for name, tensor in reference_model.state_dict().items():
        torch.testing.assert_close(resumed_model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)


def test_ar_config_types_overrides_and_flags(token_run, tmp_path):
    config = load_ar_config(REPO / "configs/ar/gpt-b.yaml", ["--training.learning_rate", "1e-3"])
    assert config.training.learning_rate == 1e-3 and isinstance(config.training.learning_rate, float)
    assert config.model["preset"] == "GPT-B" and config.training.adam_beta2 == 0.95
    tiny = load_ar_config(REPO / "configs/ar/tiny.yaml")
    assert tiny.data.tokens == "outputs/demo-tokens" and tiny.training.max_steps > 0
    with pytest.raises(ValueError, match=r"model\.hidden_size must be an integer; got 'big'"):
        load_ar_config(None, ["--model.hidden_size", "big"])
    with pytest.raises(ValueError, match=r"Unknown keys \['hiden_size'\] in `model:`"):
        load_ar_config(None, ["--model.hiden_size", "8"])
    with pytest.raises(ValueError, match=r"model\.preset must be one of"):
        load_ar_config(None, ["--model.preset", "GPT-Q"])
