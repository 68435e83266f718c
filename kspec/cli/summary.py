"""``kspec summary SPEC``: the Keras model summary of a spec."""

from __future__ import annotations

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print the Keras model summary of a spec",
                       description="Build the model (input shapes from the spec, else from its "
                       "data) and print Keras's summary with parameter counts, fitted "
                       "preprocessing included.")
    p.add_argument("spec", metavar="SPEC")
    add_set_option(p)
    p.set_defaults(run=run)


def run(args) -> int:
    quiet_tensorflow()
    from kspec.compiler.model import build_model, set_seed
    from kspec.data.preprocess import input_layers
    from kspec.validation import load_spec

    spec = load_spec(args.spec, args.overrides)
    if all(i.shape is not None for i in spec.model.inputs) and not _needs_data(spec):
        # Augmentation layers need no data; they are part of the model, so show them.
        layers = input_layers(spec, None)
        model = build_model(spec, None, layers)
    else:
        from kspec.train.loop import load_training_data

        set_seed(spec.seed)  # the training split (and its statistics) as `kspec fit` has it
        data = load_training_data(spec)
        layers = input_layers(spec, data)  # shapes and fitted statistics come from the data
        model = build_model(spec, data.input_shapes(), layers)
    model.summary()
    print(fitted_note(model, layers))
    return 0


def fitted_note(model, layers) -> str:
    """One line relating the counts above to ``kspec.build(spec)``, which builds the model
    without the data, so without the layers of fitted preprocessing and their statistics."""
    fitted = [(layer.name, layer.count_params()) for group in layers.values()
              for layer in group if layer.count_params()]
    total = model.count_params()
    if not fitted:
        return f" kspec.build(spec) has the same count: {total:,} params"
    n = sum(count for _, count in fitted)
    names = ", ".join(f"{name} ({count:,})" for name, count in fitted)
    return (f" {n:,} of these params are statistics fitted on the training split (not "
            f"trained): {names}; kspec.build(spec), without data, leaves those layers out: "
            f"{total - n:,} params")


def _needs_data(spec) -> bool:
    """Fitted preprocessing needs the training data even when the shapes are given."""
    return bool(getattr(spec.data, "preprocessing", None))
