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
    "hf_vq.cli.evaluate",
    "hf_vq.cli.benchmark",
    "hf_vq.cli.push",
    "hf_vq.cli.tokenize",
    "hf_vq.cli.train_ar",
    "hf_vq.cli.generate",
    "hf_vq.cli.build_codebook",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-vq", description="Hugging Face-native discrete image tokenizers.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def split_config_and_overrides(config, rest, argv):
    """argparse may take an override's value for the optional CONFIG positional; undo that.

    The config is the first token after the command when it does not start with ``--``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    tokens = argv[1:]
    if tokens and not tokens[0].startswith("-"):
        return tokens[0], tokens[1:]
    return None, tokens


def main(argv=None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        # Only commands that take free-form ``--section.key value`` overrides accept extras.
        if not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.config, args.overrides = split_config_and_overrides(args.config, rest, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
