"""Training configuration: YAML files with sections, typed and validated into dataclasses at load.

A tokenizer config (``hf-vq train``) has the sections ``model`` (``model_type`` + the tokenizer
config's fields, or ``pretrained``), ``data``, ``loss``, ``training`` and ``eval``, plus
``output_dir`` and ``seed``. A GPT config (``hf-vq train-ar``, :class:`ARTrainConfig`) has
``model`` (``preset`` + ``LlamaGenGPTConfig`` fields), ``data`` (the token dataset and its
tokenizer) and ``training``. Command-line overrides use dotted keys: ``--training.max_steps 100``.

Every value is checked against its field's type when the config is loaded, before anything
runs: ``1e-4`` is a float (PyYAML alone would read it as a string), ``max_steps: abc`` or
``max_steps: 0`` is an error naming the key and what it takes, and unknown keys are errors.
"""

import copy
import math
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

from ..data.transforms import TRAIN_CROPS
from ..losses.diff_augment import check_diff_augment_policy
from ..modules.discriminators import check_discriminator_options

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


class ConfigError(ValueError):
    """A config value has the wrong type or range, or a key is unknown."""


# -- YAML that reads 1e-4 as a float ------------------------------------------------------------

class _ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's float syntax: ``1e-4`` and ``5E3`` are floats
    (YAML 1.1, which PyYAML implements, needs a dot: ``1.0e-4``)."""


_FLOAT_PATTERN = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_ConfigLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_PATTERN, list("-+0123456789."))


def parse_yaml(text: str):
    """YAML text -> Python values, with ``1e-4`` read as a float."""
    return yaml.load(text, Loader=_ConfigLoader)


# -- typed fields -------------------------------------------------------------------------------

def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple):
        return "a list"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string", dict: "a mapping"}.get(
        annotation, getattr(annotation, "__name__", str(annotation)))


def coerce_value(value, annotation, key: str):
    """``value`` checked against ``annotation``: ints become floats for float fields, numeric
    strings ("1e-4") become numbers; anything else that does not fit raises a ConfigError
    naming ``key`` and the expected type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return coerce_value(value, option, key)
            except ConfigError:
                continue
    elif origin is typing.Literal:
        if value in args:
            return value
    elif annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+", value.strip()):
            return int(value)
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple) or annotation in (list, tuple):
        if isinstance(value, (list, tuple)):
            item_type = args[0] if args else typing.Any
            return [coerce_value(item, item_type, f"{key}[{i}]") for i, item in enumerate(value)]
    elif annotation is dict or origin is dict:
        if isinstance(value, dict):
            return value
    else:
        return value
    raise ConfigError(f"{key} must be {_type_name(annotation)}; got {value!r} ({type(value).__name__}).")


def coerce_fields(values: dict, type_hints: dict, section: str) -> dict:
    """Check every key of ``values`` against ``type_hints``; unknown keys are errors."""
    unknown = sorted(set(values) - set(type_hints))
    if unknown:
        raise ConfigError(f"Unknown keys {unknown} in `{section}:`; allowed: {sorted(type_hints)}.")
    return {key: coerce_value(value, type_hints[key], f"{section}.{key}") for key, value in values.items()}


def _check(condition: bool, key: str, requirement: str, value) -> None:
    if not condition:
        raise ConfigError(f"{key} must be {requirement}; got {value!r}.")


class _Section:
    """A config section: every field is coerced to its annotated type, then ``check`` validates ranges."""

    section = ""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            setattr(self, f.name, coerce_value(getattr(self, f.name), hints[f.name], f"{self.section}.{f.name}"))
        self.check()

    def check(self) -> None:
        pass

    def _positive(self, *names: str, allow_zero: bool = False) -> None:
        for name in names:
            value = getattr(self, name)
            if value is None:
                continue
            ok = value >= 0 if allow_zero else value > 0
            if isinstance(value, float):
                ok = ok and math.isfinite(value)
            _check(ok, f"{self.section}.{name}", ">= 0" if allow_zero else "> 0", value)

    @classmethod
    def from_values(cls, values: dict | None):
        values = dict(values or {})
        coerce_fields(values, typing.get_type_hints(cls), cls.section)  # unknown keys and types, with the key
        return cls(**values)


