"""VQ-KD stage 1 on the engine: `hf-vq train` dispatches a vqkd config to the distillation objective;
the teacher stays frozen and out of every file, the student and the codebook train, the loss falls,
and a resumed run continues the same loss curve."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from accelerate.utils import set_seed
from PIL import Image
from safetensors.torch import load_file
from test_vqkd import TINY
from tiny_teachers import save_tiny_teacher

from hf_vq.cli.main import main as cli_main
from hf_vq.modules.teachers import FrozenTeacher
from hf_vq.training import DistillationObjective, TrainConfig, TrainingEngine, build_model

# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """24 small smooth colour images (an image folder loads in a fraction of the embedded set's time)."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 40)[:, None, None]
    for index in range(24):
        phase = rng.uniform(0, 6, size=(1, 1, 3))
        pixels = 0.5 + 0.5 * np.sin(6 * grid * rng.uniform(0.5, 2) + 4 * grid.transpose(1, 0, 2) * rng.uniform(-2, 2) + phase)
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"{index:02d}.png")
    return str(folder)


def vqkd_raw(output_dir, teacher, images, **training) -> dict:
    return {
        "output_dir": str(output_dir),
        "seed": 0,
        "model": {"model_type": "vqkd", **TINY, "teacher_name_or_path": teacher},
        "data": {"dataset": "imagefolder", "train_data_dir": images, "image_size": 32, "eval_holdout": 8},
        "training": {"batch_size": 8, "max_steps": 20, "learning_rate": 2e-3, "optimizer": "adamw", "adam_beta2": 0.99,
                     "weight_decay": 1e-4, "log_every": 1, "report_to": "none", "checkpoint_every": 10, **training},
        "eval": {"batch_size": 16},
    }


