"""Keras dtype policies while a model is built: float32 outputs, bases under the policy.

``training.precision`` sets Keras's global dtype policy while kspec builds a model
(:func:`kspec.train.scale.scope`). Two things follow here, at the level of the compiler:

- the layer that computes each model output runs in float32 (its activation included), as
  the Keras mixed-precision guide does, so softmax, sigmoid and the loss never see float16
  or bfloat16 rounding; the rest of the model computes in the policy's compute dtype;
- a transfer base loaded from a file keeps the dtype policy it was saved with, so under
  another policy it is rebuilt layer by layer with the current one (weights copied).

Example:
    >>> import keras
    >>> with dtype_policy("mixed_bfloat16"):
    ...     with float32_outputs():
    ...         keras.layers.Dense(2).dtype_policy.name
    'float32'
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy is ``name`` inside the block (restored after)."""
    import keras

    saved = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(saved)


def is_mixed() -> bool:
    """Whether the global policy computes in another dtype than its variables."""
    import keras

    policy = keras.config.dtype_policy()
    return policy.compute_dtype != policy.variable_dtype


def float32_outputs():
    """A block whose new layers compute in float32 when the global policy is mixed."""
    return dtype_policy("float32") if is_mixed() else contextlib.nullcontext()


def output_dtype() -> str | None:
    """The dtype for a layer that only names an output (float32 under a mixed policy)."""
    return "float32" if is_mixed() else None


def _float_policy(layer: Any) -> bool:
    """Whether ``layer`` follows the global policy: a floating-point layer without a dtype
    of its own (kspec's fitted preprocessing keeps float32: ``fixed_dtype``)."""
    import keras

    policy = getattr(layer, "dtype_policy", None)
    return (policy is not None and keras.backend.is_float_dtype(policy.compute_dtype)
            and getattr(layer, "fixed_dtype", None) is None)


def _all_layers(model: Any) -> Iterator[Any]:
    """Every layer of ``model``, nested models' layers included (inputs left out)."""
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def under_global_policy(model: Any) -> Any:
    """``model`` with every floating-point layer under the global dtype policy.

    A ``.keras`` file restores each layer's saved policy, so a base trained in float32 would
    stay float32 inside a mixed-precision model (and one trained in mixed precision would
    stay mixed in a float32 model). Returns ``model`` itself when nothing differs, else a
    clone (``keras.models.clone_model``) with the same weights.
    """
    import keras

    policy = keras.config.dtype_policy()
    layers = list(_all_layers(model))
    if all(lay.dtype_policy.name == policy.name for lay in layers if _float_policy(lay)):
        return model

    def clone(layer):
        config = layer.get_config()
        if _float_policy(layer):
            config["dtype"] = policy.name
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy
