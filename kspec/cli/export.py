"""``kspec export RUN_DIR --out MODELS_DIR``: a checked, versioned model for serving."""

from __future__ import annotations

import sys

from kspec.cli.common import quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a trained run as a SavedModel (TF Serving layout), TFLite or "
        ".keras",
        description="Write RUN_DIR's model to MODELS_DIR/NAME/VERSION/ with a serving_default "
        "signature named after the spec's inputs and outputs. The export is loaded back, run "
        "on real inputs and compared with the Keras model before it is moved into place; a "
        "failed check leaves nothing behind.")
    p.add_argument("source", metavar="RUN_DIR", help="a run directory or a .keras file")
    p.add_argument("--out", default="models", metavar="MODELS_DIR",
                   help="models folder (default: models)")
    p.add_argument("--name", help="model name (default: the spec's name)")
    p.add_argument("--version", type=int, help="version number (default: the next free one)")
    p.add_argument("--format", default="savedmodel", choices=["savedmodel", "tflite", "keras"])
    p.add_argument("--fold-batchnorm", action="store_true",
                   help="fold batch norms that follow a linear dense/conv layer into its weights")
    p.add_argument("--class-outputs", nargs="*", metavar="OUTPUT", default=None,
                   help="add OUTPUT_class (arg-max) and OUTPUT_probability outputs; with no "
                   "names: every softmax/sigmoid output")
    p.add_argument("--samples", type=int, default=64, help="rows used by the parity check")
    p.add_argument("--rtol", type=float, help="relative tolerance of the check")
    p.add_argument("--atol", type=float, help="absolute tolerance of the check")
    p.set_defaults(run=run)


def run(args) -> int:
    quiet_tensorflow()
    from kspec.exporter.api import export
    from kspec.exporter.errors import ExportError, ExportWriteError, ParityError

    class_outputs = (False if args.class_outputs is None
                     else (args.class_outputs or True))
    try:
        result = export(args.source, args.out, name=args.name, version=args.version,
                        format=args.format, fold_batchnorm=args.fold_batchnorm,
                        class_outputs=class_outputs, samples=args.samples, rtol=args.rtol,
                        atol=args.atol)
    except ParityError as e:
        print(f"export failed: {e}; nothing was written", file=sys.stderr)
        return 1
    except ExportWriteError as e:
        print(f"export failed: {e}", file=sys.stderr)
        return 1
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0