@dataclass
class DataConfig(_Section):
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

    section = "data"
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

    def check(self):
        self._positive("eval_holdout", "max_eval_images", "image_size")
        self._positive("num_workers", allow_zero=True)
        _check(0 < self.min_crop_scale <= 1, "data.min_crop_scale", "in (0, 1]", self.min_crop_scale)


@dataclass
class LossConfig(_Section):
    """The generator's loss: reconstruction + lpips_weight * LPIPS + quantizer terms + GAN.

    reconstruction: "l1" or "mse"; None uses the model config's ``reconstruction_loss``
        (otherwise it sets it: the model computes the term, once).
    perceptual_dropout: LPIPS's dropout layers active in the training steps (false: LPIPS in eval mode).
        taming, LlamaGen's ``vq_train.py``, VQGAN-LC and the IU tokenizers train that way (their loss
        module is in train mode), so their configs set it; TiTok's official loss keeps LPIPS in eval mode.
    disc_weight: GAN weight (0 = no discriminator). With ``adaptive_disc_weight`` it multiplies
        taming's adaptive weight; otherwise it is the weight itself.
    disc_start: the step at which the discriminator and the GAN term start.
    discriminator: "patchgan" (``disc_layers``, BatchNorm), "stylegan" or "maskbit" (MaskBit's and
        TiTok's discriminator; ``discriminator_options`` holds its constructor options:
        hidden_channels, num_stages, blur_resample, blur_kernel_size, zero_one_pixels).
    discriminator_options: options of the maskbit discriminator (empty: the official defaults);
        unknown keys, or options for another discriminator, are errors.
    disc_loss: "hinge" or "non_saturating".
    discriminator_loss_weight: multiplies the discriminator's own loss (1; LlamaGen's ``VQLoss`` scales it
        by its ``disc_weight``, 0.5 in ``vq_train.py``, which matters under gradient clipping).
    lecam_weight: LeCam regularisation of the discriminator (0 = off; TiTok uses 0.001).
    disc_augment: DiffAugment policies applied to every image the discriminator sees, real or reconstructed,
        in both steps (``hf_vq.losses.DiffAugment``: any of "color", "translation", "cutout"; empty = none,
        as in every official recipe). For small datasets, where the discriminator memorises the images.
    objective: what the run minimises (``hf-vq train`` picks the objective from it):
        "reconstruction" (default: the terms above), "proxy_codes" (TiTok stage 1: cross-entropy
        of the decoder's logits against the codes a frozen ``proxy_tokenizer`` gives each image cell),
        "decoder_finetune" (TiTok stage 2: encoder and quantizer of ``model.pretrained`` frozen,
        the decoder trained with the terms above).
    proxy_tokenizer: the frozen tokenizer (folder or Hub id) of ``objective: proxy_codes``.
    quantizer_weight: weight of the quantizer's terms (1; TiTok stage 2: 0).
    convnext_weight: TiTok's ConvNeXt-S perceptual term (mean squared difference of ConvNeXt-S outputs
        at 224 px; its torchvision weights must be in the torch hub cache); 0 = off.
    """

    section = "loss"
    reconstruction: typing.Literal["l1", "mse"] | None = None
    reconstruction_weight: float = 1.0
    lpips_weight: float = 0.0
    lpips_net: str = "vgg"
    perceptual_dropout: bool = False
    disc_weight: float = 0.0
    disc_start: int = 0
    adaptive_disc_weight: bool = True
    disc_loss: typing.Literal["hinge", "non_saturating"] = "hinge"
    discriminator: typing.Literal["patchgan", "stylegan", "maskbit"] = "patchgan"
    discriminator_options: dict = field(default_factory=dict)
    disc_layers: int = 3
    disc_channels: int = 64
    discriminator_loss_weight: float = 1.0
    lecam_weight: float = 0.0
    lecam_decay: float = 0.999
    disc_augment: list[str] = field(default_factory=list)
    objective: typing.Literal["reconstruction", "proxy_codes", "decoder_finetune"] = "reconstruction"
    proxy_tokenizer: str | None = None
    quantizer_weight: float = 1.0
    convnext_weight: float = 0.0

    def check(self):
        self._positive("reconstruction_weight", "lpips_weight", "disc_weight", "disc_start", "lecam_weight",
                       "quantizer_weight", "convnext_weight", allow_zero=True)
        self._positive("disc_layers", "disc_channels", "discriminator_loss_weight")
        _check(0 <= self.lecam_decay < 1, "loss.lecam_decay", "in [0, 1)", self.lecam_decay)
        try:
            check_discriminator_options(self.discriminator, self.discriminator_options)
            check_diff_augment_policy(self.disc_augment)
        except ValueError as error:
            raise ConfigError(f"loss: {error}") from None
        _check(not self.disc_augment or self.disc_weight > 0, "loss.disc_augment",
               "empty without a discriminator (loss.disc_weight 0): it augments the discriminator's inputs",
               self.disc_augment)
        if self.discriminator == "maskbit" and (self.disc_layers, self.disc_channels) != (3, 64):
            raise ConfigError("loss.disc_layers and loss.disc_channels size PatchGAN and StyleGAN; the maskbit "
                              "discriminator takes loss.discriminator_options.num_stages and hidden_channels. "
                              "Remove disc_layers / disc_channels.")
        _check((self.objective == "proxy_codes") == (self.proxy_tokenizer is not None), "loss.proxy_tokenizer",
               "set exactly when loss.objective is proxy_codes (the frozen tokenizer whose codes stage 1 predicts)",
               self.proxy_tokenizer)


