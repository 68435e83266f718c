"""``kspec evaluate RUN|EXPORT --under ...``: the test score under fixed input transforms."""

from __future__ import annotations

import json
from pathlib import Path

from kspec.cli.common import quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="score a run or an export on the test split under input transforms",
        description="Evaluate the test split clean and under each transform (flip, "
        "rotate=DEG, translate=F, zoom=F, noise=S, brightness=B, contrast=C, grayscale, "
        "blur=SIGMA, outline, border=W, distort=A, invert; intensities are fractions of the "
        "inputs' value range), and print and plot the score per transform and its drop "
        "from the clean score. A RUN uses its Keras model; an EXPORT (MODELS_DIR/NAME or a "
        "version folder) runs through its SavedModel signature without Keras. See "
        "docs/diagnostics.md.")
    p.add_argument("target", metavar="RUN|EXPORT")
    p.add_argument("--under", nargs="+", required=True, metavar="T",
                   help="transforms, comma- or space-separated: flip,rotate=15,noise=0.1")
    p.add_argument("--split", default="test", choices=["test", "validation", "train"],
                   help="the split to score (default: test)")
    p.add_argument("--seed", type=int, help="noise seed (default: the spec's seed)")
    p.add_argument("--out", metavar="DIR", help="write robustness.csv and robustness.png "
                   "here (default: the run directory; an export writes nothing without it)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.diagnose.transforms import parse_transforms

    parse_transforms(args.under)  # a typo fails before TensorFlow loads
    quiet_tensorflow()
    from kspec.diagnose.robustness import evaluate_under
    from kspec.diagnose.runs import is_run_dir

    result = evaluate_under(args.target, args.under, split=args.split, seed=args.seed)
    out = args.out or (args.target if is_run_dir(args.target) else None)
    written = result.write(Path(out)) if out else []
    if args.json:
        print(json.dumps({**result.as_dict(), "files": [str(p) for p in written]}, indent=1))
    else:
        print(result.text())
        for path in written:
            print(f"wrote    {path}")
    return 0
