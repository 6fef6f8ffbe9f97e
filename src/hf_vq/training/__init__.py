"""Training: one Accelerate engine (checkpoints, resume, NaN stop, EMA, logging) that runs an
objective: the tokenizer objective (``hf-vq train``; TiTok's proxy-code and decoder fine-tuning stages through
``loss.objective``; semantic tokenizers: their stage-1 objective, distillation for VQ-KD or online clustering for
Cluster, then the pixel decoder behind the frozen stage 1) or the next-token objective (``hf-vq train-ar``)."""

from .checkpointing import CheckpointManager
from .config import (
    AR_TRAINING_DEFAULTS,
    DEMO_CONFIG,
    ARDataConfig,
    ARTrainConfig,
    ConfigError,
    DataConfig,
    EvalArguments,
    LossConfig,
    TrainConfig,
    TrainingArguments,
    apply_overrides,
    load_ar_config,
    load_config,
)
from .dataloaders import build_dataloaders, build_token_batches, collate_tokens
from .distillation_objective import DistillationObjective
from .engine import NonFiniteLossError, Objective, StepLoss, TrainingEngine, TrainResult
from .next_token_objective import NextTokenObjective, build_gpt, train_ar
from .online_clustering_objective import OnlineClusteringObjective
from .pixel_decoder_objective import PixelDecoderObjective, build_stage2_model
from .state import CheckpointFormatError
from .titok_objectives import DecoderFinetuneObjective, ProxyCodeObjective
from .tokenizer_objective import TokenizerObjective, build_model
from .trainer import STAGE1_OBJECTIVES, run_training, tokenizer_objective_class, train, train_from_config

__all__ = [
    "AR_TRAINING_DEFAULTS",
    "ARDataConfig",
    "ARTrainConfig",
    "CheckpointFormatError",
    "CheckpointManager",
    "ConfigError",
    "DEMO_CONFIG",
    "DataConfig",
    "DecoderFinetuneObjective",
    "DistillationObjective",
    "EvalArguments",
    "LossConfig",
    "NextTokenObjective",
    "NonFiniteLossError",
    "Objective",
    "OnlineClusteringObjective",
    "PixelDecoderObjective",
    "ProxyCodeObjective",
    "STAGE1_OBJECTIVES",
    "StepLoss",
    "TokenizerObjective",
    "TrainConfig",
    "TrainResult",
    "TrainingArguments",
    "TrainingEngine",
    "apply_overrides",
    "build_dataloaders",
    "build_gpt",
    "build_model",
    "build_stage2_model",
    "build_token_batches",
    "collate_tokens",
    "load_ar_config",
    "load_config",
    "run_training",
    "tokenizer_objective_class",
    "train",
    "train_ar",
    "train_from_config",
]