@dataclass
class TrainingArguments(_Section):
    """Optimisation, schedule, precision, checkpoints and logging (the same for every objective).

    batch_size is per process and per micro-step; the effective batch is
    batch_size * gradient_accumulation_steps * number of processes.
    lr_scheduler: a ``transformers.get_scheduler`` name (constant, constant_with_warmup,
        linear, cosine, ...), used for every optimizer of the run.
    min_learning_rate: with ``lr_scheduler: cosine``, the learning rate the cosine ends at instead
        of 0 (the same value for every optimizer; TiTok's official schedule ends at 1e-5):
        ``lr = min + (base - min) * 0.5 * (1 + cos(pi * progress))`` after the warmup.
    ema_decay: keep an EMA of the trained model's weights (diffusers EMAModel); the saved model
        and the final evaluation use the EMA weights. None = off.
    checkpoint_every: save a resumable checkpoint (safetensors + JSON) every N steps into
        ``output_dir/checkpoints``; 0 = never. keep_checkpoints: how many to keep.
    resume_from: "latest" or a checkpoint directory.
    resume_allow_changes: resume even when settings that change the run (batch size, learning
        rate, model, data, seed...) differ from the checkpoint's (they are listed either way).
    overwrite: start a new run in an ``output_dir`` that holds an earlier run, deleting what a run
        writes there (checkpoints, logs, model, metrics); without it that is an error.
    debug_kill_at_step: test hook: the process SIGKILLs itself after this step (simulated crash).
    """

    section = "training"
    batch_size: int = 32
    max_steps: int = 1000
    learning_rate: float = 4e-4
    disc_learning_rate: float | None = None
    optimizer: typing.Literal["adam", "adamw"] = "adam"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    weight_decay: float = 0.0
    lr_scheduler: str = "constant"
    min_learning_rate: float = 0.0
    warmup_steps: int = 0
    gradient_accumulation_steps: int = 1
    max_grad_norm: float | None = None
    mixed_precision: typing.Literal["no", "fp16", "bf16"] = "no"
    ema_decay: float | None = None
    log_every: int = 50
    log_images_every: int = 0
    report_to: str | None = "tensorboard"
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume_from: str | None = None
    resume_allow_changes: bool = False
    overwrite: bool = False
    debug_kill_at_step: int | None = None

    def check(self):
        self._positive("batch_size", "max_steps", "learning_rate", "disc_learning_rate", "gradient_accumulation_steps",
                       "log_every", "max_grad_norm")
        self._positive("weight_decay", "warmup_steps", "log_images_every", "checkpoint_every", allow_zero=True)
        _check(self.keep_checkpoints >= 1, "training.keep_checkpoints", ">= 1 (the latest checkpoint is always kept)",
               self.keep_checkpoints)
        for name in ("adam_beta1", "adam_beta2"):
            _check(0 <= getattr(self, name) < 1, f"training.{name}", "in [0, 1)", getattr(self, name))
        if self.ema_decay is not None:
            _check(0 < self.ema_decay < 1, "training.ema_decay", "in (0, 1) or null", self.ema_decay)
        from transformers.trainer_utils import SchedulerType

        names = [s.value for s in SchedulerType]
        _check(self.lr_scheduler in names, "training.lr_scheduler", f"one of {names}", self.lr_scheduler)
        self._positive("min_learning_rate", allow_zero=True)
        if self.min_learning_rate:
            _check(self.lr_scheduler == "cosine", "training.min_learning_rate",
                   "0 unless training.lr_scheduler is cosine (the floor is a cosine schedule's end)",
                   self.min_learning_rate)
            for name in ("learning_rate", "disc_learning_rate"):
                base = getattr(self, name)
                _check(base is None or self.min_learning_rate < base, "training.min_learning_rate",
                       f"below training.{name} ({base})", self.min_learning_rate)


