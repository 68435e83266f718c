"""``kspec fit SPEC``: train a spec and write a run directory; ``--resume`` continues one."""

from __future__ import annotations

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser("fit", help="train a spec; writes a run directory",
                       description="Build the model a spec describes, train it with Keras "
                       "progress bars, evaluate every split and write a run directory "
                       "(resolved spec, model.keras, history CSV/PNG, metrics, versions).")
    p.add_argument("spec", metavar="SPEC", nargs="?", help="the spec (omit with --resume)")
    add_set_option(p)
    p.add_argument("--out", default=None,
                   help="folder for run directories (default: runs; with --more-epochs, the "
                   "folder of the run continued)")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run in place from its last finished epoch "
                   "(a finished run is refused and left unchanged)")
    p.add_argument("--more-epochs", metavar="N", type=int, dest="more_epochs",
                   help="with --resume of a finished run: train it N more epochs from its "
                   "model into a new run directory (--set may change training.* values)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.errors import SpecError

    if (args.spec is None) == (args.resume is None):
        raise SpecError("fit", "give either a SPEC or --resume RUN_DIR (not both)")
    if args.more_epochs is not None and args.resume is None:
        raise SpecError("--more-epochs", "continues a finished run: kspec fit --resume RUN_DIR "
                        "--more-epochs N")
    from kspec.spec.loader import parse_overrides

    overrides = list(args.overrides)
    if args.quiet:
        overrides.append("training.verbose=0")
    if args.resume is not None:
        from kspec.train.resume import plan_resume

        # Refused requests (a finished run, --set on a resume) answer before TensorFlow loads.
        plan_resume(args.resume, args.more_epochs, parse_overrides(overrides))
    quiet_tensorflow()
    from kspec.train.fit import fit

    result = fit(args.spec, out=args.out, resume=args.resume, more_epochs=args.more_epochs,
                 overrides=parse_overrides(overrides))
    print()
    print(result.summary())
    return 0
