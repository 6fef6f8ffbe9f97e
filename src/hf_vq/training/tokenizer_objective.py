"""The tokenizer objective: reconstruction + LPIPS (+ ConvNeXt-S) + the quantizer's terms + GAN.

Per micro-batch (the engine back-propagates and steps each loss in turn):

1. generator: ``model(pixels)`` gives the reconstruction and the model's own loss terms
   (reconstruction L1/L2 as ``loss.reconstruction`` or the model config says, commitment,
   codebook, entropy...); loss = reconstruction_weight * reconstruction + lpips_weight * LPIPS
   + the quantizer's terms + (after ``disc_start``) the GAN generator term, weighted by
   taming's adaptive weight or a fixed weight;
2. discriminator (after ``disc_start``): hinge or non-saturating loss on real vs detached
   reconstructions, plus LeCam regularisation.

With ``loss.disc_augment`` every image the discriminator sees, in both steps, is augmented first (DiffAugment).

At the end: evaluation on held-out images (usage, perplexity, PSNR, SSIM, and LPIPS and rFID
when their network weights are on disk; a missing one is skipped with a message naming the
file), then the model and its ``VQImageProcessor`` and ``reconstructions.png``.
"""

import sys

import torch
from torch import nn
from transformers import AutoConfig, AutoModel

from ..data.teacher_codebook import load_codebook
from ..evaluation import (
    MissingWeightsError,
    evaluate_reconstruction,
    load_fid_inception,
    load_lpips_network,
    save_reconstruction_grid,
)
from ..losses import ConvNeXtPerceptualLoss, DiffAugment, LeCamRegularizer, LPIPSLoss, adaptive_generator_weight, discriminator_loss, generator_loss
from ..modules import build_discriminator
from ..processing import VQImageProcessor
from ..quantizers import CodebookUsage
from .config import TrainConfig
from .dataloaders import build_dataloaders, first_images
from .engine import Objective, StepLoss


def build_model(model_section: dict):
    """The tokenizer of the ``model:`` section: ``model_type`` + its config fields builds a fresh one
    (``codebook: FILE``: a frozen codebook from ``hf-vq build-codebook``, for VQGAN-LC);
    ``pretrained: PATH_OR_HUB_ID`` loads saved weights instead (e.g. a converted VQGAN to fine-tune),
    with the other fields overriding its config."""
    kwargs = dict(model_section)
    model_type = kwargs.pop("model_type", None)
    pretrained = kwargs.pop("pretrained", None)
    codebook = kwargs.pop("codebook", None)
    if pretrained:
        model = AutoModel.from_pretrained(pretrained, **kwargs)
        if model_type and model.config.model_type != model_type:
            raise ValueError(
                f"model.pretrained {pretrained} is a {model.config.model_type!r} model but model.model_type is "
                f"{model_type!r}; drop model_type or point pretrained at a {model_type} checkpoint."
            )
        return model
    config = AutoConfig.for_model(model_type, **kwargs)
    if codebook is None:
        return AutoModel.from_config(config)
    # VQGAN-LC: the frozen teacher codebook (an `hf-vq build-codebook` file) goes in before training;
    # it is a buffer, so no optimizer ever sees it.
    if not config.codebook_source:
        config.codebook_source = str(codebook)
    model = AutoModel.from_config(config)
    model.set_frozen_codebook(load_codebook(codebook))
    return model


# Parameters TiTok's official optimizer keeps out of weight decay (bytedance/1d-tokenizer create_optimizer):
# vectors, and anything whose name says norm, bias, learned token or embedding.
NO_DECAY_NAME_PARTS = ("ln", "bias", "latent_tokens", "mask_token", "embedding", "norm", "gamma", "embed", "class_token")


def titok_parameter_groups(model: nn.Module, weight_decay: float) -> list:
    """AdamW groups as TiTok's official training: no weight decay on vectors, norms, biases, tokens, embeddings."""
    trained = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    exempt = [p for name, p in trained if p.ndim < 2 or any(part in name for part in NO_DECAY_NAME_PARTS)]
    exempt_ids = {id(p) for p in exempt}
    return [{"params": exempt, "weight_decay": 0.0},
            {"params": [p for _, p in trained if id(p) not in exempt_ids], "weight_decay": weight_decay}]


