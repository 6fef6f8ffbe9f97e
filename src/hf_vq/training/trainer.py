"""The training loop: one Accelerate loop for any hf_vq tokenizer.

Per optimizer step (``gradient_accumulation_steps`` micro-batches, both models accumulate):

1. generator: ``model(pixels)`` -> reconstruction; loss = reconstruction (L1/L2)
   + lpips_weight * LPIPS + the quantizer's terms + (after ``disc_start``) the GAN
   generator term, weighted by taming's adaptive weight or a fixed weight;
2. discriminator (after ``disc_start``): hinge or non-saturating loss on real vs
   detached reconstructions, plus LeCam regularisation;
3. LR schedules (``transformers.get_scheduler``), EMA of the generator weights, logging
   (TensorBoard + progress bar), crash-safe checkpoints every ``checkpoint_every`` steps.

At the end: evaluation on held-out images, then ``output_dir`` gets the model and its
``VQImageProcessor`` (``save_pretrained``), ``reconstructions.png``, ``metrics.json``,
``train_history.json`` and ``train_config.json``.
"""

import json
import math
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.utils import GradientAccumulationPlugin, ProjectConfiguration, set_seed
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, get_scheduler

from ..evaluation import evaluate_reconstruction, save_reconstruction_grid
from ..losses import (
    LeCamRegularizer,
    LPIPSLoss,
    adaptive_generator_weight,
    discriminator_loss,
    generator_loss,
)
from ..modules import build_discriminator
from ..processing import VQImageProcessor
from ..quantizers import CodebookUsage
from .checkpointing import CheckpointManager
from .config import TrainConfig, load_config
from .dataloaders import build_dataloaders, first_images


@dataclass
class TrainResult:
    """What ``train`` returns: where it saved, the trained model (EMA weights when enabled),
    the logged loss history and the final metrics."""

    output_dir: Path
    model: nn.Module
    history: list
    metrics: dict


def build_model(model_section: dict):
    """The tokenizer of the ``model:`` section: ``model_type`` + its config fields builds a fresh one;
    ``pretrained: PATH_OR_HUB_ID`` loads saved weights instead (e.g. a converted VQGAN to fine-tune),
    with the other fields overriding its config."""
    kwargs = dict(model_section)
    model_type = kwargs.pop("model_type", None)
    pretrained = kwargs.pop("pretrained", None)
    if pretrained:
        model = AutoModel.from_pretrained(pretrained, **kwargs)
        if model_type and model.config.model_type != model_type:
            raise ValueError(
                f"model.pretrained {pretrained} is a {model.config.model_type!r} model but model.model_type is "
                f"{model_type!r}; drop model_type or point pretrained at a {model_type} checkpoint."
            )
        return model
    config = AutoConfig.for_model(model_type, **kwargs)
    return AutoModel.from_config(config)


def _optimizer(name: str, parameters, learning_rate: float, args) -> torch.optim.Optimizer:
    optimizer_class = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    return optimizer_class([p for p in parameters if p.requires_grad], lr=learning_rate,
                           betas=(args.adam_beta1, args.adam_beta2), weight_decay=args.weight_decay)