@dataclass
class EvalArguments(_Section):
    section = "eval"
    batch_size: int = 64
    num_grid_images: int = 16

    def check(self):
        self._positive("batch_size", "num_grid_images")


def _model_config_class(model_type: str):
    from ..models import TOKENIZERS

    if model_type not in TOKENIZERS:
        raise ConfigError(f"model.model_type must be one of {sorted(TOKENIZERS)}; got {model_type!r}.")
    return TOKENIZERS[model_type][0]


def _config_field_types(config_class) -> dict:
    """The typed fields a transformers config class declares itself (not PreTrainedConfig's bookkeeping)."""
    import sys

    from transformers import PreTrainedConfig

    base = set(PreTrainedConfig.__dataclass_fields__)
    hints = {}
    for klass in reversed(config_class.__mro__):
        if klass is PreTrainedConfig or not issubclass(klass, PreTrainedConfig):
            continue
        namespace = vars(sys.modules[klass.__module__])
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            if name in base or name.startswith("_"):
                continue
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, namespace)  # noqa: S307 (the class's own annotation text)
                except Exception:
                    annotation = typing.Any
            hints[name] = annotation
    return hints


# Tokenizers whose frozen codebook comes from a file (`model.codebook`: an `hf-vq build-codebook` output).
FROZEN_CODEBOOK_MODELS = ("vqgan_lc",)


def _validate_stage2_section(model: dict, section: str) -> dict:
    """A ``model:`` section with ``stage1_from`` (a semantic tokenizer's pixel decoder, stage 2): the model is
    the stage-1 one, so only ``model_type`` (a check), ``pixel_decoder`` and ``teacher`` may come with it."""
    from ..models.configuration_pixel_decoder import PIXEL_DECODER_FIELDS

    allowed = ("stage1_from", "model_type", "pixel_decoder", "teacher")
    unknown = sorted(set(model) - set(allowed))
    if unknown:
        raise ConfigError(f"Unknown keys {unknown} in `{section}:` with stage1_from (the model comes from the stage-1 "
                          f"folder); allowed: {list(allowed)}.")
    checked = {"stage1_from": coerce_value(model["stage1_from"], str, f"{section}.stage1_from")}
    for key in ("model_type", "teacher"):
        if key in model:
            checked[key] = coerce_value(model[key], str, f"{section}.{key}")
    if "model_type" in checked:
        _model_config_class(checked["model_type"])  # a registered tokenizer
    decoder = model.get("pixel_decoder")
    if decoder is not None:
        decoder = coerce_value(decoder, dict, f"{section}.pixel_decoder")
        unknown = sorted(set(decoder) - set(PIXEL_DECODER_FIELDS))
        if unknown:
            raise ConfigError(f"Unknown keys {unknown} in `{section}.pixel_decoder:`; allowed: {list(PIXEL_DECODER_FIELDS)}.")
    checked["pixel_decoder"] = decoder
    return checked