def parameter_groups(model: nn.Module, weight_decay: float):
    """What the model's optimizer trains: TiTok with its official weight-decay groups, others all parameters."""
    if getattr(model.config, "model_type", None) == "titok":
        return titok_parameter_groups(model, weight_decay)
    return model.parameters()


def discriminator_parameter_groups(model: nn.Module, discriminator: nn.Module, weight_decay: float):
    """What the discriminator's optimizer trains: with a TiTok, the official weight-decay groups too
    (the official code builds the discriminator's AdamW with the same exclusions as the model's)."""
    if getattr(model.config, "model_type", None) == "titok":
        return titok_parameter_groups(discriminator, weight_decay)
    return discriminator.parameters()


class TokenizerObjective(Objective):
    """Train a tokenizer with the ``loss:`` section of ``config``.

    Args:
        model: a tokenizer to train instead of building one from ``config.model``.
        perceptual_loss: the LPIPS loss module (default ``LPIPSLoss(net=loss.lpips_net)``).
        convnext_loss: the ConvNeXt-S perceptual module of ``loss.convnext_weight`` (default
            ``ConvNeXtPerceptualLoss()`` with torchvision's weights from the hub cache).
        lpips_network / fid_feature_extractor: the networks of the final LPIPS / rFID metrics
            (default: loaded from torch's hub cache when the weights are there, else skipped).
    """

    loss_name = "total"
    progress_terms = ("total", "reconstruction", "lpips", "generator_adversarial", "discriminator")
    final_outputs = (("model", "model.safetensors"), ("reconstruction grid", "reconstructions.png"))

    def __init__(self, config: TrainConfig, *, model: nn.Module | None = None, perceptual_loss: nn.Module | None = None,
                 lpips_network: nn.Module | None = None, fid_feature_extractor: nn.Module | None = None,
                 convnext_loss: nn.Module | None = None):
        self.config = config
        self.cfg = config.loss
        self.raw_model = model
        self.perceptual_loss = perceptual_loss
        self.convnext_loss = convnext_loss
        self.lpips_network = lpips_network
        self.fid_feature_extractor = fid_feature_extractor
        self.num_unreadable = 0
        self.grid_images = None
        # What the discriminator sees of every image, in both steps (no state: nothing to checkpoint).
        self.disc_augment = DiffAugment(self.cfg.disc_augment) if self.cfg.disc_augment else nn.Identity()

    # -- build ------------------------------------------------------------------------------
    def build(self, engine) -> None:
        config, cfg, args = self.config, self.cfg, engine.args
        model = self.raw_model if self.raw_model is not None else build_model(config.model)
        image_size = config.data.image_size
        if image_size % model.downsample_factor:
            raise ValueError(f"data.image_size {image_size} is not divisible by the model's downsampling factor "
                             f"{model.downsample_factor}.")
        if cfg.disc_weight > 0 and cfg.adaptive_disc_weight and not hasattr(model, "last_layer"):
            raise ValueError(f"{type(model).__name__} has no `last_layer` for the adaptive GAN weight; "
                             "set loss.adaptive_disc_weight: false.")
        if cfg.reconstruction is not None:
            # The model computes its reconstruction term itself, once: tell it which one.
            model.config.reconstruction_loss = cfg.reconstruction
        self.prepare_model(model)
        self.model_module = engine.add_optimizer("model", model, parameter_groups(model, args.weight_decay),
                                                 args.learning_rate)
        self.unwrapped = engine.accelerator.unwrap_model(self.model_module)

        self.discriminator = self.raw_discriminator = self.lecam = self.perceptual = self.convnext = None
        if cfg.disc_weight > 0:
            discriminator = build_discriminator(cfg.discriminator, model.config.num_channels, image_size,
                                                cfg.disc_layers, cfg.disc_channels, cfg.discriminator_options)
            self.discriminator = engine.add_optimizer(
                "discriminator", discriminator, discriminator_parameter_groups(model, discriminator, args.weight_decay),
                args.disc_learning_rate or args.learning_rate, start_step=cfg.disc_start, log_name="disc_lr")
            self.raw_discriminator = engine.accelerator.unwrap_model(self.discriminator)
            if cfg.lecam_weight > 0:
                self.lecam = LeCamRegularizer(cfg.lecam_decay).to(engine.device)
        if cfg.lpips_weight > 0:
            perceptual = self.perceptual_loss if self.perceptual_loss is not None else LPIPSLoss(net=cfg.lpips_net)
            if isinstance(perceptual, LPIPSLoss):
                perceptual.set_dropout(cfg.perceptual_dropout)
            elif cfg.perceptual_dropout:
                raise ValueError(f"loss.perceptual_dropout needs the perceptual loss to be an LPIPSLoss (it switches "
                                 f"LPIPS's dropout layers); got {type(perceptual).__name__}.")
            self.perceptual = perceptual.to(engine.device).train()  # with perceptual_dropout: dropout in the steps
        if cfg.convnext_weight > 0:
            convnext = self.convnext_loss if self.convnext_loss is not None else ConvNeXtPerceptualLoss()
            self.convnext = convnext.to(engine.device)
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)

    def prepare_model(self, model: nn.Module) -> None:
        """Hook before the optimizer is built (a subclass freezes parts here; frozen parameters
        stay out of the optimizer)."""

    def state_modules(self) -> dict:
        modules = {"model": self.unwrapped}
        if self.raw_discriminator is not None:
            modules["discriminator"] = self.raw_discriminator
        if self.lecam is not None:
            modules["lecam"] = self.lecam
        return modules

    def model(self) -> nn.Module:
        return self.unwrapped

    def train_batches(self, engine, start_batch: int):
        batches, self.eval_batches = build_dataloaders(self.config, engine.accelerator, start_batch=start_batch)
        return batches

    # -- step -------------------------------------------------------------------------------
    def gan_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.cfg.disc_start

    def step_losses(self, batch, step: int):
        cfg = self.cfg
        pixel_values = batch["pixel_values"]
        # Summed on the device: read at logging and checkpoint steps only (no host sync per step).
        self.num_unreadable = self.num_unreadable + batch["num_unreadable"]
        output = self.model_module(pixel_values)
        reconstruction = output.reconstruction
        terms = {"reconstruction": output.reconstruction_loss}
        nll = cfg.reconstruction_weight * output.reconstruction_loss.float()
        if self.perceptual is not None:
            terms["lpips"] = self.perceptual(reconstruction, pixel_values)
            nll = nll + cfg.lpips_weight * terms["lpips"]
        if self.convnext is not None:
            terms["convnext"] = self.convnext(reconstruction, pixel_values)
            nll = nll + cfg.convnext_weight * terms["convnext"]
        for name, value in (output.loss_terms or {}).items():
            if name != "reconstruction":
                terms[f"quantizer_{name}"] = value
        total = nll
        if output.quantizer_loss is not None and cfg.quantizer_weight:
            total = total + cfg.quantizer_weight * output.quantizer_loss.float()
        if self.gan_active(step):
            # The discriminator is frozen here and called unwrapped: the GAN term trains the generator only.
            self.raw_discriminator.requires_grad_(False)
            g_loss = generator_loss(cfg.disc_loss, self.raw_discriminator(self.disc_augment(reconstruction)).float())
            self.raw_discriminator.requires_grad_(True)
            if cfg.adaptive_disc_weight:
                weight = cfg.disc_weight * adaptive_generator_weight(nll, g_loss, self.unwrapped.last_layer)
            else:
                weight = torch.tensor(cfg.disc_weight, device=g_loss.device)
            terms["generator_adversarial"] = g_loss
            terms["adversarial_weight"] = weight
            total = total + weight * g_loss
        terms["total"] = total
        self.usage.update(output.indices, check_range=False)  # the model's own quantizer made them
        yield StepLoss("model", total, terms)

        if self.gan_active(step):
            logits_real = self.discriminator(self.disc_augment(pixel_values.detach())).float()
            logits_fake = self.discriminator(self.disc_augment(reconstruction.detach())).float()
            d_loss = cfg.discriminator_loss_weight * discriminator_loss(cfg.disc_loss, logits_real, logits_fake)
            d_terms = {"discriminator": d_loss, "logits_real": logits_real.mean().detach(),
                       "logits_fake": logits_fake.mean().detach()}
            if self.lecam is not None:
                d_terms["lecam"] = self.lecam(logits_real, logits_fake)
                d_loss = d_loss + cfg.lecam_weight * d_terms["lecam"]
            yield StepLoss("discriminator", d_loss, d_terms)

    # -- log --------------------------------------------------------------------------------
    def _unreadable_total(self, engine) -> int:
        count = torch.as_tensor(self.num_unreadable, device=engine.device)
        return int(engine.accelerator.reduce(count, reduction="sum"))

    def log_values(self, engine, step: int) -> dict:
        codebook = self.usage.compute(all_reduce=True)
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)
        logs = {"train/codebook_usage": codebook["codebook_usage"], "train/perplexity": codebook["perplexity"],
                "data/unreadable_images": self._unreadable_total(engine)}
        every = engine.args.log_images_every
        if every and (step % every == 0 or step == engine.args.max_steps - 1):
            self._log_images(engine, step)
        return logs

    def _grid_originals(self) -> torch.Tensor:
        if self.grid_images is None:
            self.grid_images = first_images(self.eval_batches, self.config.eval.num_grid_images)
        return self.grid_images

    def _log_images(self, engine, step: int) -> None:
        originals = self._grid_originals()
        if not engine.is_main_process or not engine.accelerator.trackers:
            return
        from torchvision.utils import make_grid

        with torch.no_grad():
            was_training = self.unwrapped.training
            self.unwrapped.eval()
            reconstructions = self.unwrapped(originals).reconstruction.float()
            self.unwrapped.train(was_training)
        grid = make_grid(torch.cat([originals.float(), reconstructions]).clamp(-1, 1) * 0.5 + 0.5, nrow=len(originals))
        for tracker in engine.accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_image("reconstructions (top: originals)", grid, step)

    # -- checkpoint state -------------------------------------------------------------------
    def checkpoint_state(self, engine) -> dict:
        return {"num_unreadable": self._unreadable_total(engine)}

    def load_checkpoint_state(self, state: dict, engine) -> None:
        # The saved count is the total over processes: one process carries it on.
        self.num_unreadable = int(state.get("num_unreadable", 0)) if engine.is_main_process else 0

    # -- finish -----------------------------------------------------------------------------
    def _final_metric_networks(self, device) -> tuple:
        """(metric names, LPIPS network, FID extractor, skipped {name: reason})."""
        metrics, skipped = ["usage", "psnr", "ssim"], {}
        lpips_network, extractor = self.lpips_network, self.fid_feature_extractor
        if lpips_network is None and self.config.data.image_size >= 31:
            try:
                lpips_network = load_lpips_network()
            except MissingWeightsError as error:
                skipped["lpips"] = str(error)
        elif lpips_network is None:
            skipped["lpips"] = f"images of {self.config.data.image_size}px are smaller than LPIPS's 31px minimum"
        if extractor is None:
            try:
                extractor = load_fid_inception()
            except MissingWeightsError as error:
                skipped["rfid"] = str(error)
        if lpips_network is not None:
            metrics.append("lpips")
            lpips_network = lpips_network.to(device)
        if extractor is not None:
            metrics.append("rfid")
            extractor = extractor.to(device)
        return metrics, lpips_network, extractor, skipped

    def finish(self, engine, save_dir) -> dict:
        data = self.config.data
        metric_names, lpips_network, extractor, skipped = self._final_metric_networks(engine.device)
        if engine.is_main_process:
            for name, reason in skipped.items():
                print(f"Final evaluation: skipping {name}: {reason}", file=sys.stderr)
        eval_source = data.eval_data_dir or data.train_data_dir or data.dataset
        description = f"{eval_source} evaluation images, ADM center crop {data.image_size}px"
        metrics = evaluate_reconstruction(
            self.unwrapped, self.eval_batches, progress=engine.accelerator.is_local_main_process, metrics=metric_names,
            lpips_network=lpips_network, fid_feature_extractor=extractor, data_description=description)
        if skipped:
            metrics["skipped_metrics"] = skipped
        metrics["unreadable_images_skipped"] = self._unreadable_total(engine)
        if engine.is_main_process:
            self.unwrapped.save_pretrained(save_dir)
            VQImageProcessor(size=data.image_size, num_channels=self.unwrapped.config.num_channels).save_pretrained(save_dir)
            originals = self._grid_originals()
            with torch.no_grad():
                self.unwrapped.eval()
                reconstructions = self.unwrapped(originals).reconstruction
            save_reconstruction_grid(originals, reconstructions, save_dir / "reconstructions.png")
        return metrics
