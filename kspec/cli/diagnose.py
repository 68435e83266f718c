"""``kspec diagnose SPEC|RUN``: per-layer statistics and findings from one probe pass."""

from __future__ import annotations

import json
from pathlib import Path

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "diagnose", help="find vanishing gradients, dead or saturated units, bad "
        "initialization (no training)",
        description="Run one forward/backward pass on probe batches of the training split "
        "- for a SPEC at its initial weights, for a RUN directory at its trained weights - "
        "and print a per-layer table (activation mean/std, dead ReLU units, saturated "
        "sigmoid/tanh values, gradient and weight norms) and findings in plain words. "
        "Exit status: 0 when no finding reaches --fail-on, 1 when one does, 2 for a bad "
        "spec or data.")
    p.add_argument("target", metavar="SPEC|RUN")
    add_set_option(p)
    p.add_argument("--probe-batches", type=int, default=2, metavar="N",
                   help="batches of the training split in the probe (default: 2)")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="rows per probe batch (default: training.batch_size)")
    p.add_argument("--fail-on", choices=["warning", "error", "never"], default="warning",
                   help="exit with status 1 when a finding of this severity or worse is "
                   "present (default: warning)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--plot", metavar="FILE", help="where to write the PNG (default: "
                   "RUN/diagnose.png, or diagnose-NAME.png here for a spec)")
    p.add_argument("--no-plot", action="store_true", help="write no PNG")
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.errors import SpecError

    for flag, value in (("--probe-batches", args.probe_batches),
                        ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise SpecError(flag, "must be a positive integer", value=value)
    quiet_tensorflow()
    from kspec.diagnose.probe import diagnose
    from kspec.diagnose.runs import is_run_dir
    from kspec.rundir import RunDir
    from kspec.spec.loader import parse_overrides

    result = diagnose(args.target, overrides=parse_overrides(args.overrides),
                      probe_batches=args.probe_batches, batch_size=args.batch_size)
    plot = None
    if not args.no_plot:
        plot = Path(args.plot) if args.plot else (
            RunDir(args.target).diagnose_png if is_run_dir(args.target)
            else Path(f"diagnose-{result.name}.png"))
        result.plot(plot)
    if args.json:
        data = result.as_dict()
        data["plot"] = str(plot) if plot else None
        print(json.dumps(data, indent=1))
    else:
        print(result.text())
        if plot:
            print(f"\nplot     {plot}")
    return 1 if args.fail_on != "never" and result.fails(args.fail_on) else 0
