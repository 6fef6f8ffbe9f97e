"""The training engine: one Accelerate loop that runs an objective.

The engine owns everything a run needs whatever it optimises: the accelerator and the seeds,
the output folder policy (``--overwrite`` / ``--resume``), crash-safe checkpoints (safetensors
+ JSON, keep-last-K, ``--resume latest``), the resume that restarts at the exact batch, the
NaN/inf stop, the EMA of the weights, gradient accumulation, mixed precision, TensorBoard and
the progress bar, ``train_history.json`` (every logged step, kept across resumes) and the
atomic final save. :meth:`TrainingEngine.run` reads as its stages: build, resume, then per
step: step, log, checkpoint; finish.

What a run optimises is an :class:`Objective`. A new method (distillation against a frozen
teacher, cross-entropy against proxy codes, decoder-only fine-tuning behind a frozen encoder)
is a new objective, never a new loop. The engine calls, in this order:

``build(engine)``
    Create the modules (on ``engine.device``) and register each trained one with
    ``engine.add_optimizer(name, module, param_groups, learning_rate, ...)``, which builds the
    optimizer and LR schedule from the ``training:`` section, prepares both with Accelerate and
    returns the prepared module. Frozen modules (a teacher, LPIPS) are simply kept on the
    objective. Objective-specific checks go here.
``state_modules()``
    ``{name: module}`` of everything whose ``state_dict`` a checkpoint keeps (unwrapped
    modules: the trained ones and any stateful helper such as LeCam's running means).
``model()``
    The model the run trains and saves (unwrapped); ``training.ema_decay`` averages its weights.
``train_batches(engine, start_batch)``
    An endless iterator of training batches that starts at micro-batch ``start_batch`` (of
    this process) exactly where an uninterrupted run would be.
``step_losses(batch, step)``
    A generator of :class:`StepLoss` ``(optimizer, loss, terms)``, in the order they are
    minimised. For each one the engine keeps the terms (on the device), back-propagates the loss
    (outside autocast), clips, and steps that optimizer before asking for the next: a GAN
    yields the generator loss, then the discriminator loss. The forward passes run under
    autocast and under ``accelerate.accumulate`` of every trained module. Nothing in a step
    should read device values on the host (a host sync makes the CPU wait for the GPU instead
    of queuing the next kernels): the engine reads the kept terms (finite? logged values) and the
    models' value checks together at logging and checkpoint steps (and after ``MAX_UNREAD_LOSSES``),
    so a NaN loss stops the run at the next of those (``training.log_every``), naming the step where
    it first appeared, and never
    after a checkpoint was written from it. ``tests/test_host_syncs.py`` counts the syncs of a step.
``log_values(engine, step)``
    Extra scalars for TensorBoard at a logging step (codebook usage...); may log images.
``checkpoint_state(engine)`` / ``load_checkpoint_state(state, engine)``
    JSON-serialisable counters of the objective (called on every process; may reduce).
``finish(engine, save_dir)``
    After training (EMA weights copied in): evaluate and write the model files into
    ``save_dir`` (main process only); returns the metrics. The engine then writes
    ``metrics.json``, ``train_history.json`` and ``train_config.json`` next to them and moves
    every file into ``output_dir`` one ``os.replace`` at a time.

Attributes: ``loss_name`` (the term recorded as a history entry's ``loss``), ``progress_terms``
(terms shown on the progress bar), ``final_outputs`` (``(label, file name)`` pairs printed
at the end).
"""

import json
import math
import os
import shutil
import signal
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, set_seed
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..utils.value_checks import check_values, has_queued_value_checks, queued_value_checks, run_value_checks
from .checkpointing import TRAINER_STATE_FILE, CheckpointManager
from .config import TrainingArguments
from .state import (
    CheckpointFormatError,
    flatten_ema_state,
    flatten_optimizer_state,
    json_state,
    load_module,
    read_json,
    read_tensors,
    rng_state,
    save_module,
    set_rng_state,
    unflatten_ema_state,
    unflatten_optimizer_state,
    write_json,
    write_tensors,
)

