"""``kspec fit SPEC``: train a spec and write a run directory."""

from __future__ import annotations

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="train a spec; writes a run directory",
                       description="Build the model a spec describes, train it with Keras "
                       "progress bars, evaluate every split and write a run directory "
                       "(resolved spec, model.keras, history CSV/PNG, metrics, versions).")
    p.add_argument("spec", metavar="SPEC", nargs="?", help="the spec (omit with --resume)")
    add_set_option(p)
    p.add_argument("--out", default="runs", help="folder for run directories (default: runs)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run from its last finished epoch")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    if (args.spec is None) == (args.resume is None):
        from kspec.errors import SpecError

        raise SpecError("fit", "give either a SPEC or --resume RUN_DIR (not both)")
    quiet_tensorflow()
    from kspec.spec.loader import parse_overrides
    from kspec.train.fit import fit

    overrides = list(args.overrides)
    if args.quiet:
        overrides.append("training.verbose=0")
    result = fit(args.spec, out=args.out, resume=args.resume,
                 overrides=parse_overrides(overrides))
    print()
    print(result.summary())
    return 0