def validate_model_section(model: dict, section: str = "model") -> dict:
    """Coerce and check the tokenizer ``model:`` section by building its config (cheap, no weights)."""
    model = dict(model)
    if "stage1_from" in model:
        return _validate_stage2_section(model, section)
    model_type, pretrained = model.pop("model_type", None), model.pop("pretrained", None)
    codebook = model.pop("codebook", None)
    if model_type is None and pretrained is None:
        raise ConfigError(
            "The config needs a `model:` section with a `model_type` (e.g. vqvae) or `pretrained` (a saved model)."
        )
    if codebook is not None:
        if pretrained is not None or model_type not in FROZEN_CODEBOOK_MODELS:
            raise ConfigError(
                f"{section}.codebook (a frozen codebook file) goes with a fresh model of type "
                f"{' or '.join(FROZEN_CODEBOOK_MODELS)}; got model_type {model_type!r}"
                + (f" and pretrained {pretrained!r} (saved weights carry their own codebook)." if pretrained else ".")
            )
    elif model_type in FROZEN_CODEBOOK_MODELS and pretrained is None:
        raise ConfigError(
            f"A fresh {model_type} model needs its frozen codebook: set {section}.codebook to an "
            "`hf-vq build-codebook --output FILE` file (or start from saved weights with pretrained)."
        )
    if model_type is not None:
        config_class = _model_config_class(coerce_value(model_type, str, f"{section}.model_type"))
        model = coerce_fields(model, _config_field_types(config_class), section)
        if pretrained is None:
            try:
                config_class(**model)
            except (ValueError, TypeError) as error:
                raise ConfigError(f"Invalid `{section}:` for {model_type}: {error}") from error
    if pretrained is not None:
        model["pretrained"] = coerce_value(pretrained, str, f"{section}.pretrained")
    if model_type is not None:
        model["model_type"] = model_type
    if codebook is not None:
        model["codebook"] = coerce_value(codebook, str, f"{section}.codebook")
    return model


def _top_level(raw: dict, allowed: set) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise ConfigError(f"Unknown config keys {sorted(unknown)}; known top-level keys: {sorted(allowed)}.")


@dataclass
class TrainConfig:
    """A tokenizer training run (``hf-vq train``)."""

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
        _top_level(raw, {f.name for f in fields(cls)})
        model = validate_model_section(raw.get("model") or {})
        data = dict(raw.get("data") or {})
        if "dataset_name" in data:  # the spelling of data.dataset
            if "dataset" in data:
                raise ConfigError("data.dataset_name and data.dataset name the same thing; keep only `dataset`.")
            data["dataset"] = data.pop("dataset_name")
        return cls(
            model=model,
            output_dir=coerce_value(raw.get("output_dir", cls.output_dir), str, "output_dir"),
            seed=coerce_value(raw.get("seed", cls.seed), int, "seed"),
            data=DataConfig.from_values(data),
            loss=LossConfig.from_values(raw.get("loss")),
            training=TrainingArguments.from_values(raw.get("training")),
            eval=EvalArguments.from_values(raw.get("eval")),
        )

    def to_dict(self) -> dict:
        return asdict(self)


# -- autoregressive GPT training ------------------------------------------------------------------

# What `hf-vq train-ar` does when neither a config nor a flag says otherwise: LlamaGen's optimiser
# (AdamW, betas 0.9 / 0.95, weight decay 0.05 on matrices, clipping at 1.0) with a cosine schedule.
AR_TRAINING_DEFAULTS = {
    "batch_size": 32, "max_steps": 1000, "learning_rate": 1e-4, "optimizer": "adamw", "adam_beta1": 0.9,
    "adam_beta2": 0.95, "weight_decay": 0.05, "max_grad_norm": 1.0, "lr_scheduler": "cosine", "warmup_steps": 0,
    "checkpoint_every": 500, "log_every": 50,
}