def test_distillation_trains_the_student_and_leaves_the_teacher_alone(tmp_path, image_folder):
    teacher_dir = save_tiny_teacher("clip", tmp_path / "teacher")
    config = TrainConfig.from_dict(vqkd_raw(tmp_path / "run", teacher_dir, image_folder))
    set_seed(0)
    initial = {key: value.clone() for key, value in build_model(config.model).state_dict().items()}
    objective = DistillationObjective(config)
    result = TrainingEngine(objective, config.training, output_dir=config.output_dir, seed=config.seed,
                            config=config.to_dict()).run()
    model = result.model

    # The teacher: frozen, unchanged, never saved.
    reference = FrozenTeacher.from_pretrained(teacher_dir, image_size=32)
    for (name, trained), (_, fresh) in zip(objective.teacher.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(trained.cpu(), fresh), name
    assert not any(p.requires_grad for p in objective.teacher.parameters())
    saved = set(load_file(Path(config.output_dir) / "model.safetensors"))
    checkpointed = set(load_file(Path(config.output_dir) / "checkpoints" / "checkpoint-00000020" / "model.safetensors"))
    assert saved == checkpointed == set(initial)

    # The student: encoder, decoder and heads moved; the codebook was k-means initialised then
    # moved by the normalised EMA (it has no gradient), and stays on the unit sphere.
    state = model.state_dict()
    for key in ("encoder.patch_embed.weight", "encoder.blocks.1.attn.qkv.weight", "encoder_head.2.weight",
                "decoder.blocks.0.mlp.fc2.weight", "decoder_head.2.weight"):
        assert not torch.equal(state[key], initial[key]), key
    assert bool(model.quantizer.behaviours[0].initialised)
    codebook = model.quantizer.codebook.detach()
    assert not model.quantizer.codebook.requires_grad and not torch.equal(codebook, initial["quantizer.codebook"])
    torch.testing.assert_close(codebook.norm(dim=1), torch.ones(len(codebook)))

    cosine = [entry["cosine"] for entry in result.history]
    assert len(cosine) == 20 and sum(cosine[-5:]) / 5 < sum(cosine[:5]) / 5 - 0.05, cosine
    assert {"cosine", "commitment", "total"} <= set(result.history[-1])
    metrics = json.loads((Path(config.output_dir) / "metrics.json").read_text())
    assert 0 < metrics["codebook_usage"] <= 1 and -1 <= metrics["teacher_cosine_similarity"] <= 1
    assert metrics["num_tokens"] == 8 * 16 and metrics["teacher"] == teacher_dir


def test_hf_vq_train_runs_a_vqkd_config_and_resumes_on_the_same_curve(tmp_path, image_folder):
    teacher_dir = save_tiny_teacher("dino", tmp_path / "teacher")
    raw = vqkd_raw(tmp_path / "straight", teacher_dir, image_folder, max_steps=12, checkpoint_every=6)
    raw["model"].update(teacher_features="last_hidden_state", teacher_feature_dim=32)
    config_path = tmp_path / "vqkd.yaml"
    config_path.write_text(yaml.safe_dump(raw))
    assert cli_main(["train", str(config_path)]) == 0
    straight = json.loads((tmp_path / "straight" / "train_history.json").read_text())

    # Interrupted after step 6, then resumed: steps 6..11 repeat the uninterrupted run.
    stopped = str(tmp_path / "stopped")
    assert cli_main(["train", str(config_path), "--output_dir", stopped, "--training.max_steps", "6"]) == 0
    assert cli_main(["train", str(config_path), "--output_dir", stopped, "--resume", "latest"]) == 0
    resumed = json.loads((Path(stopped) / "train_history.json").read_text())
    assert [entry["step"] for entry in resumed] == list(range(12))
    for want, got in zip(straight[6:], resumed[6:]):
        assert got["total"] == pytest.approx(want["total"], abs=1e-5), (want, got)


def test_distillation_refuses_what_it_cannot_train(tmp_path, image_folder):
    teacher_dir = save_tiny_teacher("clip", tmp_path / "teacher")
    raw = vqkd_raw(tmp_path / "run", teacher_dir, image_folder)
    config = TrainConfig.from_dict({**raw, "loss": {"lpips_weight": 1.0}})
    with pytest.raises(ValueError, match="loss.lpips_weight"):
        TrainingEngine(DistillationObjective(config), config.training, output_dir=config.output_dir, seed=0,
                       config=config.to_dict()).run()
    config = TrainConfig.from_dict({**raw, "output_dir": str(tmp_path / "run2"), "data": {**raw["data"], "image_size": 64}})
    with pytest.raises(ValueError, match="data.image_size 64"):
        TrainingEngine(DistillationObjective(config), config.training, output_dir=config.output_dir, seed=0,
                       config=config.to_dict()).run()


@pytest.mark.parametrize("teacher", ["clip", "dino"])
def test_iu_configs_are_the_released_architectures_with_beit_v2_optimisation(teacher):
    from hf_vq.convert.vqkd import VQKD_VARIANTS
    from hf_vq.models.vqkd import VQKDConfig
    from hf_vq.training import load_config
    from hf_vq.training.trainer import model_type_of

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "iu" / f"vqkd-{teacher}.yaml")
    assert model_type_of(config) == "vqkd"
    released = VQKD_VARIANTS[f"vqkd_encoder_base_decoder_1x768x12_{teacher}"]().to_dict()
    built = VQKDConfig(**{k: v for k, v in config.model.items() if k != "model_type"}).to_dict()
    assert {k: v for k, v in built.items() if k != "transformers_version"} == {
        k: v for k, v in released.items() if k != "transformers_version"}
    assert config.model["teacher_name_or_path"] == {"clip": "openai/clip-vit-base-patch16", "dino": "facebook/dino-vitb16"}[teacher]
    training = config.training
    assert (training.batch_size * 8, training.learning_rate, training.weight_decay) == (512, 2e-4, 1e-4)
    assert (training.adam_beta1, training.adam_beta2, training.warmup_steps, training.max_steps) == (0.9, 0.99, 25000, 250000)
    assert (config.data.dataset, config.data.image_size, config.data.min_crop_scale) == ("ILSVRC/imagenet-1k", 224, 0.08)
