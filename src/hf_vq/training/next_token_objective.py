"""The next-token objective: a class-conditional GPT on a dataset of token sequences.

LlamaGen's recipe: cross-entropy of every image token given the class token and the tokens
before it (position i predicts token i; the last token is never an input), AdamW with weight
decay on matrices only (no decay on norms and biases), class dropout inside the model
(``config.class_dropout_prob``, 0.1) for classifier-free guidance.
"""

from pathlib import Path

from torch import nn

from .config import ARTrainConfig
from .dataloaders import build_token_batches
from .engine import Objective, StepLoss, TrainingEngine, TrainResult


def load_token_dataset(path):
    """A token dataset saved by ``hf-vq tokenize`` (``input_ids`` + ``class_labels``)."""
    from datasets import load_from_disk

    if path is None:
        raise ValueError("data.tokens is not set: pass --tokens DIR (a folder written by `hf-vq tokenize`).")
    if not Path(path).is_dir():
        raise FileNotFoundError(f"Token dataset {path} does not exist; make it with `hf-vq tokenize ... --output-dir {path}`.")
    dataset = load_from_disk(str(path))
    for column in ("input_ids", "class_labels"):
        if column not in dataset.column_names:
            raise ValueError(f"The token dataset needs an {column!r} column (see `hf-vq tokenize`); has "
                             f"{dataset.column_names}.")
    return dataset


def tokenizer_indices_ndim(model_type: str) -> int:
    """3 for grid tokenizers (indices (B, h, w)), 2 for 1D ones (indices (B, N)), from the model class."""
    from ..models.auto import TOKENIZER_CLASSES, _class

    if model_type not in TOKENIZER_CLASSES:
        raise ValueError(f"data.tokenizer is a {model_type!r} model, not an hf_vq tokenizer ({sorted(TOKENIZER_CLASSES)}).")
    module, _, model_class = TOKENIZER_CLASSES[model_type]
    return _class(module, model_class).indices_ndim


def build_gpt(config: ARTrainConfig, tokens):
    """The GPT of ``config.model`` sized for the tokens: vocabulary = the tokenizer's codebook,
    block size = the sequence length, 2D RoPE for square grids of a grid tokenizer, 1D RoPE for a 1D
    tokenizer (TiTok) or a length that is not a square, classes = largest label + 1."""
    from transformers import AutoConfig

    from ..models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel

    model_section = dict(config.model)
    preset = model_section.pop("preset", None)
    block_size = len(tokens[0]["input_ids"])
    grid_side = round(block_size**0.5)
    derived = {"block_size": block_size, "rope_type": "2d" if grid_side * grid_side == block_size else "1d"}
    if config.data.tokenizer is not None:
        tokenizer_config = AutoConfig.from_pretrained(config.data.tokenizer)
        derived["vocab_size"] = tokenizer_config.codebook_size
        if tokenizer_indices_ndim(tokenizer_config.model_type) == 2:
            # A 1D tokenizer (TiTok): positions along the sequence, even when N happens to be a square (64, 256).
            derived["rope_type"] = "1d"
    elif "vocab_size" not in model_section:
        raise ValueError("Set data.tokenizer (--tokenizer DIR, for its codebook size) or model.vocab_size.")
    derived["num_classes"] = config.data.num_classes or max(tokens["class_labels"]) + 1
    values = {**derived, **model_section}
    gpt_config = LlamaGenGPTConfig.from_preset(preset, **values) if preset else LlamaGenGPTConfig(**values)
    if gpt_config.block_size != block_size:
        raise ValueError(f"Sequences have {block_size} tokens but model.block_size is {gpt_config.block_size}.")
    return LlamaGenGPTModel(gpt_config)


def decay_groups(model: nn.Module, weight_decay: float) -> list:
    """AdamW groups: weight decay on 2D+ weights only (LlamaGen: none on norms and biases)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    not_decayed = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]


class NextTokenObjective(Objective):
    """Cross-entropy of the next image token for a class-conditional GPT."""

    loss_name = "loss"
    progress_terms = ("loss",)
    final_outputs = (("model", "model.safetensors"),)

    def __init__(self, config: ARTrainConfig, *, model: nn.Module | None = None, tokens=None):
        self.config = config
        self.tokens = tokens if tokens is not None else load_token_dataset(config.data.tokens)
        self.raw_model = model

    def build(self, engine) -> None:
        model = self.raw_model if self.raw_model is not None else build_gpt(self.config, self.tokens)
        sequence_length = len(self.tokens[0]["input_ids"])
        if sequence_length != model.config.block_size:
            raise ValueError(f"Sequences have {sequence_length} tokens but the model's block_size is "
                             f"{model.config.block_size}.")
        if len(self.tokens) < engine.args.batch_size * engine.accelerator.num_processes:
            raise ValueError(f"The token dataset has {len(self.tokens)} rows, fewer than one batch of "
                             f"{engine.args.batch_size} per process; lower training.batch_size.")
        self.prepared = engine.add_optimizer("model", model, decay_groups(model, engine.args.weight_decay),
                                             engine.args.learning_rate)
        self.unwrapped = engine.accelerator.unwrap_model(self.prepared)

    def state_modules(self) -> dict:
        return {"model": self.unwrapped}

    def model(self) -> nn.Module:
        return self.unwrapped

    def train_batches(self, engine, start_batch: int):
        return build_token_batches(self.tokens, engine.args.batch_size, self.config.seed, engine.accelerator,
                                   start_batch=start_batch, num_workers=self.config.data.num_workers)

    def step_losses(self, batch, step: int):
        tokens = batch["input_ids"]
        loss = self.prepared(input_ids=tokens[:, :-1], class_labels=batch["class_labels"], labels=tokens).loss
        yield StepLoss("model", loss, {"loss": loss})

    def finish(self, engine, save_dir) -> dict:
        if engine.is_main_process:
            self.unwrapped.save_pretrained(save_dir)
        last = engine.history[-1]["loss"] if engine.history else None
        return {"last_logged_loss": last, "num_sequences": len(self.tokens),
                "num_parameters": self.unwrapped.num_parameters()}


def train_ar(config: ARTrainConfig, *, model: nn.Module | None = None, tokens=None) -> TrainResult:
    """Train a GPT on ``config.data.tokens`` (or ``tokens``, a datasets.Dataset) and save it to ``config.output_dir``."""
    objective = NextTokenObjective(config, model=model, tokens=tokens)
    engine = TrainingEngine(objective, config.training, output_dir=config.output_dir, seed=config.seed,
                            config=config.to_dict())
    return engine.run()
