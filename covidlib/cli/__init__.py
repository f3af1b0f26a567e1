"""The ``covidlib`` command line.

Each command group lives in its own module of this package and exposes
``register(subparsers)``; the module adds its sub-command(s) and sets ``func`` on the
parsed namespace. ``main`` returns that function's exit code.

Example:
    $ covidlib datasets list
    $ covidlib phantom --n 40 --out /tmp/phantom
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# One module per command group; each defines register(subparsers).
COMMAND_MODULES: tuple[str, ...] = (
    "covidlib.cli.datasets",
    "covidlib.cli.phantom",
    "covidlib.cli.letterbox",
    "covidlib.cli.models",
    "covidlib.cli.cv",
    "covidlib.cli.report",
    "covidlib.cli.compare",
    "covidlib.cli.predict",
    "covidlib.cli.grid",
    "covidlib.cli.reproduce",
    "covidlib.cli.pretrain",
    "covidlib.cli.tsne",
    "covidlib.cli.gradcam",
    "covidlib.cli.localize",
    "covidlib.cli.audit",
    "covidlib.cli.evaluate",
    "covidlib.cli.trust",
)


class CommandError(Exception):
    """An error a command reports to the user as one line, with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every command group registered."""
    from covidlib import __version__

    parser = argparse.ArgumentParser(
        prog="covidlib",
        description="Deep transfer learning for COVID-19 detection from chest CT.",
    )
    parser.add_argument("--version", action="version", version=f"covidlib {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CommandError as error:
        print(f"covidlib {args.command}: error: {error}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as error:
        # covidlib's errors (bad layout, unreadable file, bad value...) name the file or value
        # and what to do; a user of the command line needs that line, not a traceback.
        print(f"covidlib {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
