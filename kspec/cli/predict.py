"""``kspec predict EXPORT_OR_RUN --input FILE``: smoke-test a served model."""

from __future__ import annotations

import sys

from kspec.cli.common import quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "predict", help="run an export or a run directory on CSV / NPZ / image files",
        description="Load MODELS_DIR/NAME (latest version), a version folder, a .tflite or "
        ".keras file, or a run directory, and predict on raw inputs: a CSV (one row per "
        "example; the spec's feature columns), an NPZ (one array per input name, or 'x') or "
        "image files / a folder of images (resized to the input's height and width). "
        "SavedModels run through their serving_default signature, without Keras, and as "
        "they are (a graph can read and write files): load only models you trust. "
        "Classifier outputs get OUTPUT_class (arg-max) and, when the class names are known, "
        "OUTPUT_label.")
    p.add_argument("model", metavar="EXPORT_OR_RUN")
    p.add_argument("--input", "-i", dest="inputs", nargs="+", required=True, metavar="FILE")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write all predictions to .csv, .npz or .json instead of printing")
    p.add_argument("--limit", type=int, default=20, help="rows printed (default: 20)")
    p.set_defaults(run=run)


def run(args) -> int:
    quiet_tensorflow()
    from kspec.exporter.errors import ExportError
    from kspec.exporter.predict import (
        format_predictions,
        load_predictor,
        predictions,
        read_inputs,
        write_predictions,
    )

    try:
        predictor = load_predictor(args.model)
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    inputs = read_inputs(args.inputs, predictor)
    outputs = predictions(predictor, inputs)
    rows = len(next(iter(inputs.values())))
    print(f"{predictor.kind} {predictor.path}: {rows} rows", file=sys.stderr)
    if args.output:
        write_predictions(outputs, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(format_predictions(outputs, args.limit))
    return 0
