"""The ``serving_default`` signature: named raw inputs in, named outputs out.

Input keys are the names of the model's ``keras.Input``s (the spec's input names) with their
dtypes and shapes, batch dimension free; output keys are the model's output names. Floating
inputs and outputs are float32 in the signature whatever the model computes in (mixed
precision, a float16 input). The model is called with ``training=False`` inside the
signature, so augmentation and dropout layers are inert in every export (Keras's random
layers would otherwise default to their training behaviour when called outside ``fit``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from kspec.exporter.errors import ExportError

SIGNATURE_KEY = "serving_default"
CLASS_SUFFIX = "_class"
PROBABILITY_SUFFIX = "_probability"


def input_names(model: Any) -> list[str]:
    names = [t.name for t in model.inputs]
    if len(set(names)) != len(names):
        raise ExportError(f"the model's inputs need distinct names to become signature keys "
                          f"(received: {names})")
    return names


def output_names(model: Any) -> list[str]:
    output = model.output
    if isinstance(output, dict):
        return list(output)
    return list(model.output_names)


def describe_inputs(model: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"dtype": ..., "shape": [None, ...]}}`` for every model input."""
    return {t.name: {"dtype": str(t.dtype), "shape": [None, *list(t.shape[1:])]}
            for t in model.inputs}


def describe_outputs(model: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"dtype": ..., "shape": [None, ...]}}`` for every model output."""
    output = model.output
    pairs = (output.items() if isinstance(output, dict)
             else zip(model.output_names, model.outputs))
    return {n: {"dtype": str(t.dtype), "shape": [None, *list(t.shape[1:])]} for n, t in pairs}


def _output_layer(model: Any, name: str):
    """The layer that computes output ``name``, looking through pass-through layers (graph
    models name their outputs with an ``Identity`` layer after the head)."""
    import keras

    output = model.output
    if isinstance(output, dict):
        tensor = output[name]
    else:
        tensor = dict(zip(model.output_names, model.outputs))[name]
    # Private: Keras has no public way to walk a functional graph backwards from an output
    # tensor (checked against Keras 3.15: KerasTensor._keras_history, Layer._inbound_nodes).
    layer = tensor._keras_history.operation
    while (isinstance(layer, keras.layers.Identity)
           or (isinstance(layer, keras.layers.Activation) and _activation_name(layer) == "linear")):
        node = layer._inbound_nodes[tensor._keras_history.node_index]
        if len(node.input_tensors) != 1:
            break
        tensor = node.input_tensors[0]
        layer = tensor._keras_history.operation
    return layer, tensor


def _activation_name(layer: Any) -> str | None:
    import keras

    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    try:
        return keras.activations.serialize(act)
    except Exception:  # an unregistered custom callable: treat its outputs as scores
        return getattr(act, "__name__", None)


def class_output_plan(model: Any, class_outputs: bool | Iterable[str]) -> dict[str, str]:
    """Which outputs get ``NAME_class`` / ``NAME_probability`` companions, and how.

    Args:
        model: the Keras model.
        class_outputs: False (none); True (every output whose last layer ends in softmax or
            sigmoid); or the output names to use (outputs without softmax/sigmoid are taken
            as logits).

    Returns:
        ``{output_name: kind}`` with kind one of ``softmax``, ``sigmoid``, ``logits``
        (several classes) or ``logit`` (one binary unit).
    """
    if not class_outputs:
        return {}
    names = output_names(model)
    if class_outputs is True:
        wanted, automatic = names, True
    else:
        wanted, automatic = list(class_outputs), False
        unknown = [n for n in wanted if n not in names]
        if unknown:
            raise ExportError(f"class outputs {unknown} are not outputs of the model "
                              f"(expected some of: {names})")
    plan = {}
    for name in wanted:
        layer, tensor = _output_layer(model, name)
        act = _activation_name(layer)
        units = tensor.shape[-1]
        if len(tensor.shape) != 2 or units is None:
            if automatic:
                continue
            raise ExportError(f"output {name!r} has shape {tuple(tensor.shape)}; class outputs "
                              "need one score per class, shape (batch, classes)")
        if act in ("softmax", "sigmoid"):
            plan[name] = act
        elif not automatic:
            plan[name] = "logits" if units > 1 else "logit"
    taken = [n + suffix for n in plan for suffix in (CLASS_SUFFIX, PROBABILITY_SUFFIX)
             if n + suffix in names]
    if taken:
        raise ExportError(f"class outputs would replace the model's own outputs {taken}; "
                          "rename those outputs")
    if class_outputs is True and not plan:
        raise ExportError(f"class outputs asked for, but no output ends in softmax or sigmoid "
                          f"(outputs: {names}); name the outputs holding logits instead")
    return plan


def add_class_outputs(outputs: dict[str, Any], plan: dict[str, str]) -> dict[str, Any]:
    """Add arg-max class (int64) and its probability for the planned outputs (TF ops)."""
    import tensorflow as tf

    out = dict(outputs)
    for name, kind in plan.items():
        scores = outputs[name]
        if kind in ("sigmoid", "logit"):
            p = tf.sigmoid(scores) if kind == "logit" else scores
            p = p[:, 0] if p.shape[-1] == 1 else p
            if len(p.shape) == 1:  # one binary unit: class 1 when p > 0.5
                out[name + CLASS_SUFFIX] = tf.cast(p > 0.5, tf.int64)
                out[name + PROBABILITY_SUFFIX] = tf.where(p > 0.5, p, 1.0 - p)
                continue
            probs = p  # independent sigmoids (multi-label): report the strongest
        else:
            probs = tf.nn.softmax(scores) if kind == "logits" else scores
        out[name + CLASS_SUFFIX] = tf.argmax(probs, axis=-1, output_type=tf.int64)
        out[name + PROBABILITY_SUFFIX] = tf.reduce_max(probs, axis=-1)
    return out


def signature_dtype(dtype: Any) -> str:
    """The dtype a signature uses for a model tensor: float32 for every floating dtype
    (a float16 input or a mixed-precision output), else the tensor's own."""
    name = str(dtype).replace("tf.", "")
    return "float32" if name in ("float16", "bfloat16", "float32", "float64") else name


