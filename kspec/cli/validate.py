"""``kspec validate SPEC...``: check specs without importing TensorFlow."""

from __future__ import annotations

import sys
from pathlib import Path

from kspec.cli.common import add_set_option


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="check specs (instant; no TensorFlow)",
                       description="Validate one or more specs against the schema and the "
                       "registries of names. Never imports TensorFlow.")
    p.add_argument("specs", nargs="+", metavar="SPEC")
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import warnings

    from kspec.errors import SpecError
    from kspec.validation import load_spec, missing_files

    failed = 0
    for path in args.specs:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                spec = load_spec(Path(path), args.overrides)  # a file, whatever its suffix
        except SpecError as e:
            failed += 1
            text = str(e)
            print(text if text.startswith(path) else f"{path}: {text}", file=sys.stderr)
        else:
            notes = [str(w.message) for w in caught
                     if issubclass(w.category, UserWarning)]  # SpecWarning, space notices
            for note in notes + missing_files(spec):
                print(f"{path}: warning: {note}", file=sys.stderr)
            print(f"{path}: ok ({spec.name})")
    return 2 if failed else 0
