"""Training configuration: YAML files with sections, validated into dataclasses.

A config has the sections ``model`` (``model_type`` + the tokenizer config's fields),
``data``, ``loss``, ``training`` and ``eval``, plus ``output_dir`` and ``seed``. Command-line
overrides use dotted keys: ``--training.max_steps 100``. Unknown keys are errors.
"""

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..data.transforms import TRAIN_CROPS

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
        "l2_norm": True,  # with EMA + k-means init: 27% usage vs 12% without (embedded demo)
        "use_ema": True,
        "kmeans_init": True,
    },
    "data": {"dataset": "embedded", "image_size": 32},
    "training": {"batch_size": 32, "max_steps": 1200, "learning_rate": 4e-4, "log_every": 50},
    "eval": {"batch_size": 64, "num_grid_images": 16},
}


@dataclass
class DataConfig:
    """Where images come from and how they are cropped.

    dataset: "embedded" (scikit-image crops, no download), "imagefolder" (``train_data_dir``)
        or a Hub dataset id such as ``ILSVRC/imagenet-1k`` (``datasets.load_dataset``);
        ``dataset_name`` is accepted as another spelling of this key.
    dataset_config: the Hub dataset's configuration name, if it has several.
    train_data_dir / eval_data_dir: image folders (``eval_data_dir`` optional).
    train_split / eval_split: split names; without an eval split, ``eval_holdout`` training
        images are held out for evaluation.
    streaming: stream a Hub dataset (sharded across processes by ``split_dataset_by_node``).
    train_crop: "random_square" (a random 80-100% square crop, resized) or "adm_random" (ADM's
        random_crop_arr, the ImageNet 64x64 benchmark's: short side resized to a random size in
        [64, 80] at 64 px, random crop); both then flip. ``min_crop_scale`` sets the range of both.
    """

    dataset: str = "embedded"
    dataset_config: str | None = None
    train_data_dir: str | None = None
    eval_data_dir: str | None = None
    train_split: str = "train"
    eval_split: str = "validation"
    image_column: str = "image"
    streaming: bool = False
    eval_holdout: int = 256
    max_eval_images: int | None = None
    image_size: int = 64
    num_workers: int = 0
    min_crop_scale: float = 0.8
    train_crop: str = "random_square"

    def __post_init__(self):
        if self.train_crop not in TRAIN_CROPS:
            raise ValueError(f"data.train_crop must be one of {TRAIN_CROPS}; got {self.train_crop!r}.")


@dataclass
class LossConfig:
    """The generator's loss: reconstruction + lpips_weight * LPIPS + quantizer terms + GAN.

    reconstruction: "l1" or "mse"; None uses the model config's ``reconstruction_loss``.
    disc_weight: GAN weight (0 = no discriminator). With ``adaptive_disc_weight`` it multiplies
        taming's adaptive weight; otherwise it is the weight itself.
    disc_start: the step at which the discriminator and the GAN term start.
    discriminator: "patchgan" (``disc_layers``, BatchNorm) or "stylegan".
    disc_loss: "hinge" or "non_saturating".
    lecam_weight: LeCam regularisation of the discriminator (0 = off; TiTok uses 0.001).
    """

    reconstruction: str | None = None
    reconstruction_weight: float = 1.0
    lpips_weight: float = 0.0
    lpips_net: str = "vgg"
    disc_weight: float = 0.0
    disc_start: int = 0
    adaptive_disc_weight: bool = True
    disc_loss: str = "hinge"
    discriminator: str = "patchgan"
    disc_layers: int = 3
    disc_channels: int = 64
    lecam_weight: float = 0.0
    lecam_decay: float = 0.999

    def __post_init__(self):
        if self.reconstruction not in (None, "l1", "mse"):
            raise ValueError(f"loss.reconstruction must be l1, mse or null (the model's); got {self.reconstruction!r}.")
        if self.disc_loss not in ("hinge", "non_saturating"):
            raise ValueError(f"loss.disc_loss must be hinge or non_saturating; got {self.disc_loss!r}.")
        if self.discriminator not in ("patchgan", "stylegan"):
            raise ValueError(f"loss.discriminator must be patchgan or stylegan; got {self.discriminator!r}.")


@dataclass
class TrainingArguments:
    """Optimisation, schedule, precision, checkpoints and logging.

    batch_size is per process and per micro-step; the effective batch is
    batch_size * gradient_accumulation_steps * number of processes.
    lr_scheduler: a ``transformers.get_scheduler`` name (constant, constant_with_warmup,
        linear, cosine, ...), used for the generator and the discriminator.
    ema_decay: keep an EMA of the generator's weights (diffusers EMAModel); the saved model
        and the final evaluation use the EMA weights. None = off.
    checkpoint_every: save a resumable checkpoint (Accelerate ``save_state``) every N steps
        into ``output_dir/checkpoints``; 0 = never. keep_checkpoints: how many to keep.
    resume_from: "latest" or a checkpoint directory.
    debug_kill_at_step: test hook: the process SIGKILLs itself after this step (simulated crash).
    """

    batch_size: int = 32
    max_steps: int = 1000
    learning_rate: float = 4e-4
    disc_learning_rate: float | None = None
    optimizer: str = "adam"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    lr_scheduler: str = "constant"
    warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None
    mixed_precision: str = "no"
    ema_decay: float | None = None
    log_every: int = 50
    log_images_every: int = 0
    report_to: str | None = "tensorboard"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume_from: str | None = None
    debug_kill_at_step: int | None = None

    def __post_init__(self):
        if self.optimizer not in ("adam", "adamw"):
            raise ValueError(f"training.optimizer must be adam or adamw; got {self.optimizer!r}.")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"training.mixed_precision must be no, fp16 or bf16; got {self.mixed_precision!r}.")
        if self.gradient_accumulation_steps < 1:
            raise ValueError("training.gradient_accumulation_steps must be >= 1.")
        if self.keep_checkpoints < 1:
            raise ValueError("training.keep_checkpoints must be >= 1 (the latest checkpoint is always kept).")


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
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainingArguments = field(default_factory=TrainingArguments)
    eval: EvalArguments = field(default_factory=EvalArguments)

    @classmethod
    def from_dict(cls, raw: dict) -> "TrainConfig":
        raw = copy.deepcopy(raw)
        sections = {"data": DataConfig, "loss": LossConfig, "training": TrainingArguments, "eval": EvalArguments}
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"Unknown config keys {sorted(unknown)}; known top-level keys: {sorted(known)}.")
        model = raw.get("model") or {}
        if "model_type" not in model and "pretrained" not in model:
            raise ValueError(
                "The config needs a `model:` section with a `model_type` (e.g. vqvae) or `pretrained` (a saved model)."
            )
        data = raw.get("data") or {}
        if "dataset_name" in data:  # the spelling of data.dataset
            if "dataset" in data:
                raise ValueError("data.dataset_name and data.dataset name the same thing; keep only `dataset`.")
            data["dataset"] = data.pop("dataset_name")
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
