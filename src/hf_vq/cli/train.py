"""``hf-vq train [CONFIG] [--resume [latest|DIR]] [--section.key value ...]``."""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Train a tokenizer (no CONFIG: the embedded demo run).",
        description="Train a tokenizer from a YAML config. Override any value with --section.key value, "
        "e.g. --training.max_steps 100 --output_dir outputs/x. Run under `accelerate launch` for several "
        "GPUs or machines.",
    )
    parser.add_argument(
        "config", nargs="?", default=None, help="YAML config; omitted: the embedded demo (configs/demo/vqvae.yaml)."
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        default=None,
        metavar="latest|CHECKPOINT_DIR",
        help="continue from the latest checkpoint of output_dir (no value or `latest`) or from a "
        "checkpoint directory (same as --training.resume_from).",
    )
    parser.set_defaults(func=run, accepts_overrides=True, overrides=[])


def _drop_resume_flag(tokens: list) -> list:
    """The raw override tokens still hold ``--resume VALUE`` (argparse already parsed it)."""
    kept, skip_value = [], False
    for token in tokens:
        if skip_value and not token.startswith("-"):
            skip_value = False
            continue
        skip_value = token == "--resume"
        if not skip_value and not token.startswith("--resume="):
            kept.append(token)
    return kept


def run(args) -> int:
    from ..training import train_from_config

    overrides = _drop_resume_flag(list(args.overrides))
    if args.resume:
        overrides += ["--training.resume_from", args.resume]
    train_from_config(args.config, overrides)
    return 0
