"""The ``kspec`` command.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``. A SpecError or DataError is printed as
one clear message (no traceback) and exits with status 2; a failed export (ExportError,
including a failed parity check) exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order `kspec --help` lists them.
COMMANDS = ["validate", "fit", "tune", "summary", "schema", "components", "export", "predict",
            "diagnose", "report", "evaluate"]


def _parser() -> argparse.ArgumentParser:
    from kspec import __version__

    parser = argparse.ArgumentParser(
        prog="kspec",
        description="Declarative deep learning on Keras 3: validate, train, search and export "
        "models written as YAML/JSON specs.",
    )
    parser.add_argument("--version", action="version", version=f"kspec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"kspec.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    from kspec.errors import DataError, SpecError
    from kspec.exporter.errors import ExportError

    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (SpecError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ExportError as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
