"""Training: one Accelerate engine (checkpoints, resume, NaN stop, EMA, logging) that runs an
objective: the tokenizer or distillation objective (``hf-vq train``) or the next-token objective (``hf-vq train-ar``)."""

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
from .state import CheckpointFormatError
from .tokenizer_objective import TokenizerObjective, build_model
from .trainer import run_training, train, train_from_config

__all__ = [
    "AR_TRAINING_DEFAULTS",
    "ARDataConfig",
    "ARTrainConfig",
    "CheckpointFormatError",
    "CheckpointManager",
    "ConfigError",
    "DEMO_CONFIG",
    "DataConfig",
    "DistillationObjective",
    "EvalArguments",
    "LossConfig",
    "NextTokenObjective",
    "NonFiniteLossError",
    "Objective",
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
    "build_token_batches",
    "collate_tokens",
    "load_ar_config",
    "load_config",
    "run_training",
    "train",
    "train_ar",
    "train_from_config",
]
