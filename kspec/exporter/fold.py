"""Fold batch normalization into the dense or convolution layer before it.

At inference a BatchNormalization layer is the affine map
``y = gamma * (x - mean) / sqrt(var + eps) + beta``. When ``x = W u + b`` comes straight from
a Dense/Conv layer with a linear activation, the two collapse into one layer with

    W' = W * s,   b' = (b - mean) * s + beta,   s = gamma / sqrt(var + eps)

(``s`` scales the kernel's output-channel axis). The folded model computes the same
function with one layer fewer per fold. A batch norm cannot be folded when a
non-linearity sits between it and the layer (``dense(activation=relu) -> batch_norm``),
when the layer's output also feeds something else, or when either layer is shared; those
are reported as skipped with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class FoldResult:
    """What :func:`fold_batch_norm` did.

    Attributes:
        model: the folded model (the input model is left unchanged).
        folded: ``(batch_norm_name, layer_name)`` pairs that were merged.
        skipped: ``(batch_norm_name, reason)`` pairs that were left in place.
    """

    model: Any
    folded: list[tuple[str, str]]
    skipped: list[tuple[str, str]]

    def as_dict(self) -> dict[str, Any]:
        return {"folded": [{"batch_norm": b, "into": d} for b, d in self.folded],
                "skipped": [{"batch_norm": b, "reason": r} for b, r in self.skipped]}


def _foldable_classes():
    import keras

    # Exact classes only: transposed, depthwise and separable convolutions lay their kernels
    # out differently, so scaling the last kernel axis would be wrong for them.
    return (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _is_linear(activation: Any) -> bool:
    import keras

    return activation is None or keras.activations.serialize(activation) in ("linear", None)


def _channel_axis(layer: Any, rank: int) -> int:
    fmt = getattr(layer, "data_format", "channels_last")
    return 1 if fmt == "channels_first" else rank - 1


def _as_functional(model: Any):
    """A Sequential model as the equivalent functional model (same layer objects)."""
    import keras

    if not isinstance(model, keras.Sequential):
        return model
    x = inputs = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype,
                             name=model.inputs[0].name)
    for layer in model.layers:
        x = layer(x)
    return keras.Model(inputs, x, name=model.name)


def _nodes_in(model: Any, layer: Any) -> list[Any]:
    """The calls of ``layer`` that belong to ``model``'s graph (a layer may be shared with
    other models, e.g. a clone made by an earlier fold)."""
    # Private: which calls of a shared layer belong to this model is only known to the
    # functional graph (checked against Keras 3.15: make_node_key, Functional._nodes).
    from keras.src.ops.function import make_node_key

    return [n for i, n in enumerate(layer._inbound_nodes)
            if make_node_key(layer, i) in model._nodes]


def _plan(model: Any) -> tuple[dict[int, Any], list[tuple[str, str]]]:
    """Which batch norms can fold, as ``{id(bn): producing_layer}``, and why others cannot."""
    import keras

    output_ids = {id(t) for t in model.outputs}
    consumers: dict[int, int] = {}
    # Private: Functional._operations also lists ops such as keras.ops.add, which
    # model.layers leaves out (checked against Keras 3.15).
    for op in model._operations:
        for node in _nodes_in(model, op):
            for t in node.input_tensors:
                consumers[id(t)] = consumers.get(id(t), 0) + 1

    plan, skipped = {}, []
    for bn in model.layers:
        if isinstance(bn, keras.Model):  # e.g. a pretrained base in transfer learning
            skipped += [(f"{bn.name}/{inner.name}", f"inside the nested model {bn.name!r} "
                         "(only the top-level graph is folded)")
                        # Private: every nested layer (Keras 3.15 has no public walk)
                        for inner in bn._flatten_layers(include_self=False)
                        if isinstance(inner, keras.layers.BatchNormalization)]
            continue
        if not isinstance(bn, keras.layers.BatchNormalization):
            continue
        bn_nodes = _nodes_in(model, bn)
        if len(bn_nodes) != 1:
            skipped.append((bn.name, "the layer is used more than once"))
            continue
        (x,) = bn_nodes[0].input_tensors
        prev = x._keras_history.operation  # private: the producing layer (Keras 3.15)
        if not isinstance(prev, _foldable_classes()) or type(prev) not in _foldable_classes():
            skipped.append((bn.name, f"it follows {type(prev).__name__} {prev.name!r}, not a "
                            "Dense or Conv layer"))
            continue
        if not _is_linear(prev.activation):
            act = keras.activations.serialize(prev.activation)
            skipped.append((bn.name, f"{prev.name!r} applies activation {act!r} before it "
                            "(only a linear layer can absorb batch norm)"))
            continue
        if getattr(prev, "lora_enabled", False) or getattr(prev, "quantization_mode", None):
            skipped.append((bn.name, f"{prev.name!r} is LoRA-enabled or quantized"))
            continue
        if len(_nodes_in(model, prev)) != 1:
            skipped.append((bn.name, f"{prev.name!r} is used more than once"))
            continue
        if consumers.get(id(x), 0) != 1 or id(x) in output_ids:
            skipped.append((bn.name, f"the output of {prev.name!r} is also used elsewhere"))
            continue
        rank = len(x.shape)
        if bn.axis not in (_channel_axis(prev, rank), _channel_axis(prev, rank) - rank):
            skipped.append((bn.name, f"it normalizes axis {bn.axis}, not the channel axis of "
                            f"{prev.name!r}"))
            continue
        plan[id(bn)] = prev
    return plan, skipped


def _folded_layer(prev: Any, bn: Any, input_shape: Any, name: str):
    """A copy of ``prev`` with ``bn`` merged into its kernel and bias."""
    config = prev.get_config()
    config["use_bias"] = True
    config["name"] = name
    layer = type(prev).from_config(config)
    layer.build(input_shape)
    kernel = np.asarray(prev.kernel, dtype=np.float64)
    bias = (np.asarray(prev.bias, dtype=np.float64) if prev.use_bias
            else np.zeros(kernel.shape[-1]))
    mean = np.asarray(bn.moving_mean, dtype=np.float64)
    var = np.asarray(bn.moving_variance, dtype=np.float64)
    gamma = np.asarray(bn.gamma, dtype=np.float64) if bn.scale else np.ones_like(mean)
    beta = np.asarray(bn.beta, dtype=np.float64) if bn.center else np.zeros_like(mean)
    scale = gamma / np.sqrt(var + bn.epsilon)
    # Both Dense (in, out) and Conv (..., in, out) kernels keep output channels last.
    dtype = np.dtype(prev.kernel.dtype)
    layer.kernel.assign((kernel * scale).astype(dtype))
    layer.bias.assign(((bias - mean) * scale + beta).astype(dtype))
    return layer


def fold_batch_norm(model: Any) -> FoldResult:
    """Fold every batch norm that directly follows a linear Dense/Conv layer.

    Args:
        model: a functional or Sequential ``keras.Model`` (it is not modified).

    Returns:
        A :class:`FoldResult` with the new model and which layers were folded or skipped.
        Layers that are not folded are shared with the input model, not copied.

    Example:
        >>> result = fold_batch_norm(model)
        >>> result.folded
        [('batch_norm_1', 'dense_0')]
    """
    import keras

    model = _as_functional(model)
    plan, skipped = _plan(model)
    if not plan:
        return FoldResult(model, [], skipped)
    replacements: dict[int, Any] = {}
    folded = []
    for bn in model.layers:
        prev = plan.get(id(bn))
        if prev is None:
            continue
        (x,) = _nodes_in(model, prev)[0].input_tensors
        # A batch norm that is a model output lends its name to the folded layer, so the
        # output (and the serving signature key derived from it) keeps its name.
        bn_out = _nodes_in(model, bn)[0].output_tensors[0]
        is_output = any(t is bn_out for t in model.outputs)
        replacements[id(prev)] = _folded_layer(prev, bn, x.shape,
                                               bn.name if is_output else prev.name)
        folded.append((bn.name, prev.name))
    folded_bns = set(plan)

    def clone(layer):
        # Unchanged layers are reused as they are (same weights); folded ones are replaced.
        return replacements.get(id(layer), layer)

    def call(layer, *args, **kwargs):
        if id(layer) in folded_bns:
            return args[0]  # the batch norm now lives in the layer before it
        return layer(*args, **kwargs)

    new = keras.models.clone_model(model, clone_function=clone, call_function=call)
    return FoldResult(new, folded, skipped)
