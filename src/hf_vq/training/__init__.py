"""Training: configs and the Accelerate loop."""

from .config import DEMO_CONFIG, TrainConfig, apply_overrides, load_config
from .trainer import build_model, train, train_from_config

__all__ = ["DEMO_CONFIG", "TrainConfig", "apply_overrides", "build_model", "load_config", "train", "train_from_config"]