def serving_function(model: Any, plan: dict[str, str] | None = None):
    """``fn(inputs: dict) -> dict`` calling the model in inference mode; floating inputs
    and outputs are float32 whatever the model computes in."""
    import keras
    import tensorflow as tf

    structure = model.input
    names = output_names(model)

    def as_input(t, inputs):
        x = inputs[t.name]
        return tf.cast(x, t.dtype) if x.dtype != tf.as_dtype(t.dtype) else x

    def as_output(y):
        y = tf.convert_to_tensor(y)
        return tf.cast(y, tf.float32) if y.dtype.is_floating and y.dtype != tf.float32 else y

    def serve(inputs):
        args = keras.tree.map_structure(lambda t: as_input(t, inputs), structure)
        result = model(args, training=False)
        if isinstance(result, dict):
            outputs = dict(result)
        elif isinstance(result, (list, tuple)):
            outputs = dict(zip(names, result))
        else:
            outputs = {names[0]: result}
        outputs = {k: as_output(v) for k, v in outputs.items()}
        return add_class_outputs(outputs, plan or {})

    return serve


def write_savedmodel(model: Any, path: str | Path, plan: dict[str, str] | None = None) -> None:
    """Write ``model`` as a SavedModel with one ``serving_default`` signature."""
    import keras
    import tensorflow as tf

    input_names(model)  # distinct names, or the dict below would silently drop one
    specs = {t.name: tf.TensorSpec([None, *t.shape[1:]], dtype=signature_dtype(t.dtype),
                                   name=t.name) for t in model.inputs}
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_KEY, serving_function(model, plan), input_signature=[specs])
    archive.write_out(str(path), verbose=False)


def describe_signature(fn: Any) -> dict[str, dict[str, Any]]:
    """Inputs and outputs of a loaded concrete signature, as plain data."""
    _, kwargs = fn.structured_input_signature

    def spec(s):
        return {"dtype": s.dtype.name, "shape": s.shape.as_list()}

    return {"inputs": {k: spec(v) for k, v in sorted(kwargs.items())},
            "outputs": {k: spec(v) for k, v in sorted(fn.structured_outputs.items())}}
