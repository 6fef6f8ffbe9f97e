"""``hf-vq``: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments). Add a command by adding its module to
``COMMAND_MODULES``.
"""

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "hf_vq.cli.train",
    "hf_vq.cli.convert",
    "hf_vq.cli.tokenize",
    "hf_vq.cli.train_ar",
    "hf_vq.cli.generate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-vq", description="Hugging Face-native discrete image tokenizers.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
