"""The `tome` command line.

Each module in this package owns a group of commands and exposes `add_commands(subparsers)`;
every subcommand sets `run=<function(args) -> exit code>` as its default. Modules import their
heavy dependencies (torch, chromadb) inside the run functions so `tome --help` stays instant.
"""

import argparse
import importlib
import pkgutil
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tome",
        description="Ask questions of, and summarize, long contracts and technical manuals.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}").add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except KeyboardInterrupt:
        print("tome: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tome docs | head` closes our stdout early
        return 0
