"""``hf-vq train [CONFIG] [--section.key value ...]``."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="Train a tokenizer (default: the embedded demo run).")
    parser.add_argument("config", nargs="?", default=None, help="YAML config (default: configs/demo/vqvae.yaml's contents).")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..training import train_from_config

    train_from_config(args.config)
    return 0