CHECKPOINT_FORMAT = "hf_vq-checkpoint-1"
FINAL_STAGING_DIR = ".tmp-final"
# What a run writes into output_dir: `--overwrite` deletes these (and nothing else) first.
RUN_OUTPUTS = (
    "checkpoints", "logs", FINAL_STAGING_DIR, "model.safetensors", "config.json", "generation_config.json",
    "preprocessor_config.json", "reconstructions.png", "metrics.json", "eval_metrics.json", "train_history.json",
    "train_config.json",
)
# Run controls, not settings of the run: never compared on resume.
RUN_CONTROLS = ("output_dir", "training.resume_from", "training.resume_allow_changes", "training.overwrite",
                "training.debug_kill_at_step")
# Settings that may change between a checkpoint and its resume without breaking the run (they
# are still listed). Every other difference is refused unless training.resume_allow_changes.
CHANGEABLE_ON_RESUME = (
    "training.max_steps", "training.learning_rate", "training.disc_learning_rate", "training.lr_scheduler",
    "training.min_learning_rate", "training.warmup_steps", "training.max_grad_norm", "training.log_every",
    "training.log_images_every", "training.report_to", "training.checkpoint_every", "training.keep_checkpoints", "data.num_workers",
    "data.eval_data_dir", "data.eval_split", "data.max_eval_images", "eval.",
)
# Settings added after checkpoints of this format were first written, each with the value that does
# what runs did before the key existed (checked against the code of the time). A checkpoint whose
# config lacks one is compared as if it held that value, so resuming it does not list it as a change;
# another value in the resumed config is still a change. A new key whose default changes what an
# older run would compute does not belong here: its absence must stay a listed difference.
SETTINGS_ADDED_WITH_FORMER_BEHAVIOUR = {
    "data.train_crop": "random_square",           # the only train crop before adm_random
    "loss.convnext_weight": 0.0,                  # no ConvNeXt perceptual term
    "loss.discriminator_loss_weight": 1.0,        # the discriminator loss unscaled
    "loss.discriminator_options": {},             # only patchgan / stylegan existed, and they take no options
    "loss.objective": "reconstruction",           # the tokenizer objective
    "loss.perceptual_dropout": False,             # LPIPS in eval mode
    "loss.proxy_tokenizer": None,
    "loss.quantizer_weight": 1.0,                 # the quantizer terms unscaled
    "training.min_learning_rate": 0.0,            # schedules from transformers.get_scheduler, cosine down to 0
}


# The losses are read on the host at logging and checkpoint steps, and at the latest after this many
# losses (micro-batches x optimizers) stay unread: one sync per 100 of them costs nothing measurable.
MAX_UNREAD_LOSSES = 100


class NonFiniteLossError(FloatingPointError):
    """A loss term or a weight became NaN or inf; the run stops and its last good checkpoint stays untouched."""


@dataclass
class StepLoss:
    """One loss of a training step: minimised with the optimizer registered as ``optimizer``."""

    optimizer: str
    loss: torch.Tensor
    terms: dict = field(default_factory=dict)


@dataclass
class OptimizerSpec:
    """A registered optimizer: its schedule, the (prepared) module it trains, from which step."""

    name: str
    optimizer: torch.optim.Optimizer
    scheduler: object
    module: nn.Module
    learning_rate: float
    start_step: int = 0
    log_name: str = "lr"

    def active(self, step: int) -> bool:
        return step >= self.start_step


@dataclass
class TrainResult:
    """What a run returns: where it saved, the trained model (EMA weights when enabled),
    the logged loss history and the final metrics."""

    output_dir: Path
    model: nn.Module
    history: list
    metrics: dict


class Objective(ABC):
    """What a run optimises; see the module docstring for the calls the engine makes."""

    loss_name = "loss"
    progress_terms: tuple = ("loss",)
    final_outputs: tuple = ()

    @abstractmethod
    def build(self, engine: "TrainingEngine") -> None:
        """Create the modules and register the trained ones with ``engine.add_optimizer``."""

    @abstractmethod
    def state_modules(self) -> dict:
        """``{name: unwrapped module}`` whose state a checkpoint keeps."""

    @abstractmethod
    def model(self) -> nn.Module:
        """The model the run trains and saves (unwrapped); ``training.ema_decay`` averages its weights."""

    @abstractmethod
    def train_batches(self, engine: "TrainingEngine", start_batch: int) -> Iterator:
        """Endless training batches of this process, starting at micro-batch ``start_batch``."""

    @abstractmethod
    def step_losses(self, batch, step: int) -> Iterator[StepLoss]:
        """The losses of one micro-batch, in the order they are minimised."""

    def log_values(self, engine: "TrainingEngine", step: int) -> dict:
        return {}

    def checkpoint_state(self, engine: "TrainingEngine") -> dict:
        return {}

    def load_checkpoint_state(self, state: dict, engine: "TrainingEngine") -> None:  # noqa: B027 (optional hook)
        """Restore what ``checkpoint_state`` returned (default: nothing to restore)."""

    @abstractmethod
    def finish(self, engine: "TrainingEngine", save_dir: Path) -> dict:
        """Evaluate and write the model files into ``save_dir`` (main process); returns the metrics."""


