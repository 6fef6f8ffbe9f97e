"""The distillation objective: VQ-KD stage 1 (BEiT v2's ``engine_for_vqkd.py``) on the engine.

Per micro-batch: the frozen teacher the model config names (``teacher_name_or_path``, loaded
through transformers, never trained, never saved with the tokenizer) gives the patch features
of the batch; the tokenizer predicts them from its codes; loss = ``1 - cos(prediction, teacher)``
+ the commitment term. The codebook is not in the optimizer: k-means initialises it on the
first batch and the normalised EMA moves it inside the forward pass.

Optimiser as BEiT v2's ``optim_factory``: no weight decay on biases, norms, class tokens and
position embeddings (``training.weight_decay`` on the other matrices).

At the end: on the held-out images, codebook usage and perplexity of the codes and the mean
cosine similarity of the prediction to the teacher; the model and its ``VQImageProcessor``.
(Stage 1 decodes teacher features, not pixels: no reconstruction metrics.)
"""

import torch
from torch import nn

from ..processing import VQImageProcessor
from ..quantizers import CodebookUsage
from ..utils.distributed import all_reduce_sum
from .config import TrainConfig
from .dataloaders import build_dataloaders
from .engine import Objective, StepLoss
from .tokenizer_objective import build_model

# Model types trained by this objective (``hf-vq train`` dispatches on ``model.model_type``).
DISTILLATION_MODEL_TYPES = ("vqkd",)
# Parameters BEiT v2 excludes from weight decay besides biases and 1-D weights.
NO_WEIGHT_DECAY_SUFFIXES = ("class_token", "position_embedding")


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list:
    """Two param groups: matrices with ``weight_decay``; biases, norms, class tokens and positions without."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        skip = parameter.ndim <= 1 or name.endswith(".bias") or name.endswith(NO_WEIGHT_DECAY_SUFFIXES)
        (no_decay if skip else decay).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class DistillationObjective(Objective):
    """Train a VQ-KD tokenizer to predict a frozen teacher's patch features.

    Args:
        model: a tokenizer to train instead of building one from ``config.model``.
        teacher: a ``FrozenTeacher`` to use instead of loading the one the model config names.
    """

    loss_name = "total"
    progress_terms = ("total", "cosine", "commitment")
    final_outputs = (("model", "model.safetensors"),)

    def __init__(self, config: TrainConfig, *, model: nn.Module | None = None, teacher: nn.Module | None = None):
        self.config = config
        self.raw_model = model
        self.raw_teacher = teacher

    # -- build ------------------------------------------------------------------------------
    def build(self, engine) -> None:
        config, args, loss = self.config, engine.args, self.config.loss
        unused = [name for name in ("lpips_weight", "disc_weight") if getattr(loss, name)]
        if unused:
            raise ValueError(f"VQ-KD distillation has no LPIPS or GAN term; set loss.{' and loss.'.join(unused)} to 0 "
                             "(they belong to the pixel decoder of stage 2).")
        model = self.raw_model if self.raw_model is not None else build_model(config.model)
        if not hasattr(model, "load_teacher"):
            raise ValueError(f"{type(model).__name__} has no teacher to distil; the distillation objective trains "
                             f"{', '.join(DISTILLATION_MODEL_TYPES)} models.")
        if config.data.image_size != model.config.image_size:
            raise ValueError(f"data.image_size {config.data.image_size} differs from the model's image_size "
                             f"{model.config.image_size} (its learned positions fix it): make them equal.")
        teacher = self.raw_teacher if self.raw_teacher is not None else model.load_teacher()
        model.check_teacher(teacher)
        # Kept on the objective, outside the model: never optimised, never in a checkpoint.
        self.teacher = teacher.to(engine.device)
        groups = weight_decay_groups(model, args.weight_decay)
        self.model_module = engine.add_optimizer("model", model, groups, args.learning_rate)
        self.unwrapped = engine.accelerator.unwrap_model(self.model_module)
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)

    def state_modules(self) -> dict:
        return {"model": self.unwrapped}

    def model(self) -> nn.Module:
        return self.unwrapped

    def train_batches(self, engine, start_batch: int):
        batches, self.eval_batches = build_dataloaders(self.config, engine.accelerator, start_batch=start_batch)
        return batches

    # -- step -------------------------------------------------------------------------------
    def step_losses(self, batch, step: int):
        pixel_values = batch["pixel_values"]
        target = self.teacher(pixel_values)
        output = self.model_module(pixel_values, teacher_features=target)
        terms = {"cosine": output.reconstruction_loss}
        for name, value in (output.loss_terms or {}).items():
            if name != "reconstruction":
                terms[name] = value
        terms["total"] = output.loss
        self.usage.update(output.indices, check_range=False)  # the model's own quantizer made them
        yield StepLoss("model", output.loss, terms)

    def log_values(self, engine, step: int) -> dict:
        codebook = self.usage.compute(all_reduce=True)
        self.usage = CodebookUsage(self.unwrapped.config.codebook_size)
        return {"train/codebook_usage": codebook["codebook_usage"], "train/perplexity": codebook["perplexity"]}

    # -- finish -----------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, engine) -> dict:
        """Codebook usage / perplexity and mean cosine similarity to the teacher on the held-out images."""
        model = self.unwrapped
        was_training = model.training
        model.eval()
        usage = CodebookUsage(model.config.codebook_size, device=engine.device)
        similarity = torch.zeros(2, dtype=torch.float64, device=engine.device)  # (sum, count) over tokens
        for pixel_values in self.eval_batches:
            encoded = model.encode(pixel_values)
            prediction = model.predict_features(encoded.quantized).float()
            target = self.teacher(pixel_values).float()
            cosine = nn.functional.cosine_similarity(prediction, target, dim=-1)
            similarity += torch.stack([cosine.sum().double(), torch.tensor(cosine.numel(), dtype=torch.float64,
                                                                            device=cosine.device)])
            usage.update(encoded.indices)
        model.train(was_training)
        similarity = all_reduce_sum(similarity)
        codebook = usage.compute(all_reduce=True)
        return {"codebook_usage": codebook["codebook_usage"], "perplexity": codebook["perplexity"],
                "num_tokens": codebook["num_tokens"],
                "teacher_cosine_similarity": float(similarity[0] / similarity[1].clamp_min(1)),
                "teacher": self.teacher.name_or_path}

    def finish(self, engine, save_dir) -> dict:
        metrics = self.evaluate(engine)
        if engine.is_main_process:
            self.unwrapped.save_pretrained(save_dir)
            VQImageProcessor(size=self.config.data.image_size,
                             num_channels=self.unwrapped.config.num_channels).save_pretrained(save_dir)
        return metrics


__all__ = ["DISTILLATION_MODEL_TYPES", "DistillationObjective", "weight_decay_groups"]
