"""``hf-vq train-ar [CONFIG] [flags] [--section.key value ...]``: train a LlamaGen GPT on a token dataset.

CONFIG is a YAML file (``configs/ar/``) with ``model`` (``preset`` + GPT config fields), ``data``
(``tokens``, ``tokenizer``) and ``training`` sections; any value can be overridden with a dotted
key as in ``hf-vq train``. The flags below are shortcuts for the same keys.
"""

# flag -> the config key it sets
FLAG_KEYS = {
    "tokens": "data.tokens", "tokenizer": "data.tokenizer", "num_classes": "data.num_classes",
    "output_dir": "output_dir", "seed": "seed", "preset": "model.preset", "hidden_size": "model.hidden_size",
    "num_layers": "model.num_hidden_layers", "num_heads": "model.num_attention_heads",
    "max_steps": "training.max_steps", "batch_size": "training.batch_size", "learning_rate": "training.learning_rate",
    "weight_decay": "training.weight_decay", "warmup_steps": "training.warmup_steps",
    "checkpoint_every": "training.checkpoint_every", "mixed_precision": "training.mixed_precision",
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-ar", help="Train a class-conditional GPT on token sequences.",
        description="Train a LlamaGen GPT on a token dataset (hf-vq tokenize). Give a YAML config (configs/ar/) and/or "
        "the flags; override any value with --section.key value, e.g. --training.max_steps 100.")
    parser.add_argument("config", nargs="?", default=None, help="YAML config (configs/ar/*.yaml); optional.")
    parser.add_argument("--tokens", help="Token dataset folder (hf-vq tokenize --output-dir) = data.tokens.")
    parser.add_argument("--tokenizer", help="The tokenizer that made the tokens (for its codebook size) = data.tokenizer.")
    parser.add_argument("--output-dir", help="= output_dir.")
    parser.add_argument("--preset", help="GPT-B, GPT-L, GPT-XL, GPT-XXL, GPT-3B (= model.preset; default GPT-B).")
    parser.add_argument("--hidden-size", type=int, help="Override the preset (small experiments).")
    parser.add_argument("--num-layers", type=int, help="Override the preset.")
    parser.add_argument("--num-heads", type=int, help="Override the preset.")
    parser.add_argument("--num-classes", type=int, help="Default: largest label + 1.")
    parser.add_argument("--max-steps", type=int, help="Default 1000.")
    parser.add_argument("--batch-size", type=int, help="Per process; default 32.")
    parser.add_argument("--learning-rate", type=float, help="Default 1e-4.")
    parser.add_argument("--weight-decay", type=float, help="Default 0.05 (matrices only).")
    parser.add_argument("--warmup-steps", type=int, help="Default 0.")
    parser.add_argument("--checkpoint-every", type=int, help="Default 500.")
    parser.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"])
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="latest|CHECKPOINT_DIR",
                        help="Continue from the latest checkpoint of the output dir (no value) or from a checkpoint "
                        "directory (= training.resume_from).")
    parser.add_argument("--resume-allow-changes", action="store_true",
                        help="Resume even when settings that change the run differ from the checkpoint's.")
    parser.add_argument("--overwrite", action="store_true",
                        help="Start over in an output dir that holds an earlier run (deletes its checkpoints, model, logs).")
    parser.set_defaults(func=run, accepts_overrides=True, overrides=[])


def dotted_overrides(tokens: list) -> list:
    """The ``--section.key value`` tokens among everything after the command (flags are parsed by argparse)."""
    kept, i = [], 0
    while i < len(tokens):
        token = tokens[i]
        key = token[2:].split("=", 1)[0] if token.startswith("--") else ""
        if "." in key or key in ("output_dir", "seed"):
            takes_value = "=" not in token
            kept.extend(tokens[i : i + 1 + takes_value])
            i += 1 + takes_value
        else:
            i += 1
    return kept


def run(args) -> int:
    from ..training import load_ar_config, train_ar

    overrides = []
    for flag, key in FLAG_KEYS.items():
        value = getattr(args, flag)
        if value is not None:
            overrides += [f"--{key}", str(value)]
    overrides += dotted_overrides(list(args.overrides))
    if args.resume:
        overrides += ["--training.resume_from", args.resume]
    if args.resume_allow_changes:
        overrides += ["--training.resume_allow_changes", "true"]
    if args.overwrite:
        overrides += ["--training.overwrite", "true"]
    config = load_ar_config(args.config, overrides)
    result = train_ar(config)
    print(f"Trained {len(result.history) and result.history[-1]['step'] + 1} steps; last logged loss "
          f"{result.metrics['last_logged_loss']}; saved to {result.output_dir}")
    return 0
