"""Tokenizer training: ``hf-vq train`` = the engine running the tokenizer objective, or, for semantic
tokenizers, their stage-1 objective (``STAGE1_OBJECTIVES``: distillation for VQ-KD, online clustering for Cluster)
or the stage-2 pixel-decoder objective (``model.stage1_from``): :func:`tokenizer_objective_class` decides.

``output_dir`` gets the model and its ``VQImageProcessor`` (``save_pretrained``),
``reconstructions.png``, ``metrics.json``, ``train_history.json``, ``train_config.json`` and
``logs/`` (TensorBoard); ``checkpoints/`` with ``training.checkpoint_every``.
"""

from pathlib import Path

from torch import nn

from .config import TrainConfig, load_config
from .distillation_objective import DISTILLATION_MODEL_TYPES, DistillationObjective
from .engine import TrainingEngine, TrainResult
from .online_clustering_objective import OnlineClusteringObjective
from .pixel_decoder_objective import PixelDecoderObjective
from .titok_objectives import DecoderFinetuneObjective, ProxyCodeObjective
from .tokenizer_objective import TokenizerObjective

# loss.objective -> the objective `hf-vq train` runs for a pixel tokenizer.
OBJECTIVES = {"reconstruction": TokenizerObjective, "proxy_codes": ProxyCodeObjective,
              "decoder_finetune": DecoderFinetuneObjective}

# Semantic tokenizers whose stage 1 is not a pixel reconstruction: model_type -> its objective.
STAGE1_OBJECTIVES = {"vq_cluster": OnlineClusteringObjective,
                     **{model_type: DistillationObjective for model_type in DISTILLATION_MODEL_TYPES}}


def tokenizer_objective_class(config: TrainConfig, model: nn.Module | None = None) -> type:
    """Which objective ``hf-vq train`` runs: stage 2 of a semantic tokenizer (``model.stage1_from``), its
    stage 1 (``STAGE1_OBJECTIVES``; a model without pixel decoder), or the objective ``loss.objective`` names
    (``OBJECTIVES``: reconstruction, TiTok's proxy codes or decoder fine-tuning)."""
    section = config.model
    if "stage1_from" in section:
        return PixelDecoderObjective
    if model is not None:
        model_type, has_decoder = model.config.model_type, getattr(model, "pixel_decoder", None) is not None
    elif "pretrained" in section:
        from transformers import AutoConfig

        saved = AutoConfig.from_pretrained(section["pretrained"])
        model_type, has_decoder = saved.model_type, getattr(saved, "pixel_decoder", None) is not None
    else:
        model_type, has_decoder = section.get("model_type"), section.get("pixel_decoder") is not None
        if model_type in STAGE1_OBJECTIVES and has_decoder:
            raise ValueError(f"A new {model_type} model learns its codes first (stage 1) and its pixel decoder in "
                             "stage 2: drop model.pixel_decoder, or set model.stage1_from to a trained stage-1 folder.")
    if model_type in STAGE1_OBJECTIVES and not has_decoder:
        return STAGE1_OBJECTIVES[model_type]
    return OBJECTIVES[config.loss.objective]


def model_type_of(config: TrainConfig, model: nn.Module | None = None) -> str | None:
    """The ``model_type`` a run trains: the given model's, ``model.model_type``, or the ``pretrained`` checkpoint's."""
    if model is not None:
        return getattr(getattr(model, "config", None), "model_type", None)
    if config.model.get("model_type"):
        return config.model["model_type"]
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(config.model["pretrained"]).model_type


def run_training(config: TrainConfig, *, model: nn.Module | None = None, perceptual_loss: nn.Module | None = None,
                 lpips_network: nn.Module | None = None, fid_feature_extractor: nn.Module | None = None,
                 convnext_loss: nn.Module | None = None) -> TrainResult:
    """Train, evaluate on held-out images, save to ``config.output_dir``.

    Args:
        model: a tokenizer to train instead of building one from ``config.model``.
        perceptual_loss: the LPIPS module to use (e.g. ``LPIPSLoss(network=...)`` with your own
            weights); by default ``LPIPSLoss(net=loss.lpips_net)`` with the pretrained trunk.
        lpips_network / fid_feature_extractor: networks for the final LPIPS / rFID (default: read
            from torch's hub cache; a metric whose weights are missing is skipped with a message).
        convnext_loss: the ConvNeXt-S perceptual module of ``loss.convnext_weight`` (default: torchvision's
            ConvNeXt-S with weights from the hub cache).
    """
    objective_class = tokenizer_objective_class(config, model)
    if objective_class is DistillationObjective:
        objective = DistillationObjective(config, model=model)
    else:
        objective = objective_class(config, model=model, perceptual_loss=perceptual_loss, lpips_network=lpips_network,
                                    fid_feature_extractor=fid_feature_extractor, convnext_loss=convnext_loss)
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
