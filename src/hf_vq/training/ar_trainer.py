"""Accelerate training of an autoregressive GPT on a dataset of token sequences.

LlamaGen's recipe: AdamW (betas 0.9 / 0.95, weight decay 0.05 on matrices only), a linear
warmup then cosine schedule (transformers' ``get_cosine_schedule_with_warmup``), gradient
clipping at 1.0, class dropout inside the model (``config.class_dropout_prob``, 0.1).
Checkpoints (``accelerator.save_state``) go to ``output_dir/checkpoint-{step}``; ``resume``
restarts from the latest one; the final model is saved with ``save_pretrained``.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

CHECKPOINT_PATTERN = re.compile(r"checkpoint-(\d+)$")


@dataclass
class ARTrainingArguments:
    output_dir: str
    max_steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple = (0.9, 0.95)
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    checkpoint_every: int = 500
    log_every: int = 50
    seed: int = 0
    mixed_precision: str = "no"
    resume: bool = False


def collate_tokens(rows: list) -> dict:
    return {
        "input_ids": torch.tensor([row["input_ids"] for row in rows], dtype=torch.long),
        "class_labels": torch.tensor([row["class_labels"] for row in rows], dtype=torch.long),
    }


def build_optimizer(model, args: ARTrainingArguments) -> torch.optim.Optimizer:
    """AdamW with weight decay on 2D+ weights only (LlamaGen: no decay on norms)."""
    decayed = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    not_decayed = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decayed, "weight_decay": args.weight_decay}, {"params": not_decayed, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=args.learning_rate, betas=tuple(args.betas))


def latest_checkpoint(output_dir: Path):
    steps = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*") if (m := CHECKPOINT_PATTERN.search(p.name))]
    return max(steps)[1] if steps else None


def train_ar(model, dataset, args: ARTrainingArguments) -> list:
    """Train ``model`` (e.g. ``LlamaGenGPTModel``) on rows ``{"input_ids", "class_labels"}``; returns the losses."""
    for column in ("input_ids", "class_labels"):
        if column not in dataset.column_names:
            raise ValueError(f"The token dataset needs an {column!r} column (see `hf-vq tokenize`); has {dataset.column_names}.")
    sequence_length = len(dataset[0]["input_ids"])
    if sequence_length != model.config.block_size:
        raise ValueError(f"Sequences have {sequence_length} tokens but the model's block_size is {model.config.block_size}.")

    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=args.mixed_precision)
    set_seed(args.seed)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True, collate_fn=collate_tokens)
    if len(loader) == 0:
        raise ValueError(f"The dataset has {len(dataset)} rows, fewer than one batch of {args.batch_size}.")
    optimizer = build_optimizer(model, args)
    scheduler = get_cosine_schedule_with_warmup(optimizer, args.warmup_steps, args.max_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    step = 0
    if args.resume:
        checkpoint = latest_checkpoint(output_dir)
        if checkpoint is None:
            raise ValueError(f"resume is set but {output_dir} holds no checkpoint-* folder.")
        accelerator.load_state(str(checkpoint))
        step = int(CHECKPOINT_PATTERN.search(checkpoint.name).group(1))

    model.train()
    losses = []
    progress = tqdm(total=args.max_steps, initial=step, desc="Training GPT", disable=not accelerator.is_main_process)
    while step < args.max_steps:
        for batch in loader:
            tokens = batch["input_ids"]
            # Position i predicts token i: the last image token is never an input.
            loss = model(input_ids=tokens[:, :-1], class_labels=batch["class_labels"], labels=tokens).loss
            accelerator.backward(loss)
            if args.max_grad_norm > 0:
                accelerator.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            losses.append(loss.item())
            progress.update(1)
            if step % args.log_every == 0:
                progress.set_postfix(loss=f"{loss.item():.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
            if args.checkpoint_every and step % args.checkpoint_every == 0:
                accelerator.save_state(str(output_dir / f"checkpoint-{step}"))
            if step >= args.max_steps:
                break
    progress.close()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(output_dir)
    return losses


__all__ = ["ARTrainingArguments", "collate_tokens", "latest_checkpoint", "train_ar"]