def _reconstruction_loss(kind: str, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if kind == "l1":
        return F.l1_loss(reconstruction.float(), target.float())
    return F.mse_loss(reconstruction.float(), target.float())


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf; the run stops and its last checkpoint stays untouched."""


def _check_finite(terms: dict, step: int, accelerator, checkpoint: Path | None) -> None:
    bad = {name: value.item() for name, value in terms.items() if not math.isfinite(value.item())}
    flag = torch.tensor(float(bool(bad)), device=accelerator.device)
    if accelerator.num_processes > 1:
        # Every process must stop together, or the others would wait forever in the next all-reduce.
        flag = accelerator.reduce(flag, reduction="sum")
    if flag.item() > 0:
        where = f"the last good checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written yet"
        detail = ", ".join(f"{name}={value}" for name, value in bad.items()) or "on another process"
        raise NonFiniteLossError(
            f"Non-finite loss at step {step}: {detail}. Stopping; {where}. Lower training.learning_rate, set "
            "training.max_grad_norm, or use bf16 instead of fp16."
        )


class _Losses:
    """The generator and discriminator losses of the ``loss:`` section."""

    def __init__(self, config: TrainConfig, model, discriminator, perceptual, lecam):
        self.cfg = config.loss
        self.model = model
        self.discriminator = discriminator
        self.perceptual = perceptual
        self.lecam = lecam
        self.reconstruction_kind = self.cfg.reconstruction or model.config.reconstruction_loss

    def gan_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.cfg.disc_start

    def generator(self, prepared_model, raw_discriminator, pixel_values, step: int):
        """(total loss, loss terms, model output)."""
        output = prepared_model(pixel_values)
        reconstruction = output.reconstruction
        rec_loss = _reconstruction_loss(self.reconstruction_kind, reconstruction, pixel_values)
        terms = {"reconstruction": rec_loss}
        nll = self.cfg.reconstruction_weight * rec_loss
        if self.perceptual is not None:
            terms["lpips"] = self.perceptual(reconstruction, pixel_values)
            nll = nll + self.cfg.lpips_weight * terms["lpips"]
        quantizer_loss = output.quantizer_loss if output.quantizer_loss is not None else torch.zeros((), device=nll.device)
        for name, value in (output.loss_terms or {}).items():
            if name != "reconstruction":
                terms[f"quantizer_{name}"] = value
        total = nll + quantizer_loss.float()
        if self.gan_active(step):
            # The discriminator is frozen here and called unwrapped: the GAN term trains the generator only.
            raw_discriminator.requires_grad_(False)
            g_loss = generator_loss(self.cfg.disc_loss, raw_discriminator(reconstruction).float())
            raw_discriminator.requires_grad_(True)
            if self.cfg.adaptive_disc_weight:
                weight = self.cfg.disc_weight * adaptive_generator_weight(nll, g_loss, self.model.last_layer)
            else:
                weight = torch.tensor(self.cfg.disc_weight, device=g_loss.device)
            terms["generator_adversarial"] = g_loss
            terms["adversarial_weight"] = weight
            total = total + weight * g_loss
        terms["total"] = total
        return total, terms, output

    def discriminator_step(self, prepared_discriminator, pixel_values, reconstruction):
        """(discriminator loss, its terms)."""
        logits_real = prepared_discriminator(pixel_values.detach()).float()
        logits_fake = prepared_discriminator(reconstruction.detach()).float()
        d_loss = discriminator_loss(self.cfg.disc_loss, logits_real, logits_fake)
        terms = {"discriminator": d_loss, "logits_real": logits_real.mean().detach(),
                 "logits_fake": logits_fake.mean().detach()}
        if self.lecam is not None:
            terms["lecam"] = self.lecam(logits_real, logits_fake)
            d_loss = d_loss + self.cfg.lecam_weight * terms["lecam"]
        return d_loss, terms


def _make_accelerator(config: TrainConfig, output_dir: Path) -> Accelerator:
    args = config.training
    tracker = None if args.report_to in (None, "none") else args.report_to
    return Accelerator(
        mixed_precision=args.mixed_precision,
        # Our step counter decides when to sync, not the end of an epoch.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=args.gradient_accumulation_steps, sync_with_dataloader=False),
        log_with=tracker,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )


def _total(accelerator, count: int) -> int:
    """Sum of a per-process count over all processes."""
    return int(accelerator.reduce(torch.tensor(count, device=accelerator.device), reduction="sum"))


def _log_images(accelerator, model, originals: torch.Tensor, step: int) -> None:
    if not accelerator.is_main_process or not accelerator.trackers:
        return
    from torchvision.utils import make_grid

    with torch.no_grad():
        was_training = model.training
        model.eval()
        reconstructions = model(originals).reconstruction.float()
        model.train(was_training)
    grid = make_grid(torch.cat([originals.float(), reconstructions]).clamp(-1, 1) * 0.5 + 0.5, nrow=len(originals))
    for tracker in accelerator.trackers:
        if tracker.name == "tensorboard":
            tracker.writer.add_image("reconstructions (top: originals)", grid, step)


def train(config: TrainConfig, *, model: nn.Module | None = None, perceptual_loss: nn.Module | None = None) -> Path:
    """Train, evaluate on held-out images, save to ``config.output_dir``; returns that directory.

    See :func:`run_training` for the arguments and for the trained model and history in memory.
    """
    return run_training(config, model=model, perceptual_loss=perceptual_loss).output_dir


def run_training(config: TrainConfig, *, model: nn.Module | None = None,
                 perceptual_loss: nn.Module | None = None) -> TrainResult:
    """Train, evaluate on held-out images, save to ``config.output_dir``.

    Args:
        model: a tokenizer to train instead of building one from ``config.model``.
        perceptual_loss: the LPIPS module to use (e.g. ``LPIPSLoss(network=...)`` with your own
            weights); by default ``LPIPSLoss(net=loss.lpips_net)`` with the pretrained trunk.
    """
    args, loss_cfg = config.training, config.loss
    output_dir = Path(config.output_dir)
    accelerator = _make_accelerator(config, output_dir)
    set_seed(config.seed)

    model = model if model is not None else build_model(config.model)
    image_size = config.data.image_size
    if image_size % model.downsample_factor:
        raise ValueError(
            f"data.image_size {image_size} is not divisible by the model's downsampling factor {model.downsample_factor}."
        )
    if loss_cfg.disc_weight > 0 and loss_cfg.adaptive_disc_weight and not hasattr(model, "last_layer"):
        raise ValueError(f"{type(model).__name__} has no `last_layer` for the adaptive GAN weight; "
                         "set loss.adaptive_disc_weight: false.")
    discriminator = None
    if loss_cfg.disc_weight > 0:
        discriminator = build_discriminator(loss_cfg.discriminator, model.config.num_channels, image_size,
                                            loss_cfg.disc_layers, loss_cfg.disc_channels)
    perceptual = None
    if loss_cfg.lpips_weight > 0:
        perceptual = perceptual_loss if perceptual_loss is not None else LPIPSLoss(net=loss_cfg.lpips_net)
        perceptual = perceptual.to(accelerator.device)
    lecam = LeCamRegularizer(loss_cfg.lecam_decay).to(accelerator.device) if discriminator and loss_cfg.lecam_weight > 0 else None

    optimizer = _optimizer(args.optimizer, model.parameters(), args.learning_rate, args)
    scheduler = get_scheduler(args.lr_scheduler, optimizer, num_warmup_steps=args.warmup_steps,
                              num_training_steps=args.max_steps)
    schedulers = [scheduler]
    if discriminator is not None:
        disc_optimizer = _optimizer(args.optimizer, discriminator.parameters(),
                                    args.disc_learning_rate or args.learning_rate, args)
        # The discriminator's schedule counts from disc_start, when it starts training.
        disc_scheduler = get_scheduler(args.lr_scheduler, disc_optimizer, num_warmup_steps=args.warmup_steps,
                                       num_training_steps=max(1, args.max_steps - loss_cfg.disc_start))
        schedulers.append(disc_scheduler)
        model, optimizer, discriminator, disc_optimizer = accelerator.prepare(
            model, optimizer, discriminator, disc_optimizer)
    else:
        model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)
    raw_discriminator = accelerator.unwrap_model(discriminator) if discriminator is not None else None

    ema = None
    if args.ema_decay:
        from diffusers.training_utils import EMAModel

        # diffusers' EMAModel warms the decay up as min(ema_decay, (1 + n) / (10 + n)) after n updates.
        ema = EMAModel(unwrapped.parameters(), decay=args.ema_decay)
        ema.to(accelerator.device)
    # Schedulers are stepped by us once per optimizer step (not prepared: Accelerate would step
    # them once per process), so they are registered for checkpoints like the EMA and LeCam state.
    for state in [*schedulers, ema, lecam]:
        if state is not None:
            accelerator.register_for_checkpointing(state)

    checkpoints = CheckpointManager(accelerator, output_dir, keep=args.keep_checkpoints)
    checkpoints.remove_incomplete()
    start_step, history, num_unreadable, last_checkpoint = 0, [], 0, None
    resume_path = checkpoints.resolve(args.resume_from) if args.resume_from else None
    if resume_path is not None:
        trainer_state = checkpoints.load(resume_path)
        start_step, history = trainer_state["step"], trainer_state["history"]
        # The saved count is the total over processes: one process carries it on.
        num_unreadable = trainer_state["num_unreadable"] if accelerator.is_main_process else 0
        last_checkpoint = resume_path
        accelerator.print(f"Resumed from {resume_path} at step {start_step}.")
    elif checkpoints.complete_checkpoints() and not args.resume_from:
        raise ValueError(
            f"{checkpoints.directory} already holds checkpoints of an earlier run. Continue it with "
            "--training.resume_from latest, or choose another --output_dir."
        )

    train_batches, eval_batches = build_dataloaders(
        config, accelerator, start_batch=start_step * args.gradient_accumulation_steps)
    batches = iter(train_batches)
    losses = _Losses(config, unwrapped, discriminator, perceptual, lecam)
    grid_images = first_images(eval_batches, config.eval.num_grid_images) if args.log_images_every else None
    if args.report_to not in (None, "none"):
        accelerator.init_trackers("hf_vq", config={"output_dir": str(output_dir), "seed": config.seed,
                                                   **{f"training.{k}": v for k, v in vars(args).items()
                                                      if isinstance(v, (int, float, str, bool))}})
    usage = CodebookUsage(unwrapped.config.codebook_size)
    model.train()
    if discriminator is not None:
        discriminator.train()
    progress = tqdm(range(start_step, args.max_steps), initial=start_step, total=args.max_steps, desc="train",
                    disable=not accelerator.is_local_main_process)
    for step in progress:
        for _ in range(args.gradient_accumulation_steps):
            batch = next(batches)
            pixel_values = batch["pixel_values"]
            num_unreadable += int(batch["num_unreadable"])
            accumulating = [model] + ([discriminator] if discriminator is not None else [])
            with accelerator.accumulate(*accumulating):
                with accelerator.autocast():  # forward passes only; backward runs outside autocast
                    total, terms, output = losses.generator(model, raw_discriminator, pixel_values, step)
                _check_finite(terms, step, accelerator, last_checkpoint)
                accelerator.backward(total)
                if args.max_grad_norm and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if losses.gan_active(step):
                    with accelerator.autocast():
                        d_loss, d_terms = losses.discriminator_step(discriminator, pixel_values, output.reconstruction)
                    _check_finite(d_terms, step, accelerator, last_checkpoint)
                    terms.update(d_terms)
                    accelerator.backward(d_loss)
                    if args.max_grad_norm and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(discriminator.parameters(), args.max_grad_norm)
                    disc_optimizer.step()
                    disc_optimizer.zero_grad(set_to_none=True)
            usage.update(output.indices)
        scheduler.step()
        if losses.gan_active(step):
            disc_scheduler.step()
        if ema is not None:
            ema.step(unwrapped.parameters())

        if step % args.log_every == 0 or step == args.max_steps - 1:
            # The loss terms of the step's last micro-batch (what a resumed run must reproduce exactly).
            values = {name: value.item() for name, value in terms.items()}
            history.append({"step": step, "loss": values["total"], **values})
            codebook = usage.compute(all_reduce=True)
            usage = CodebookUsage(unwrapped.config.codebook_size)
            unreadable_total = _total(accelerator, num_unreadable)
            logs = {f"train/{name}": value for name, value in values.items()}
            logs.update({"train/codebook_usage": codebook["codebook_usage"], "train/perplexity": codebook["perplexity"],
                         "train/lr": scheduler.get_last_lr()[0], "data/unreadable_images": unreadable_total})
            if discriminator is not None:
                logs["train/disc_lr"] = disc_scheduler.get_last_lr()[0]
            accelerator.log(logs, step=step)
            progress.set_postfix({name: f"{value:.4f}" for name, value in values.items()
                                  if name in ("total", "reconstruction", "lpips", "generator_adversarial", "discriminator")})
        if args.log_images_every and (step % args.log_images_every == 0 or step == args.max_steps - 1):
            _log_images(accelerator, unwrapped, grid_images, step)
        completed = step + 1
        if args.checkpoint_every and completed % args.checkpoint_every == 0:
            last_checkpoint = checkpoints.save(completed, {"step": completed, "history": history,
                                                           "num_unreadable": _total(accelerator, num_unreadable)})
        if args.debug_kill_at_step is not None and completed == args.debug_kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)  # simulated crash, for the resume test

    if ema is not None:
        ema.copy_to(unwrapped.parameters())  # the saved and evaluated model carries the EMA weights
    metrics = evaluate_reconstruction(unwrapped, eval_batches, progress=accelerator.is_local_main_process)
    metrics["train_steps"] = args.max_steps
    metrics["weights"] = f"EMA (decay {args.ema_decay})" if ema is not None else "final"
    metrics["unreadable_images_skipped"] = _total(accelerator, num_unreadable)
    eval_source = config.data.eval_data_dir or config.data.train_data_dir or config.data.dataset
    metrics["eval_data"] = f"{eval_source} evaluation images, ADM center crop {image_size}px"
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        unwrapped.save_pretrained(output_dir)
        VQImageProcessor(size=image_size, num_channels=unwrapped.config.num_channels).save_pretrained(output_dir)
        originals = grid_images if grid_images is not None else first_images(eval_batches, config.eval.num_grid_images)
        with torch.no_grad():
            unwrapped.eval()
            reconstructions = unwrapped(originals).reconstruction
        save_reconstruction_grid(originals, reconstructions, output_dir / "reconstructions.png")
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        (output_dir / "train_history.json").write_text(json.dumps(history, indent=2))
        (output_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        print(json.dumps(metrics, indent=2))
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(output_dir=output_dir, model=unwrapped, history=history, metrics=metrics)


def train_from_config(path=None, overrides=()) -> Path:
    return train(load_config(path, overrides))
