"""``kspec summary SPEC``: the Keras model summary of a spec."""

from __future__ import annotations

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print the Keras model summary of a spec",
                       description="Build the model (input shapes from the spec, else from its "
                       "data) and print Keras's summary with parameter counts.")
    p.add_argument("spec", metavar="SPEC")
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    quiet_tensorflow()
    from kspec.compiler.model import build_model
    from kspec.data.preprocess import input_layers
    from kspec.train.fit import prepare
    from kspec.validation import load_spec

    spec = load_spec(args.spec, args.overrides)
    if all(i.shape is not None for i in spec.model.inputs) and not _needs_data(spec):
        # Augmentation layers need no data; they are part of the model, so show them.
        model = build_model(spec, None, input_layers(spec, None))
    else:
        _, _, model = prepare(spec)  # shapes and fitted statistics come from the data
    model.summary()
    return 0


def _needs_data(spec) -> bool:
    """Fitted preprocessing needs the training data even when the shapes are given."""
    return bool(getattr(spec.data, "preprocessing", None))
