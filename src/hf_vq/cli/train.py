"""``hf-vq train [CONFIG] [--resume [latest|DIR]] [--overwrite] [--section.key value ...]``."""


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
    parser.add_argument(
        "--resume-allow-changes", action="store_true",
        help="resume even when settings that change the run (batch size, model, data...) differ from the "
        "checkpoint's (same as --training.resume_allow_changes true).",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="start over in an output_dir that holds an earlier run, deleting what a run writes there "
        "(same as --training.overwrite true).",
    )
    parser.set_defaults(func=run, accepts_overrides=True, overrides=[])


FLAGS = ("--resume", "--resume-allow-changes", "--overwrite")


def _drop_flags(tokens: list) -> list:
    """The raw override tokens still hold this command's own flags (argparse already parsed them)."""
    kept, skip_value = [], False
    for token in tokens:
        if skip_value and not token.startswith("-"):
            skip_value = False
            continue
        skip_value = token == "--resume"
        if token not in FLAGS and not token.startswith("--resume="):
            kept.append(token)
    return kept


def run(args) -> int:
    from ..training import train_from_config

    overrides = _drop_flags(list(args.overrides))
    if args.resume:
        overrides += ["--training.resume_from", args.resume]
    if args.resume_allow_changes:
        overrides += ["--training.resume_allow_changes", "true"]
    if args.overwrite:
        overrides += ["--training.overwrite", "true"]
    train_from_config(args.config, overrides)
    return 0