@dataclass
class ARDataConfig(_Section):
    """The token dataset of a GPT run.

    tokens: a token dataset folder (``hf-vq tokenize --output-dir``: ``input_ids`` + ``class_labels``).
    tokenizer: the tokenizer that made the tokens (its ``codebook_size`` is the GPT's vocabulary).
    num_classes: default: the largest label + 1.
    """

    section = "data"
    tokens: str | None = None
    tokenizer: str | None = None
    num_classes: int | None = None
    num_workers: int = 0

    def check(self):
        self._positive("num_classes")
        self._positive("num_workers", allow_zero=True)


def _gpt_field_types() -> dict:
    from ..models.llamagen_gpt import LlamaGenGPTConfig

    return {"preset": str, **_config_field_types(LlamaGenGPTConfig)}


@dataclass
class ARTrainConfig:
    """A GPT training run on a token dataset (``hf-vq train-ar``).

    model: ``preset`` (GPT-B, GPT-L, ...) plus any ``LlamaGenGPTConfig`` field; ``vocab_size``,
        ``block_size``, ``rope_type`` and ``num_classes`` default to what the tokens and the
        tokenizer say.
    """

    model: dict = field(default_factory=lambda: {"preset": "GPT-B"})
    output_dir: str = "outputs/gpt"
    seed: int = 0
    data: ARDataConfig = field(default_factory=ARDataConfig)
    training: TrainingArguments = field(default_factory=lambda: TrainingArguments(**AR_TRAINING_DEFAULTS))

    @classmethod
    def from_dict(cls, raw: dict) -> "ARTrainConfig":
        raw = copy.deepcopy(raw)
        _top_level(raw, {f.name for f in fields(cls)})
        model = coerce_fields(raw.get("model") or {"preset": "GPT-B"}, _gpt_field_types(), "model")
        if "preset" in model:
            from ..models.llamagen_gpt.configuration_llamagen_gpt import LLAMAGEN_GPT_PRESETS

            _check(model["preset"] in LLAMAGEN_GPT_PRESETS, "model.preset", f"one of {sorted(LLAMAGEN_GPT_PRESETS)}",
                   model["preset"])
        return cls(
            model=model,
            output_dir=coerce_value(raw.get("output_dir", cls.output_dir), str, "output_dir"),
            seed=coerce_value(raw.get("seed", cls.seed), int, "seed"),
            data=ARDataConfig.from_values(raw.get("data")),
            training=TrainingArguments.from_values({**AR_TRAINING_DEFAULTS, **(raw.get("training") or {})}),
        )

    def to_dict(self) -> dict:
        return asdict(self)


# -- files and overrides ---------------------------------------------------------------------------

def apply_overrides(raw: dict, overrides: list) -> dict:
    """Apply ``["--training.max_steps", "100", ...]`` (or ``key=value``) to a raw config dict."""
    raw = copy.deepcopy(raw)
    items = []
    i = 0
    while i < len(overrides):
        token = overrides[i]
        if not token.startswith("--"):
            raise ConfigError(f"Overrides look like --section.key value; got {token!r}.")
        if "=" in token:
            key, value = token[2:].split("=", 1)
            i += 1
        else:
            if i + 1 >= len(overrides):
                raise ConfigError(f"Override {token} has no value.")
            key, value = token[2:], overrides[i + 1]
            i += 2
        items.append((key, value))
    for key, value in items:
        node = raw
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"Override --{key}: {part} is not a section.")
        node[parts[-1]] = parse_yaml(value) if isinstance(value, str) else value
    return raw


def read_config_file(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist; see configs/ for examples.")
    raw = parse_yaml(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (model:, data:, training:, ...).")
    return raw


def load_config(path=None, overrides=()) -> TrainConfig:
    """Read a YAML config (or the demo config when ``path`` is None) and apply overrides."""
    raw = copy.deepcopy(DEMO_CONFIG) if path is None else read_config_file(path)
    return TrainConfig.from_dict(apply_overrides(raw, list(overrides)))


def load_ar_config(path=None, overrides=()) -> ARTrainConfig:
    """Read a GPT training config (or only the defaults when ``path`` is None) and apply overrides."""
    raw = {} if path is None else read_config_file(path)
    return ARTrainConfig.from_dict(apply_overrides(raw, list(overrides)))
