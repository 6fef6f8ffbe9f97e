"""`hf-vq train-ar`'s step time vs a plain forward + backward + AdamW loop (target: <= 1.2x).

Both train the same GPT (same config, same initial weights) with the same batch size in the
same process, one after the other:

- engine: ``hf_vq.training.train_ar`` as ``hf-vq train-ar`` runs it (token dataset on disk read
  through the DataLoader, Accelerate, gradient clipping, NaN check, LR schedule, TensorBoard
  logging every ``log_every`` steps, progress bar);
- plain: ``loss = model(...).loss; loss.backward(); clip; AdamW.step(); zero_grad()`` on one
  batch that is already in memory.

The time per step is the median over the timed steps (after ``--warmup`` steps) of the
wall-clock time between the ends of two consecutive steps.

    python benchmarks/ar_training_speed.py                  # ~0.6M-parameter GPT, 256 tokens, batch 32
    python benchmarks/ar_training_speed.py --device cuda --hidden-size 768 --num-layers 12 --num-heads 12
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset

from hf_vq.models.llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel
from hf_vq.training import ARTrainConfig, NextTokenObjective, TrainingEngine
from hf_vq.training.next_token_objective import decay_groups


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class TimedEngine(TrainingEngine):
    """The engine, with the end of every step (step + log + checkpoint) time-stamped."""

    def run(self):
        self.step_ends = []
        original_checkpoint = self.checkpoint

        def checkpoint_and_stamp(completed):
            original_checkpoint(completed)
            _sync(str(self.device))
            self.step_ends.append(time.perf_counter())

        self.checkpoint = checkpoint_and_stamp
        return super().run()


def step_gaps(ends: list, warmup: int) -> list:
    return [b - a for a, b in zip(ends[warmup:], ends[warmup + 1:])]


def per_step(ends: list, warmup: int) -> float:
    return statistics.median(step_gaps(ends, warmup))


def engine_seconds(model_config, tokens, args, workdir: Path) -> float:
    return statistics.median(engine_step_times(model_config, tokens, args, workdir))


def engine_step_times(model_config, tokens, args, workdir: Path) -> list:
    """Seconds of each engine step after the warm-up (end of a step to the end of the next)."""
    config = ARTrainConfig.from_dict({
        "output_dir": str(workdir / "engine"), "seed": 0, "model": {},
        "training": {"batch_size": args.batch_size, "max_steps": args.warmup + args.steps + 1,
                     "learning_rate": 1e-4, "lr_scheduler": "constant", "checkpoint_every": 0, "log_every": 50,
                     "mixed_precision": args.mixed_precision},
    })
    torch.manual_seed(0)
    model = LlamaGenGPTModel(model_config)
    engine = TimedEngine(NextTokenObjective(config, model=model, tokens=tokens), config.training,
                         output_dir=config.output_dir, seed=0, config=config.to_dict())
    engine.run()
    return step_gaps(engine.step_ends, args.warmup)


def plain_seconds(model_config, tokens, args) -> float:
    torch.manual_seed(0)
    model = LlamaGenGPTModel(model_config).to(args.device).train()
    optimizer = torch.optim.AdamW(decay_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95))
    batch = tokens.with_format("torch")[: args.batch_size]
    input_ids, labels = batch["input_ids"].long().to(args.device), batch["class_labels"].long().to(args.device)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision)
    ends = []
    for _ in range(args.warmup + args.steps + 1):
        with torch.autocast(args.device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            loss = model(input_ids=input_ids[:, :-1], class_labels=labels, labels=input_ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(args.device)
        ends.append(time.perf_counter())
    return per_step(ends, args.warmup)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--num-heads", type=int, default=4)
    parser.add_argument("--vocab-size", type=int, default=1024)
    parser.add_argument("--tokens", type=int, default=256, help="tokens per sequence (a square: 2D RoPE)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.device.startswith("cuda") != torch.cuda.is_available():
        raise SystemExit("--device must match the machine: Accelerate picks the GPU when there is one.")

    model_config = LlamaGenGPTConfig(vocab_size=args.vocab_size, block_size=args.tokens, hidden_size=args.hidden_size,
                                     num_hidden_layers=args.num_layers, num_attention_heads=args.num_heads,
                                     num_classes=10, multiple_of=32)
    generator = torch.Generator().manual_seed(0)
    rows = 8 * args.batch_size
    ids = torch.randint(0, args.vocab_size, (rows, args.tokens), generator=generator)
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        Dataset.from_dict({"input_ids": ids.tolist(), "class_labels": [i % 10 for i in range(rows)]}).save_to_disk(
            workdir / "tokens")
        from datasets import load_from_disk

        tokens = load_from_disk(str(workdir / "tokens"))
        engine = engine_seconds(model_config, tokens, args, workdir)
        plain = plain_seconds(model_config, tokens, args)
    parameters = LlamaGenGPTModel(model_config).num_parameters() / 1e6
    print(f"model: {parameters:.2f}M parameters, {args.tokens} tokens, batch {args.batch_size}, {args.device}, "
          f"mixed precision {args.mixed_precision}, torch threads {torch.get_num_threads()}")
    print(f"hf-vq train-ar engine step: {engine * 1000:8.1f} ms")
    print(f"plain loop step:            {plain * 1000:8.1f} ms")
    print(f"ratio: {engine / plain:.2f}x (target <= 1.2x)")


if __name__ == "__main__":
    main()
