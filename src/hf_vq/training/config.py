"""Training configuration: YAML files with sections, validated into dataclasses.

A config has the sections ``model`` (``model_type`` + the tokenizer config's fields),
``data``, ``training`` and ``eval``, plus ``output_dir`` and ``seed``. Command-line
overrides use dotted keys: ``--training.max_steps 100``. Unknown keys are errors.
"""

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

import yaml

# The embedded demo run: what `hf-vq train` does with no arguments (configs/demo/vqvae.yaml mirrors it).
DEMO_CONFIG = {
    "output_dir": "outputs/demo-vqvae",
    "seed": 0,
    "model": {
        "model_type": "vqvae",
        "image_size": 32,
        "hidden_dim": 64,
        "num_res_blocks": 2,
        "codebook_size": 256,
        "codebook_dim": 16,
        "l2_norm": True,
    },
    "data": {"dataset": "embedded", "image_size": 32},
    "training": {"batch_size": 32, "max_steps": 1200, "learning_rate": 4e-4, "log_every": 50},
    "eval": {"batch_size": 64, "num_grid_images": 16},
}


@dataclass
class DataConfig:
    dataset: str = "embedded"
    image_size: int = 64
    num_workers: int = 0
    min_crop_scale: float = 0.8


@dataclass
class TrainingArguments:
    batch_size: int = 32
    max_steps: int = 1000
    learning_rate: float = 4e-4
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    max_grad_norm: Optional[float] = None
    log_every: int = 50
    mixed_precision: str = "no"


@dataclass
class EvalArguments:
    batch_size: int = 64
    num_grid_images: int = 16


@dataclass
class TrainConfig:
    model: dict
    output_dir: str = "outputs/run"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    training: TrainingArguments = field(default_factory=TrainingArguments)
    eval: EvalArguments = field(default_factory=EvalArguments)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        raw = copy.deepcopy(raw)
        sections = {"data": DataConfig, "training": TrainingArguments, "eval": EvalArguments}
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"Unknown config keys {sorted(unknown)}; known top-level keys: {sorted(known)}.")
        if "model" not in raw or "model_type" not in raw["model"]:
            raise ValueError("The config needs a `model:` section with a `model_type` (e.g. vqvae).")
        kwargs = {"model": raw["model"]}
        for key in ("output_dir", "seed"):
            if key in raw:
                kwargs[key] = raw[key]
        for name, section_class in sections.items():
            values = raw.get(name) or {}
            allowed = {f.name for f in fields(section_class)}
            bad = set(values) - allowed
            if bad:
                raise ValueError(f"Unknown keys {sorted(bad)} in `{name}:`; allowed: {sorted(allowed)}.")
            kwargs[name] = section_class(**values)
        return cls(**kwargs)

    def to_dict(self) -> dict:
        return asdict(self)


def _parse_value(text: str):
    return yaml.safe_load(text)


def apply_overrides(raw: dict, overrides: list) -> dict:
    """Apply ``["--training.max_steps", "100", ...]`` (or ``key=value``) to a raw config dict."""
    raw = copy.deepcopy(raw)
    items = []
    i = 0
    while i < len(overrides):
        token = overrides[i]
        if not token.startswith("--"):
            raise ValueError(f"Overrides look like --section.key value; got {token!r}.")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(overrides):
                raise ValueError(f"Override {token} has no value.")
            key, value = token[2:], overrides[i + 1]
            i += 2
        items.append((key, value))
    for key, value in items:
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _parse_value(value)
    return raw


def load_config(path=None, overrides=()) -> TrainConfig:
    """Read a YAML config (or the demo config when ``path`` is None) and apply overrides."""
    if path is None:
        raw = copy.deepcopy(DEMO_CONFIG)
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {path} does not exist; see configs/ for examples.")
        raw = yaml.safe_load(path.read_text()) or {}
    return TrainConfig.from_dict(apply_overrides(raw, list(overrides)))
