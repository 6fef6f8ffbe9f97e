"""Training: configs, crash-safe checkpoints and the Accelerate loop."""

from .checkpointing import CheckpointManager
from .config import (
    DEMO_CONFIG,
    DataConfig,
    LossConfig,
    TrainConfig,
    TrainingArguments,
    apply_overrides,
    load_config,
)
from .dataloaders import build_dataloaders
from .trainer import (
    NonFiniteLossError,
    TrainResult,
    build_model,
    run_training,
    train,
    train_from_config,
)

__all__ = [
    "DEMO_CONFIG",
    "CheckpointManager",
    "DataConfig",
    "LossConfig",
    "NonFiniteLossError",
    "TrainConfig",
    "TrainResult",
    "TrainingArguments",
    "apply_overrides",
    "build_dataloaders",
    "build_model",
    "load_config",
    "run_training",
    "train",
    "train_from_config",
]
