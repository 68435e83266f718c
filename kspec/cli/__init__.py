"""The ``kspec`` command.

Each sub-command lives in its own module of this package with two functions:
``add_parser(subparsers)`` and ``run(args) -> int``.

Exit statuses: 0 success; 1 a failed export (its check failed, or the disk is full or
read-only: ``export failed: ...``); 2 a bad spec, bad data or a bad model file (``error:
...``), usage errors, and a run stopped by a full or read-only disk (``error: run RUN
stopped: cannot write FILE: ...``); 3 anything unexpected (a kspec bug, or the machine:
memory): one line ``kspec COMMAND: unexpected error: CAUSE`` names the
log file holding the traceback (``RUN_DIR/error.log`` when a run directory exists, else a
file in the temporary folder); 130 interrupted. ``--debug`` (before or after the command)
or ``KSPEC_DEBUG=1`` also prints the traceback.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import os
import sys
import tempfile
import traceback
from pathlib import Path

# Sub-command modules, in the order `kspec --help` lists them.
COMMANDS = ["validate", "fit", "tune", "summary", "schema", "components", "export", "predict",
            "serve", "diagnose", "report", "evaluate"]

EXIT_UNEXPECTED = 3
DEBUG_ENV = "KSPEC_DEBUG"
_DEBUG_HELP = f"print the traceback of an unexpected error (also: {DEBUG_ENV}=1)"


def _parser() -> argparse.ArgumentParser:
    from kspec import __version__

    parser = argparse.ArgumentParser(
        prog="kspec",
        description="Declarative deep learning on Keras 3: validate, train, search and export "
        "models written as YAML/JSON specs.",
    )
    parser.add_argument("--version", action="version", version=f"kspec {__version__}")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"kspec.cli.{name}")
        module.add_parser(sub)
        # After the command too; SUPPRESS keeps the sub-parser from resetting a --debug
        # given before the command.
        sub.choices[name].add_argument("--debug", action="store_true",
                                       default=argparse.SUPPRESS, help=_DEBUG_HELP)
    return parser


def _debug_env() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if a in COMMANDS), "")
    debug = _debug_env() or "--debug" in argv
    try:
        args = _parser().parse_args(argv)
        command, debug = args.command, debug or bool(getattr(args, "debug", False))
        return _run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`kspec ... | head`): stop quietly, as Python's docs advise.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, a log file
        return report_unexpected(command, e, debug)


def console() -> None:
    """The ``kspec`` console script (and ``python -m kspec.cli``): :func:`main`, then exit.

    Once a command has finished and everything it wrote is closed, the process ends with
    ``os._exit`` when TensorFlow was imported: TensorFlow's interpreter teardown (its thread
    pools, static destructors and a garbage collection over every Python object it created)
    adds about 1 s to every command and does nothing for the user (measured in
    ``benchmarks/bench_process.py``). The standard streams and logging are flushed first.
    ``KSPEC_FULL_EXIT=1`` keeps the normal exit (for profilers or coverage tools that write
    their results at exit). ``main()`` itself never exits, so it is safe to call in-process.
    """
    status = main()
    if "tensorflow" in sys.modules and not os.environ.get("KSPEC_FULL_EXIT"):
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing left to deliver
                pass
        os._exit(status)
    sys.exit(status)


def _run(args: argparse.Namespace) -> int:
    from kspec.errors import DataError, SpecError
    from kspec.exporter.errors import ExportError

    try:
        return int(args.run(args) or 0)
    except (SpecError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ExportError as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1


def report_unexpected(command: str, error: BaseException, debug: bool = False) -> int:
    """Print one line naming the command and the cause, keep the traceback in a log file
    (printed too with ``debug``), and return :data:`EXIT_UNEXPECTED`."""
    from kspec.errors import first_line

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if debug:
        print(text, file=sys.stderr, end="")
    log = _write_log(text, command, getattr(error, "kspec_run_dir", None))
    cause = f"{type(error).__name__}: {first_line(error)}"
    where = (f"the traceback is in {log}" if log is not None
             else "the traceback could not be written to a file")
    if not debug:
        where += f"; --debug or {DEBUG_ENV}=1 prints it"
    name = f"kspec {command}" if command else "kspec"
    print(f"{name}: unexpected error: {cause} ({where})", file=sys.stderr)
    return EXIT_UNEXPECTED


def _write_log(text: str, command: str, run_dir: str | None) -> Path | None:
    """The traceback in ``RUN_DIR/error.log``, else in the temporary folder; None when
    neither can be written (a full disk)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    header = f"kspec {command} failed at {stamp}\ncommand: {' '.join(sys.argv)}\n\n"
    candidates = []
    if run_dir is not None:
        from kspec.rundir import RunDir

        candidates.append(RunDir(run_dir).error_log)
    candidates.append(Path(tempfile.gettempdir()) / f"kspec-error-{stamp}-{os.getpid()}.log")
    for path in candidates:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(header + text)
            return path
        except OSError:
            continue
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
