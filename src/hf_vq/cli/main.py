"""``hf-vq``: one entry point, one module per subcommand.

Each subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (called with the parsed arguments). Add a command by adding its module to
``COMMAND_MODULES``. The subcommand modules only build parsers; what a command runs is
imported when it runs, so ``hf-vq --help`` imports no torch.

User errors (``hf_vq.utils.errors``: ``UsageError``, ``ValueError``, ``FileNotFoundError``,
an unreachable Hub) print one line, ``hf-vq: error: ...``, and exit with status 2, as
argparse does for a bad option; ``--debug`` shows the traceback instead.
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
    "hf_vq.cli.demo",
]
USER_ERROR_STATUS = 2
DEBUG_HELP = "show the full traceback of an error instead of one line"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-vq", description="Hugging Face-native discrete image tokenizers.")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    _add_debug_flag(subparsers)
    return parser


def _add_debug_flag(subparsers) -> None:
    """``--debug`` is also accepted after a command (and a converter's source); SUPPRESS keeps one given before."""
    for command_parser in subparsers.choices.values():
        command_parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
        for action in command_parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_debug_flag(action)


def split_config_and_overrides(argv: list, command: str, rest: list):
    """argparse may take an override's value for the optional CONFIG positional; undo that.

    The config is the first token after the command when it does not start with ``--``;
    every other token is a ``--section.key value`` override. ``argv`` is the list main parsed.
    """
    tokens = [token for token in argv[argv.index(command) + 1 :] if token != "--debug"] if command in argv else rest
    if tokens and not tokens[0].startswith("-"):
        return tokens[0], tokens[1:]
    return None, tokens


def user_error_types() -> tuple:
    from ..utils.errors import UsageError, network_errors

    return (UsageError, ValueError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
            *network_errors())


def one_line(error: BaseException) -> str:
    from ..utils.errors import UsageError, network_errors

    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip()) or type(error).__name__
    if isinstance(error, network_errors()) and not isinstance(error, UsageError):
        message = (f"the Hugging Face Hub cannot be reached ({message}); check the network or log in with "
                   "`hf auth login`, or use local files")
    return message


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest:
        # Only commands that take free-form ``--section.key value`` overrides accept extras.
        if not getattr(args, "accepts_overrides", False):
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        args.config, args.overrides = split_config_and_overrides(argv, args.command, rest)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        result = args.func(args)
    except Exception as error:
        if args.debug or not isinstance(error, user_error_types()):
            raise
        print(f"hf-vq: error: {one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        return USER_ERROR_STATUS
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
