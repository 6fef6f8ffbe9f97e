"""``hf-vq train [CONFIG] [--section.key value ...]``."""

def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="Train a tokenizer (no CONFIG: the embedded demo run).",
        description="Train a tokenizer from a YAML config. Override any value with --section.key value, "
        "e.g. --training.max_steps 100 --output_dir outputs/x.",
    )
    parser.add_argument(
        "config", nargs="?", default=None, help="YAML config; omitted: the embedded demo (configs/demo/vqvae.yaml)."
    )
    parser.set_defaults(func=run, accepts_overrides=True, overrides=[])


def run(args) -> int:
    from ..training import train_from_config

    train_from_config(args.config, args.overrides)
    return 0
