"""What the engine guarantees around its files: no pickle in a checkpoint is ever loaded, only
finite weights are checkpointed, changed settings on resume are listed (and refused when they
break the run), the final save is atomic, an earlier run is never silently overwritten, and the
final evaluation reports every metric whose network it has."""

import json
import os
import pickle
import shutil
import warnings
from pathlib import Path

import lpips
import pytest
import torch
from test_evaluation_pipeline import TinyFeatures  # the stand-in FID feature extractor
from test_trainer import tiny_raw

from hf_vq.training import CheckpointFormatError, NonFiniteLossError, TrainConfig, build_model, run_training, train

# Accelerate keeps process-wide state (e.g. mixed precision): each test here starts afresh (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


class RunsACommand:
    """Unpickling this runs a shell command (touches a marker file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def checkpointed_raw(tmp_path, **training) -> dict:
    return tiny_raw(
        tmp_path,
        data={"max_eval_images": 4},
        loss={"disc_weight": 0.5, "disc_layers": 2, "disc_channels": 8, "lecam_weight": 0.01},
        training={"max_steps": 2, "checkpoint_every": 2, "ema_decay": 0.9, "report_to": "none", **training},
    )


def test_resume_never_unpickles_a_planted_object_in_any_checkpoint_file(tmp_path):
    raw = checkpointed_raw(tmp_path)
    train(TrainConfig.from_dict(raw))
    run = Path(raw["output_dir"])
    files = sorted(p.relative_to(run) for p in (run / "checkpoints").rglob("*") if p.is_file())
    names = {p.name for p in files}
    assert {"latest", "model.safetensors", "discriminator.safetensors", "lecam.safetensors", "optimizers.safetensors",
            "ema.safetensors", "rng_state_0.safetensors", "rng_state_0.json", "trainer_state.json"} <= names
    assert all(p.name == "latest" or p.suffix in (".safetensors", ".json") for p in files), files

    marker = tmp_path / "code-ran"
    for index, relative in enumerate(files):
        planted_run = tmp_path / f"planted-{index}"
        shutil.copytree(run, planted_run)
        target = planted_run / relative
        if index % 2:  # a raw pickle, or torch.save's zip format (what Accelerate would torch.load)
            target.write_bytes(pickle.dumps(RunsACommand(marker)))
        else:
            torch.save({"state": RunsACommand(marker)}, target)
        resumed = {**raw, "output_dir": str(planted_run), "training": {**raw["training"], "resume_from": "latest"}}
        with pytest.raises(CheckpointFormatError, match=rf"(?s){relative.name}.*(never unpickled|should name)") as error:
            train(TrainConfig.from_dict(resumed))
        assert "resume from another checkpoint" in str(error.value) or "checkpoint-<step>" in str(error.value)
        assert not marker.exists(), f"unpickling {relative} ran the command"
    # the planted object is live: unpickling it does run the command (so the checks above can fail)
    if (len(files) - 1) % 2:
        pickle.loads(target.read_bytes())
    else:
        torch.load(target, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_is_never_written_from_non_finite_weights_and_the_last_good_one_resumes(tmp_path):
    raw = tiny_raw(tmp_path, data={"max_eval_images": 4},
                   training={"max_steps": 4, "checkpoint_every": 1, "keep_checkpoints": 5, "report_to": "none"})
    config = TrainConfig.from_dict(raw)
    model = build_model(config.model)
    decode, calls = model.decode_latents, []

    def decode_then_poison_the_update_of_step_2(quantized):
        calls.append(1)
        if len(calls) == 3:  # the loss of step 2 is finite; its gradient, so the weights after it, are not
            model.last_layer.register_hook(lambda grad: torch.full_like(grad, float("nan")))
        return decode(quantized)

    model.decode_latents = decode_then_poison_the_update_of_step_2
    with pytest.raises(NonFiniteLossError, match=r"Non-finite weights after step 2 \(model\..*no checkpoint written") as error:
        train(config, model=model)
    checkpoints = Path(config.output_dir) / "checkpoints"
    assert "checkpoint-00000002" in str(error.value)
    assert (checkpoints / "latest").read_text() == "checkpoint-00000002"
    assert not (checkpoints / "checkpoint-00000003").exists()
    # the named checkpoint resumes and the run finishes
    resumed = {**raw, "training": {**raw["training"], "resume_from": str(checkpoints / "checkpoint-00000002")}}
    result = run_training(TrainConfig.from_dict(resumed))
    assert [h["step"] for h in result.history] == [0, 1, 2, 3]
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_resume_with_changed_settings_lists_them_and_refuses_breaking_ones(tmp_path):
    raw = checkpointed_raw(tmp_path, max_steps=2)
    train(TrainConfig.from_dict(raw))

    def resume(**training):
        return TrainConfig.from_dict({**raw, "training": {**raw["training"], "resume_from": "latest", **training}})

    with pytest.raises(ValueError, match=r"break the resumed run \(training\.batch_size\).*training\.batch_size: 8 -> 4"
                                         r".*--resume-allow-changes"):
        train(resume(batch_size=4))
    with pytest.raises(ValueError, match=r"data\.image_size.*model\.image_size"):
        train(TrainConfig.from_dict({**raw, "data": {**raw["data"], "image_size": 8},
                                     "model": {**raw["model"], "image_size": 8},
                                     "training": {**raw["training"], "resume_from": "latest"}}))
    # A checkpoint written before a setting existed is compared as if it had the value that did what runs did
    # then: absent is not a change, another value is one.
    state_file = Path(raw["output_dir"]) / "checkpoints" / "checkpoint-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["config"]["loss"]["discriminator_loss_weight"], state["config"]["training"]["min_learning_rate"]
    state_file.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"Differences: loss\.discriminator_loss_weight: 1\.0 -> 0\.5\. "):
        train(TrainConfig.from_dict({**resume().to_dict(), "loss": {**raw["loss"], "discriminator_loss_weight": 0.5}}))
    # a learning rate or a longer run is listed, not refused; the new learning rate is the one used
    with pytest.warns(UserWarning, match=r"training\.learning_rate: 0\.001 -> 0\.002; training\.max_steps: 2 -> 3"):
        result = run_training(resume(max_steps=3, learning_rate=2e-3))
    assert [h["step"] for h in result.history] == [0, 1, 2]
    with pytest.warns(UserWarning, match=r"training\.batch_size: 8 -> 4"):
        run_training(resume(max_steps=4, batch_size=4, resume_allow_changes=True))


def test_a_crash_during_the_final_save_leaves_no_truncated_file(tmp_path, monkeypatch):
    import hf_vq.training.engine as engine_module

    raw = tiny_raw(tmp_path, data={"max_eval_images": 4}, training={"max_steps": 1, "report_to": "none"})
    real_replace, moved = os.replace, []

    def replace_then_crash(source, destination):
        if Path(destination).name == "model.safetensors":
            raise KeyboardInterrupt("simulated kill during the final save")
        real_replace(source, destination)
        moved.append(Path(destination).name)

    class OsWithACrashingReplace:  # only the engine's os.replace crashes
        def __getattr__(self, name):
            return replace_then_crash if name == "replace" else getattr(os, name)

    monkeypatch.setattr(engine_module, "os", OsWithACrashingReplace())
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig.from_dict(raw))
    out = Path(raw["output_dir"])
    assert not (out / "model.safetensors").exists()  # never half-written in place
    staged = out / ".tmp-final" / "model.safetensors"
    from safetensors.torch import load_file

    assert load_file(staged)  # the complete file waits in the staging folder
    assert moved and all((out / name).stat().st_size > 0 for name in moved)


def test_an_earlier_run_is_refused_unless_overwrite_which_clears_it(tmp_path, capsys):
    raw = tiny_raw(tmp_path, data={"max_eval_images": 4}, training={"max_steps": 1})
    out = train(TrainConfig.from_dict(raw))
    printed = capsys.readouterr().out
    for name in ("model.safetensors", "reconstructions.png", "metrics.json"):
        assert str(out / name) in printed  # the run says where it saved
    (out / "eval_metrics.json").write_text("{}")  # what `hf-vq evaluate` would have added
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"already holds an earlier run.*--resume latest.*--overwrite"):
        train(TrainConfig.from_dict(raw))
    logs_before = set((out / "logs").rglob("events.*"))
    train(TrainConfig.from_dict({**raw, "training": {**raw["training"], "overwrite": True}}))
    assert not (out / "eval_metrics.json").exists()  # stale metrics of the old model are gone
    assert (out / "notes.txt").read_text() == "mine"  # files a run does not write are kept
    logs_after = set((out / "logs").rglob("events.*"))
    assert len(logs_after) == len(logs_before) and not logs_after & logs_before  # the old logs are gone, not piled up


def test_final_evaluation_reports_lpips_and_rfid_when_their_networks_exist(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-home"))
    raw = tiny_raw(tmp_path, model={"image_size": 32}, data={"image_size": 32, "max_eval_images": 8},
                   training={"max_steps": 1, "report_to": "none"})
    result = run_training(TrainConfig.from_dict(raw))
    skipped = result.metrics["skipped_metrics"]
    assert "alexnet-owt-7be5be79.pth" in skipped["lpips"] and "pt_inception-2015-12-05" in skipped["rfid"]
    assert "skipping lpips" in capsys.readouterr().err
    assert "lpips" not in result.metrics and {"psnr", "ssim", "codebook_usage"} <= set(result.metrics)

    network = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    with_networks = {**raw, "output_dir": str(tmp_path / "with-networks")}
    result = run_training(TrainConfig.from_dict(with_networks), lpips_network=network,
                          fid_feature_extractor=TinyFeatures())
    metrics = json.loads((Path(result.output_dir) / "metrics.json").read_text())
    assert metrics["lpips"] > 0 and metrics["rfid"] > 0 and "skipped_metrics" not in metrics
    assert metrics["rfid_num_images"] == metrics["num_images"] == 8


def test_settings_added_since_the_checkpoint_format_default_to_their_former_behaviour():
    """The values a checkpoint without the key is compared with are this version's defaults (a changed
    default must leave that table, or resumed old runs would silently change behaviour)."""
    from hf_vq.training.config import ARTrainConfig
    from hf_vq.training.engine import SETTINGS_ADDED_WITH_FORMER_BEHAVIOUR, flatten_config

    defaults = flatten_config(TrainConfig.from_dict(tiny_raw(Path("unused"))).to_dict())
    defaults_ar = flatten_config(ARTrainConfig.from_dict({"model": {"preset": "GPT-B"}}).to_dict())
    for key, former in SETTINGS_ADDED_WITH_FORMER_BEHAVIOUR.items():
        assert defaults[key] == former, key
        assert defaults_ar.get(key, former) == former, key


def _two_groups(swap: bool):
    """The model's parameters in two optimizer groups of fixed sizes; ``swap`` exchanges the first parameter of
    each (both 2D weights of other shapes): the same group sizes, other parameters in them."""
    def groups(model, weight_decay):
        parameters = [p for p in model.parameters() if p.requires_grad]
        order = list(range(len(parameters)))
        if swap:
            weights = [index for index, p in enumerate(parameters) if p.ndim > 1]
            order[weights[0]], order[weights[-1]] = weights[-1], weights[0]
        half = len(order) // 2
        return [{"params": [parameters[i] for i in order[:half]]}, {"params": [parameters[i] for i in order[half:]]}]
    return groups


def test_resume_names_parameters_moved_to_another_optimizer_group_and_old_checkpoints_resume(tmp_path, monkeypatch):
    from hf_vq.training import tokenizer_objective

    raw = tiny_raw(tmp_path, data={"max_eval_images": 4},
                   training={"max_steps": 2, "checkpoint_every": 2, "report_to": "none"})
    monkeypatch.setattr(tokenizer_objective, "parameter_groups", _two_groups(swap=False))
    train(TrainConfig.from_dict(raw))
    state_file = Path(raw["output_dir"]) / "checkpoints" / "checkpoint-00000002" / "trainer_state.json"
    saved = json.loads(state_file.read_text())["optimizers"]["model"]
    names = saved["param_group_names"]
    assert [len(group) for group in names] == [len(group["params"]) for group in saved["param_groups"]]
    model = build_model(TrainConfig.from_dict(raw).model)
    assert [name for group in names for name in group] == [name for name, _ in model.named_parameters()]

    def resume(**training):
        return TrainConfig.from_dict({**raw, "training": {**raw["training"], "resume_from": "latest", "max_steps": 3,
                                                          **training}})

    # Same group sizes, two parameters exchanged: the sizes match (the former check passed, and torch would
    # have put each one's Adam moments on the other), the names do not.
    monkeypatch.setattr(tokenizer_objective, "parameter_groups", _two_groups(swap=True))
    weights = [name for name, parameter in model.named_parameters() if parameter.ndim > 1]
    moved_first, moved_second = weights[0], weights[-1]
    assert moved_first in names[0] and moved_second in names[1]
    with pytest.raises(CheckpointFormatError, match=rf"(?s)model optimizer.*moved between groups: "
                                                    rf"{moved_second} \(group 1 -> 0\), {moved_first} \(group 0 -> 1\)"
                                                    r".*--resume-allow-changes"):
        train(resume())
    with pytest.warns(UserWarning, match=r"moved between groups.*moments restart from zero"):
        assert [h["step"] for h in run_training(resume(resume_allow_changes=True)).history] == [0, 1, 2]

    # A checkpoint written before the names were stored (no param_group_names) is compared by its group sizes,
    # as then: it resumes into the grouping it was written with.
    state = json.loads(state_file.read_text())
    del state["optimizers"]["model"]["param_group_names"]
    state_file.write_text(json.dumps(state))
    shutil.rmtree(state_file.parent.parent / "checkpoint-00000003", ignore_errors=True)
    (state_file.parent.parent / "latest").write_text("checkpoint-00000002")
    monkeypatch.setattr(tokenizer_objective, "parameter_groups", _two_groups(swap=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert [h["step"] for h in run_training(resume(max_steps=4)).history] == [0, 1, 2, 3]
    assert [str(w.message) for w in caught if issubclass(w.category, UserWarning)] == [
        "Resuming with settings that differ from the checkpoint's: training.max_steps: 2 -> 4."]  # no optimizer restart
