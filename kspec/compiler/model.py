"""Compile a spec into a ``keras.Model`` (functional, named inputs, layers and outputs).

A layer stack (optionally on a transfer ``base``) or a graph of blocks (``kspec.compiler.graph``).
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping, Sequence

from kspec import registry
from kspec.compiler.size import param_budget
from kspec.errors import SpecError, first_line
from kspec.spec import Spec
from kspec.validation import load_spec

InputLayers = Mapping[str, Sequence[Any]]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the backend so that weights and shuffles repeat.

    Seeds derived from the spec's (``seed + k`` of ensemble members and search executions)
    may pass 2**32 - 1, which NumPy refuses; they wrap around instead.
    """
    import keras

    keras.utils.set_random_seed(seed % 2**32)


def input_shapes(spec: Spec, inferred: Mapping[str, Sequence[int | None]] | None = None):
    """The shape of every model input: from the spec, else from the data."""
    shapes = {}
    for i, inp in enumerate(spec.model.inputs):
        shape = inp.shape if inp.shape is not None else (inferred or {}).get(inp.name)
        if shape is None:
            raise SpecError(
                f"model.inputs[{i}].shape",
                f"the shape of input {inp.name!r} is not given and there is no data to infer "
                "it from",
                valid="a list of dimensions without the batch, e.g. [28, 28, 1]",
            )
        shapes[inp.name] = tuple(shape)
    return shapes


def layer_name(layer_spec: Any, index: int) -> str:
    return layer_spec.name or f"{layer_spec.type}_{index}"


def build_model(
    spec: Spec | Any,
    shapes: Mapping[str, Sequence[int | None]] | None = None,
    input_layers: InputLayers | None = None,
    *,
    seed: bool = True,
):
    """Build the Keras model a spec describes.

    Args:
        spec: a Spec (or anything ``load_spec`` reads).
        shapes: input shapes inferred from data, for inputs whose shape the spec omits.
        input_layers: layers applied to each named input before the stack (fitted
            normalization, augmentation); they become part of the model. A layer with
            ``side_inputs`` (categorical columns joining a numeric input) adds those
            ``keras.Input``s to the model's inputs.
        seed: seed the backend with ``spec.seed`` first, so two builds have equal weights.

    Returns:
        An uncompiled functional ``keras.Model`` named after the spec.

    Example:
        >>> model = build_model(load_spec("specs/quickstart.yaml"))
        >>> model.output_names
        ['output']
    """

    spec = spec if isinstance(spec, Spec) else load_spec(spec)
    registry.load_builtins()
    if seed:
        set_seed(spec.seed)
    try:
        with param_budget(spec.model.max_params):
            return _build(spec, shapes, input_layers)
    except RecursionError as e:  # Keras walks a functional graph recursively
        raise SpecError("model", f"the model is too deep for Keras to build ({first_line(e)})",
                        valid="fewer layers in a chain (Keras handles several hundred)") from e


def _build(spec: Spec, shapes: Mapping[str, Sequence[int | None]] | None,
           input_layers: InputLayers | None):
    import keras

    from kspec.compiler.layers import build_layer
    from kspec.compiler.precision import float32_outputs

    resolved = input_shapes(spec, shapes)
    inputs = {
        inp.name: keras.Input(shape=resolved[inp.name], name=inp.name, dtype=inp.dtype)
        for inp in spec.model.inputs
    }
    tensors = {}
    side_inputs = []  # inputs that an input layer adds (categorical text columns)
    for name, x in inputs.items():
        for layer in (input_layers or {}).get(name, ()):
            x = layer(x)
            side_inputs += getattr(layer, "side_inputs", [])
        tensors[name] = x
    model_inputs = [*inputs.values(), *side_inputs]
    if spec.model.is_graph:
        from kspec.compiler.graph import build_graph

        outputs = build_graph(spec.model, tensors)
        try:
            return keras.Model(inputs=model_inputs,
                               outputs=outputs[0] if len(outputs) == 1 else outputs,
                               name=spec.name)
        except ValueError as e:  # e.g. two layers with one name
            raise SpecError("model", f"cannot assemble the graph: {first_line(e)}") from e
    (x,) = tensors.values()
    if spec.model.base is not None:
        from kspec.compiler.transfer import build_base

        x = build_base(spec.model.base, [x], "model.base", "base")
    layers = spec.model.layers
    for i, layer_spec in enumerate(layers):
        is_last = i == len(layers) - 1
        lname = layer_name(layer_spec, i)
        if is_last and layer_spec.name is None:
            lname = spec.model.output_name
        # Under mixed precision the output layer computes in float32 (the Keras guide's rule).
        with float32_outputs() if is_last else contextlib.nullcontext():
            x = build_layer(layer_spec, x, f"model.layers[{i}]", lname)
    try:
        return keras.Model(inputs=model_inputs, outputs=x, name=spec.name)
    except ValueError as e:  # e.g. a layer named like the input
        raise SpecError("model", f"cannot assemble the model: {first_line(e)}") from e
