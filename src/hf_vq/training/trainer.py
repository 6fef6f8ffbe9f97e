"""Tokenizer training: ``hf-vq train`` = the engine running the tokenizer objective, or, for the
models that distil a teacher (``DISTILLATION_MODEL_TYPES``: VQ-KD), the distillation objective.

``output_dir`` gets the model and its ``VQImageProcessor`` (``save_pretrained``),
``reconstructions.png``, ``metrics.json``, ``train_history.json``, ``train_config.json`` and
``logs/`` (TensorBoard); ``checkpoints/`` with ``training.checkpoint_every``.
"""

from pathlib import Path

from torch import nn

from .config import TrainConfig, load_config
from .distillation_objective import DISTILLATION_MODEL_TYPES, DistillationObjective
from .engine import TrainingEngine, TrainResult
from .tokenizer_objective import TokenizerObjective


def model_type_of(config: TrainConfig, model: nn.Module | None = None) -> str | None:
    """The ``model_type`` a run trains: the given model's, ``model.model_type``, or the ``pretrained`` checkpoint's."""
    if model is not None:
        return getattr(getattr(model, "config", None), "model_type", None)
    if config.model.get("model_type"):
        return config.model["model_type"]
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(config.model["pretrained"]).model_type


def run_training(config: TrainConfig, *, model: nn.Module | None = None, perceptual_loss: nn.Module | None = None,
                 lpips_network: nn.Module | None = None, fid_feature_extractor: nn.Module | None = None) -> TrainResult:
    """Train, evaluate on held-out images, save to ``config.output_dir``.

    Args:
        model: a tokenizer to train instead of building one from ``config.model``.
        perceptual_loss: the LPIPS module to use (e.g. ``LPIPSLoss(network=...)`` with your own
            weights); by default ``LPIPSLoss(net=loss.lpips_net)`` with the pretrained trunk.
        lpips_network / fid_feature_extractor: networks for the final LPIPS / rFID (default: read
            from torch's hub cache; a metric whose weights are missing is skipped with a message).
    """
    if model_type_of(config, model) in DISTILLATION_MODEL_TYPES:
        objective = DistillationObjective(config, model=model)
    else:
        objective = TokenizerObjective(config, model=model, perceptual_loss=perceptual_loss, lpips_network=lpips_network,
                                       fid_feature_extractor=fid_feature_extractor)
    engine = TrainingEngine(objective, config.training, output_dir=config.output_dir, seed=config.seed,
                            config=config.to_dict())
    return engine.run()


def train(config: TrainConfig, *, model: nn.Module | None = None, perceptual_loss: nn.Module | None = None) -> Path:
    """Train, evaluate on held-out images, save to ``config.output_dir``; returns that directory.

    See :func:`run_training` for the arguments and for the trained model and history in memory.
    """
    return run_training(config, model=model, perceptual_loss=perceptual_loss).output_dir


def train_from_config(path=None, overrides=()) -> Path:
    return train(load_config(path, overrides))