def flatten_config(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        if isinstance(value, dict) and value and not prefix.startswith("model"):
            flat.update(flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def build_lr_scheduler(optimizer: torch.optim.Optimizer, learning_rate: float, args: TrainingArguments,
                       num_training_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """``args.lr_scheduler`` from ``transformers.get_scheduler``; a cosine with ``args.min_learning_rate``
    ends there instead of at 0 (TiTok's ``get_cosine_schedule_with_warmup(end_lr=...)``: the same
    warmup and cosine as transformers', rescaled onto [min, base])."""
    if not args.min_learning_rate:
        return get_scheduler(args.lr_scheduler, optimizer, num_warmup_steps=args.warmup_steps,
                             num_training_steps=num_training_steps)
    warmup, floor = args.warmup_steps, args.min_learning_rate / learning_rate

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, num_training_steps - warmup)
        return floor + (1 - floor) * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build_optimizer(parameters_or_groups, learning_rate: float, args: TrainingArguments,
                    device: torch.device | None = None) -> torch.optim.Optimizer:
    """Adam or AdamW from the ``training:`` section over parameters or param groups.

    On a CUDA ``device`` the optimizer is torch's fused implementation (one kernel for all the
    parameters' updates, the same Adam arithmetic), as LlamaGen's ``train_c2i.py`` builds it; the
    per-tensor loops of the default implementation cost several ms per step on a GPU.
    """
    optimizer_class = torch.optim.AdamW if args.optimizer == "adamw" else torch.optim.Adam
    groups = list(parameters_or_groups)
    if groups and not isinstance(groups[0], dict):
        groups = [{"params": [p for p in groups if p.requires_grad]}]
    fused = {"fused": True} if device is not None and torch.device(device).type == "cuda" else {}
    return optimizer_class(groups, lr=learning_rate, betas=(args.adam_beta1, args.adam_beta2),
                           weight_decay=args.weight_decay, **fused)


def describe_group_changes(saved: list, now: list, shown: int = 6) -> str:
    """How two lists of per-group parameter names differ: the parameters moved to another group, those only
    in one of them, or (when neither) that the order within a group changed."""
    def listed(items: list) -> str:
        return ", ".join(items[:shown]) + (f" and {len(items) - shown} more" if len(items) > shown else "")

    saved_group = {parameter: number for number, group in enumerate(saved) for parameter in group}
    group = {parameter: number for number, group in enumerate(now) for parameter in group}
    moved = [f"{parameter} (group {saved_group[parameter]} -> {number})" for parameter, number in group.items()
             if parameter in saved_group and saved_group[parameter] != number]
    parts = [f"moved between groups: {listed(moved)}"] if moved else []
    added = [parameter for parameter in group if parameter not in saved_group]
    removed = [parameter for parameter in saved_group if parameter not in group]
    if added:
        parts.append(f"only in this run: {listed(added)}")
    if removed:
        parts.append(f"only in the checkpoint: {listed(removed)}")
    return "; ".join(parts) or (f"the same groups of {[len(names) for names in now]} parameters, "
                                "in another order within a group")


class TrainingEngine:
    """Runs ``objective`` with the ``training:`` arguments ``args``; ``config`` is the whole run
    config (saved with the run and compared on resume)."""

    def __init__(self, objective: Objective, args: TrainingArguments, *, output_dir, seed: int, config: dict):
        self.objective = objective
        self.args = args
        self.output_dir = Path(output_dir)
        self.seed = seed
        self.config = config
        self.optimizers: dict = {}
        self.history: list = []
        self.start_step = 0
        self.last_checkpoint = None
        self.ema = None
        self.unread_terms: list = []  # (step, term names, their values on the device) not yet read on the host

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> TrainResult:
        self.build()
        self.resume()
        progress = tqdm(range(self.start_step, self.args.max_steps), initial=self.start_step, total=self.args.max_steps,
                        desc="train", disable=not self.accelerator.is_local_main_process)
        # The models' value checks and the losses are read on the host at logging and checkpoint
        # steps only, together (one device sync), so a step in between never waits for the device.
        with queued_value_checks():
            for step in progress:
                self.train_step(step, progress)
            self._read_losses()
        progress.close()
        return self.finish()

    def train_step(self, step: int, progress) -> None:
        terms = self.step(step)
        self.log(step, terms, progress)
        if len(self.unread_terms) >= MAX_UNREAD_LOSSES:  # a large log_every still finds a NaN loss soon
            self._read_losses()
        self.checkpoint(step + 1)

    # -- build ------------------------------------------------------------------------------
    def build(self) -> None:
        args = self.args
        tracker = None if args.report_to in (None, "none") else args.report_to
        self.accelerator = Accelerator(
            mixed_precision=args.mixed_precision,
            # Our step counter decides when to sync, not the end of an epoch.
            gradient_accumulation_plugin=GradientAccumulationPlugin(
                num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False),
            log_with=tracker,
            project_config=ProjectConfiguration(project_dir=str(self.output_dir),
                                                logging_dir=str(self.output_dir / "logs")),
        )
        self.checkpoints = CheckpointManager(self.accelerator, self.output_dir, keep=args.keep_checkpoints)
        self.resume_path = self._prepare_output_dir()
        set_seed(self.seed)
        self.objective.build(self)
        ema_module = self.objective.model()
        if args.ema_decay:
            from diffusers.training_utils import EMAModel

            # diffusers' EMAModel warms the decay up as min(ema_decay, (1 + n) / (10 + n)) after n updates.
            self.ema = EMAModel(ema_module.parameters(), decay=args.ema_decay)
            self.ema.to(self.device)

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def add_optimizer(self, name: str, module: nn.Module, parameters, learning_rate: float, *,
                      num_training_steps: int | None = None, start_step: int = 0, log_name: str = "lr") -> nn.Module:
        """Build the optimizer and LR schedule of ``module`` (``parameters``: parameters or param groups),
        prepare both with Accelerate and return the prepared module. The schedule counts from
        ``start_step``, when this optimizer starts stepping."""
        optimizer = build_optimizer(parameters, learning_rate, self.args, device=self.device)
        scheduler = build_lr_scheduler(optimizer, learning_rate, self.args,
                                       num_training_steps or max(1, self.args.max_steps - start_step))
        # Schedulers are stepped by the engine once per optimizer step (not prepared: Accelerate
        # would step them once per process).
        module, optimizer = self.accelerator.prepare(module, optimizer)
        self.optimizers[name] = OptimizerSpec(name, optimizer, scheduler, module, learning_rate, start_step, log_name)
        return module

    def _prepare_output_dir(self) -> Path | None:
        """The checkpoint to resume from; refuses to mix a new run into an earlier one."""
        args, directory = self.args, self.output_dir
        self.checkpoints.remove_incomplete()
        resume_path = self.checkpoints.resolve(args.resume_from) if args.resume_from else None
        if resume_path is not None:
            return resume_path
        earlier = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
        if earlier and args.overwrite:
            if self.is_main_process:
                for name in RUN_OUTPUTS:
                    path = directory / name
                    if path.is_dir():
                        shutil.rmtree(path)
                    elif path.exists():
                        path.unlink()
            self.accelerator.wait_for_everyone()
        elif earlier:
            shown = ", ".join(earlier[:6]) + (", ..." if len(earlier) > 6 else "")
            raise ValueError(
                f"{directory} already holds an earlier run ({shown}). Continue it with --resume latest "
                "(--training.resume_from latest), start over with --overwrite (deletes its checkpoints, logs, model and "
                "metrics), or choose another --output_dir."
            )
        return None

    # -- resume -----------------------------------------------------------------------------
    def resume(self) -> None:
        if self.resume_path is not None:
            self._load_checkpoint(self.resume_path)
            self.last_checkpoint = self.resume_path
            self.accelerator.print(f"Resumed from {self.resume_path} at step {self.start_step}.")
        self.batches = iter(self.objective.train_batches(self, self.start_step * self.args.gradient_accumulation_steps))
        if self.args.report_to not in (None, "none"):
            scalars = {key: value for key, value in flatten_config(self.config).items()
                       if isinstance(value, (int, float, str, bool))}
            self.accelerator.init_trackers("hf_vq", config=scalars)
        for spec in self.optimizers.values():
            spec.module.train()

    def _check_changed_settings(self, saved: dict) -> None:
        now = flatten_config(self.config) | {"num_processes": self.accelerator.num_processes}
        before = flatten_config(saved["config"]) | {"num_processes": saved.get("num_processes", 1)}
        for key, former in SETTINGS_ADDED_WITH_FORMER_BEHAVIOUR.items():
            if key in now and key not in before:
                before[key] = former
        changed = sorted(key for key in now.keys() | before.keys()
                         if now.get(key) != before.get(key) and key not in RUN_CONTROLS)
        if not changed:
            return
        breaking = [key for key in changed if not any(key == c or (c.endswith(".") and key.startswith(c))
                                                      for c in CHANGEABLE_ON_RESUME)]
        listing = "; ".join(f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in changed)
        if breaking and not self.args.resume_allow_changes:
            raise ValueError(
                f"The settings differ from the checkpoint's in ways that break the resumed run ({', '.join(breaking)}). "
                f"Differences: {listing}. Resume with the checkpoint's settings, or pass --resume-allow-changes "
                "(training.resume_allow_changes: true) to continue anyway."
            )
        warnings.warn(f"Resuming with settings that differ from the checkpoint's: {listing}.", stacklevel=2)

    def _load_checkpoint(self, path: Path) -> None:
        state = read_json(path / TRAINER_STATE_FILE)
        if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointFormatError(
                f"{path / TRAINER_STATE_FILE} is not an {CHECKPOINT_FORMAT} trainer state (written by another hf_vq "
                "version or not by hf_vq); start a new run or resume from a checkpoint this version wrote."
            )
        self._check_changed_settings(state)
        for name, module in self.objective.state_modules().items():
            load_module(module, path / f"{name}.safetensors", self.device)
        optimizer_tensors = read_tensors(path / "optimizers.safetensors")
        for name, spec in self.optimizers.items():
            if self._parameter_groups_match(name, state["optimizers"][name], spec, path):
                spec.optimizer.load_state_dict(unflatten_optimizer_state(state["optimizers"][name], optimizer_tensors))
            spec.scheduler.load_state_dict(state["schedulers"][name])
            self._apply_learning_rate(spec)
        if self.accelerator.scaler is not None and state.get("scaler"):
            self.accelerator.scaler.load_state_dict(state["scaler"])
        if self.ema is not None:
            if "ema" not in state:
                raise CheckpointFormatError(f"{path} has no EMA weights but training.ema_decay is set.")
            self.ema.load_state_dict(unflatten_ema_state(state["ema"], read_tensors(path / "ema.safetensors")))
            self.ema.to(self.device)
        rank = self.accelerator.process_index
        rng_file = path / f"rng_state_{rank}.safetensors"
        if rng_file.is_file() or not self.args.resume_allow_changes:
            set_rng_state(read_tensors(rng_file), read_json(path / f"rng_state_{rank}.json"))
        self.objective.load_checkpoint_state(state.get("objective", {}), self)
        self.start_step, self.history = state["step"], state["history"]

    def _parameter_group_names(self, spec: OptimizerSpec) -> list:
        """The names of the parameters in each of ``spec``'s optimizer groups, in order (stored in checkpoints)."""
        module = self.accelerator.unwrap_model(spec.module)
        # Names as in the model's state dict: without a torch.compile wrapper's prefix, so that a compiled and
        # an eager run of the same model resume each other.
        names = {id(parameter): name.replace("_orig_mod.", "") for name, parameter in module.named_parameters()}
        return [[names.get(id(parameter), f"<parameter {index} of group {number}, not in the {spec.name} module>")
                 for index, parameter in enumerate(group["params"])]
                for number, group in enumerate(spec.optimizer.param_groups)]

    def _parameter_groups_match(self, name: str, saved: dict, spec: OptimizerSpec, path: Path) -> bool:
        """Whether the checkpoint's ``name`` optimizer has this run's parameter groups: the same parameters (by
        name) in the same groups, in the same order (torch matches the saved moments to parameters by position).

        Checkpoints store the names (``param_group_names``) since this check; an older one has none and is
        compared by the number and sizes of its groups only. Checkpoints written before TiTok runs gave the
        discriminator's AdamW the official weight-decay groups hold one group where this version builds two;
        torch would refuse them deep inside ``load_state_dict``, or load moments into the wrong parameters
        where only the grouping changed. This says so, naming the moved parameters; with
        ``resume_allow_changes`` that optimizer's moments restart from zero (weights, step and schedule are
        resumed), with a warning."""
        saved_sizes = [len(group["params"]) for group in saved["param_groups"]]
        sizes = [len(group["params"]) for group in spec.optimizer.param_groups]
        saved_names = saved.get("param_group_names")
        if saved_names is None:  # written before the names were stored
            if saved_sizes == sizes:
                return True
            problem = (f"The {name} optimizer state in {path} has parameter groups of {saved_sizes} parameters, this "
                       f"run's {name} optimizer has {sizes}: the checkpoint was written by an older hf_vq or with "
                       "another optimizer grouping (this version gives a TiTok's discriminator the official weight-decay "
                       "groups: biases and norms in a group of their own).")
        else:
            names = self._parameter_group_names(spec)
            if saved_names == names:
                return True
            problem = (f"The {name} optimizer state in {path} groups its parameters otherwise than this run's {name} "
                       f"optimizer ({describe_group_changes(saved_names, names)}): the checkpoint was written by "
                       "another hf_vq version or with another optimizer grouping or model.")
        if not self.args.resume_allow_changes:
            raise CheckpointFormatError(
                f"{problem} Resume with --resume-allow-changes (training.resume_allow_changes: true) to continue with "
                f"the {name} optimizer's moments restarted from zero (weights, step and schedules are resumed), or "
                "resume with the hf_vq version that wrote the checkpoint."
            )
        warnings.warn(f"{problem} Its moments restart from zero; weights, step and schedules are resumed.", stacklevel=2)
        return False

    def _apply_learning_rate(self, spec: OptimizerSpec) -> None:
        """A resumed schedule keeps its step but takes the configured learning rate (a changed one is listed)
        for every parameter group (a schedule saved for fewer groups than the optimizer now has included)."""
        scheduler = spec.scheduler
        if (len(scheduler.base_lrs) == len(spec.optimizer.param_groups)
                and all(base == spec.learning_rate for base in scheduler.base_lrs)):
            return
        scheduler.base_lrs = [spec.learning_rate] * len(spec.optimizer.param_groups)
        for index, group in enumerate(spec.optimizer.param_groups):
            group["initial_lr"] = spec.learning_rate
            group["lr"] = spec.learning_rate * scheduler.lr_lambdas[index](scheduler.last_epoch)
        scheduler._last_lr = [group["lr"] for group in spec.optimizer.param_groups]

    # -- step -------------------------------------------------------------------------------
    def step(self, step: int) -> dict:
        """One optimizer step (``gradient_accumulation_steps`` micro-batches); returns the terms of the last one."""
        accelerator, args = self.accelerator, self.args
        trained = [spec.module for spec in self.optimizers.values()]
        for _ in range(args.gradient_accumulation_steps):
            batch = next(self.batches)
            terms = {}
            with accelerator.accumulate(*trained):
                losses = self.objective.step_losses(batch, step)
                while True:
                    with accelerator.autocast():  # forward passes only; backward runs outside autocast
                        item = next(losses, None)
                    if item is None:
                        break
                    self._queue_terms(item.terms, step)
                    terms.update(item.terms)
                    spec = self.optimizers[item.optimizer]
                    accelerator.backward(item.loss)
                    if args.max_grad_norm and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(spec.module.parameters(), args.max_grad_norm)
                    spec.optimizer.step()
                    spec.optimizer.zero_grad(set_to_none=True)
        for spec in self.optimizers.values():
            if spec.active(step):
                spec.scheduler.step()
        if self.ema is not None:
            self.ema.step(self.objective.model().parameters())
        return terms

    def _queue_terms(self, terms: dict, step: int) -> None:
        """Keep the terms of a loss, on the device, for the next read (:meth:`_read_losses`)."""
        names = list(terms)
        if names:
            values = torch.stack([torch.as_tensor(terms[name], device=self.device).detach().float().reshape(())
                                  for name in names])
            self.unread_terms.append((step, names, values))

    def _read_losses(self, logged_terms: dict | None = None) -> dict:
        """Read on the host, with one device sync: the models' queued value checks, every loss term since
        the last read (a non-finite one stops the run) and ``logged_terms``; returns the logged values.

        A non-finite loss is therefore found at the next logging or checkpoint step (``training.log_every``,
        ``training.checkpoint_every``), not at its own step: the error names the step where it first
        appeared, and a checkpoint is never written after it.
        """
        unread, self.unread_terms = self.unread_terms, []
        logged_names = list(logged_terms or {})
        if not unread and not logged_names and not has_queued_value_checks():
            return {}
        values = torch.cat([entry[2] for entry in unread]) if unread else torch.zeros(0, device=self.device)
        # Every process must stop together (the others would wait forever in the next collective):
        # the flags of every term are summed over processes.
        flags = (~torch.isfinite(values)).float()
        if self.accelerator.num_processes > 1:
            flags = self.accelerator.reduce(flags, reduction="sum")
        logged = (torch.stack([torch.as_tensor(logged_terms[name], device=self.device).detach().float().reshape(())
                               for name in logged_names]) if logged_names else values.new_zeros(0))
        result = {}

        def read(numbers: list) -> None:
            count = len(values)
            self._raise_if_non_finite(unread, numbers[:count], numbers[count : 2 * count])
            result.update(zip(logged_names, numbers[2 * count :]))

        check_values(torch.cat([flags, values, logged]), read)
        run_value_checks()
        return result

    def _raise_if_non_finite(self, unread: list, flags: list, values: list) -> None:
        start = 0
        for step, names, _values in unread:
            end = start + len(names)
            if any(flags[start:end]):
                detail = ", ".join(f"{name}={value}" for name, value in zip(names, values[start:end])
                                   if not math.isfinite(value)) or "on another process"
                raise NonFiniteLossError(f"Non-finite loss at step {step}: {detail}. Stopping; {self._last_good()}. "
                                         + _NAN_ADVICE)
            start = end

    def _last_good(self) -> str:
        if self.last_checkpoint:
            return f"the last good checkpoint is {self.last_checkpoint} (resume it with --resume {self.last_checkpoint})"
        return "no checkpoint was written yet"

    # -- log --------------------------------------------------------------------------------
    def log(self, step: int, terms: dict, progress) -> None:
        args = self.args
        if not (step % args.log_every == 0 or step == args.max_steps - 1):
            return
        # The terms of the step's last micro-batch (what a resumed run must reproduce exactly), read
        # with every check queued since the last logging step.
        values = self._read_losses(terms)
        self.history.append({"step": step, "loss": values.get(self.objective.loss_name), **values})
        logs = {f"train/{name}": value for name, value in values.items()}
        for spec in self.optimizers.values():
            logs[f"train/{spec.log_name}"] = spec.scheduler.get_last_lr()[0]
        logs.update(self.objective.log_values(self, step))
        self.accelerator.log(logs, step=step)
        progress.set_postfix({name: f"{value:.4f}" for name, value in values.items()
                              if name in self.objective.progress_terms})

    # -- checkpoint -------------------------------------------------------------------------
    def checkpoint(self, completed: int) -> None:
        args = self.args
        if args.checkpoint_every and completed % args.checkpoint_every == 0:
            self._read_losses()  # a non-finite loss since the last read stops the run before the checkpoint
            self._check_finite_weights(completed)
            self.last_checkpoint = self.checkpoints.save(completed, lambda directory: self._write(directory, completed))
        if args.debug_kill_at_step is not None and completed == args.debug_kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)  # simulated crash, for the resume tests

    def _check_finite_weights(self, completed: int) -> None:
        """A checkpoint is only written from finite weights: the last good one must resume."""
        named = [(f"{module_name}.{name}", tensor) for module_name, module in self.objective.state_modules().items()
                 for name, tensor in module.state_dict().items() if tensor.is_floating_point()]
        # One host read for all the tensors (on the device they live on: the model's).
        finite = torch.stack([torch.isfinite(tensor).all().to(self.device) for _, tensor in named]).tolist() if named else []
        bad = [name for (name, _), ok in zip(named, finite) if not ok]
        flag = torch.tensor(float(bool(bad)), device=self.device)
        if self.accelerator.num_processes > 1:
            flag = self.accelerator.reduce(flag, reduction="sum")
        if flag.item() > 0:
            shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "") or "on another process"
            raise NonFiniteLossError(f"Non-finite weights after step {completed - 1} ({shown}); no checkpoint written. "
                                     f"Stopping; {self._last_good()}. " + _NAN_ADVICE)

    def _write(self, directory: Path, completed: int) -> None:
        """Every process: its RNG state; the main process: weights, optimizers, EMA, trainer state."""
        tensors, info = rng_state()
        rank = self.accelerator.process_index
        write_tensors(directory / f"rng_state_{rank}.safetensors", tensors)
        write_json(directory / f"rng_state_{rank}.json", info)
        objective_state = self.objective.checkpoint_state(self)  # may reduce over processes: all call it
        if not self.is_main_process:
            return
        for name, module in self.objective.state_modules().items():
            save_module(module, directory / f"{name}.safetensors")
        optimizer_tensors, skeletons, schedulers = {}, {}, {}
        for name, spec in self.optimizers.items():
            spec_tensors, skeletons[name] = flatten_optimizer_state(name, spec.optimizer.state_dict())
            skeletons[name]["param_group_names"] = self._parameter_group_names(spec)
            optimizer_tensors.update(spec_tensors)
            schedulers[name] = json_state(spec.scheduler.state_dict(), f"{name} LR scheduler")
        write_tensors(directory / "optimizers.safetensors", optimizer_tensors)
        state = {"format": CHECKPOINT_FORMAT, "step": completed,
                 "batches_seen": completed * self.args.gradient_accumulation_steps,
                 "num_processes": self.accelerator.num_processes, "history": self.history, "config": self.config,
                 "optimizers": skeletons, "schedulers": schedulers, "objective": objective_state}
        if self.accelerator.scaler is not None:
            state["scaler"] = json_state(self.accelerator.scaler.state_dict(), "gradient scaler")
        if self.ema is not None:
            ema_tensors, state["ema"] = flatten_ema_state(self.ema.state_dict())
            write_tensors(directory / "ema.safetensors", ema_tensors)
        write_json(directory / TRAINER_STATE_FILE, state)  # last: its presence marks a complete checkpoint

    # -- finish -----------------------------------------------------------------------------
    def finish(self) -> TrainResult:
        model = self.objective.model()
        if self.ema is not None:
            self.ema.copy_to(model.parameters())  # the saved and evaluated model carries the EMA weights
        staging = self.output_dir / FINAL_STAGING_DIR
        if self.is_main_process:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
        self.accelerator.wait_for_everyone()
        metrics = self.objective.finish(self, staging)
        metrics["train_steps"] = self.args.max_steps
        metrics["weights"] = f"EMA (decay {self.args.ema_decay})" if self.ema is not None else "final"
        if self.is_main_process:
            (staging / "metrics.json").write_text(json.dumps(metrics, indent=2))
            (staging / "train_history.json").write_text(json.dumps(self.history, indent=2))
            (staging / "train_config.json").write_text(json.dumps(self.config, indent=2))
            # One atomic rename per file: a kill at any moment leaves each file whole (old or new).
            for path in sorted(staging.iterdir()):
                os.replace(path, self.output_dir / path.name)
            staging.rmdir()
            print(json.dumps(metrics, indent=2))
            saved = [f"{label}: {self.output_dir / name}" for label, name in self.objective.final_outputs]
            saved += [f"metrics: {self.output_dir / 'metrics.json'}",
                      f"loss history: {self.output_dir / 'train_history.json'}"]
            print("Saved " + "; ".join(saved))
        self.accelerator.wait_for_everyone()
        self.accelerator.end_training()
        return TrainResult(output_dir=self.output_dir, model=model, history=self.history, metrics=metrics)


_NAN_ADVICE = ("Lower training.learning_rate, set training.max_grad_norm, or use bf16 instead of fp16.")
