"""``kspec report RUN``: training, dev and test error, bias, variance and the next step."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="bias/variance report of a run and the next step to take",
        description="Read a finished run's metrics and print its training, dev (validation) "
        "and test error (1 - accuracy for a classifier, the loss otherwise), the avoidable "
        "bias (against the human-level or target error), the variance, the dev-test gap, "
        "and the next step from the standard recipe. A run with data.groups also gets its "
        "subgroup table (accuracy per group and per label x group cell).")
    p.add_argument("run_dir", metavar="RUN")
    p.add_argument("--human-error", type=float, metavar="E",
                   help="human-level (or target) error; default: the spec's "
                   "training.human_error, else 0")
    p.add_argument("--tolerance", type=float, metavar="T",
                   help="the smallest gap that counts (default: 0.01 for error rates, 10%% "
                   "of the reference error for losses)")
    p.add_argument("--no-subgroups", action="store_true",
                   help="skip the subgroup table (it loads the model and the data)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.diagnose.report import bias_variance
    from kspec.diagnose.runs import read_run

    groups = not args.no_subgroups and read_run(args.run_dir).spec.data.groups is not None
    if groups:
        from kspec.cli.common import quiet_tensorflow

        quiet_tensorflow()
    report = bias_variance(args.run_dir, args.human_error, tolerance=args.tolerance,
                           subgroups=groups)
    print(json.dumps(report.as_dict(), indent=1) if args.json else report.text())
    return 0
