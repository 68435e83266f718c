"""XLA (``training.jit_compile``): what cannot be compiled moves to the input pipeline or
is reported at its spec path.

Keras compiles a whole train step with XLA or nothing. With ``jit_compile: auto`` it turns
XLA off without a word when one layer declares it cannot be compiled (Keras 3.15:
``Layer.supports_jit``, read by ``keras.src.trainers.trainer.model_supports_jit``;
``RandomRotation``, ``RandomTranslation``, ``RandomZoom`` and ``StringLookup`` set it to
False), on machines without a GPU, and under a distribution strategy. With
``jit_compile: true`` kspec makes the model compilable:

- random augmentation that XLA cannot compile runs in the ``tf.data`` pipeline on the host
  instead, on the training split only, per batch, with the same seeded layers. Steps keep
  their order: the pipeline takes the augmentation steps up to the last one XLA cannot
  compile; later steps stay in the model. Augmentation works on preprocessed values, so
  the pipeline applies the fitted preprocessing, the augmentation and the preprocessing's
  inverse (``x' = P^-1(A(P(x)))``): the model's own preprocessing then sees exactly
  ``A(P(x))``. Those steps are not part of the model (they are inert at inference anyway);
- any other layer XLA cannot compile is a SpecError at the spec path that built it.

Example:
    >>> layers, host = split_for_xla(spec, input_layers(spec, data))  # doctest: +SKIP
    >>> ds = to_dataset(data.train, 32, augment=host)  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from kspec.compiler.origins import origin
from kspec.errors import SpecError
from kspec.spec import Spec

_HOST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _is_augmentation(layer: Any) -> bool:
    return (origin(layer) or "").startswith("data.augmentation")


class HostAugmentation:
    """Augmentation applied to training batches in the ``tf.data`` pipeline.

    Args:
        steps: per input name, ``(preprocessing layers, augmentation layers)``; the
            preprocessing layers are only read (their fitted statistics), never called.
    """

    def __init__(self, steps: dict[str, tuple[list[Any], list[Any]]]) -> None:
        self.steps = {name: ([_affine(layer) for layer in pre], aug)
                      for name, (pre, aug) in steps.items()}

    def _one(self, x, pre, aug):
        import tensorflow as tf

        y = tf.cast(x, tf.float32)  # stays float32: rotated pixels are not integers
        shapes = []  # each step's input shape, for its inverse
        for forward, _ in pre:
            shapes.append(tf.shape(y))
            y = forward(y)
        for layer in aug:
            y = tf.cast(layer(y, training=True), tf.float32)
        for (_, inverse), shape in zip(reversed(pre), reversed(shapes)):
            y = inverse(y, shape)
        return y

    def __call__(self, x, *rest):
        """``(x, y[, sample_weight])`` of one batch, with ``x`` augmented."""
        if isinstance(x, dict):
            x = {k: self._one(v, *self.steps[k]) if k in self.steps else v
                 for k, v in x.items()}
        else:
            (pre, aug), = self.steps.values()
            x = self._one(x, pre, aug)
        return (x, *rest)


def _affine(layer: Any):
    """``(forward(x), inverse(y, input_shape))`` TensorFlow functions of a fitted
    preprocessing layer, with its statistics as float32 constants. The inverse of a
    whitening is its pseudo-inverse, exact on the whitened space: ``P(P^-1(z)) = z``."""
    import tensorflow as tf

    from kspec.data.keras_layers import Rescale, Whitening

    if isinstance(layer, Rescale):
        offset = tf.constant(np.asarray(layer.offset), tf.float32)
        scale = tf.constant(np.asarray(layer.scale), tf.float32)
        shift = float(layer.shift)
        return ((lambda x: (x - offset) * scale + shift),
                (lambda y, shape: (y - shift) / scale + offset))
    if isinstance(layer, Whitening):
        mean64 = np.asarray(layer.mean, "float64")
        matrix64 = np.asarray(layer.matrix, "float64")
        mean, matrix = tf.constant(mean64, tf.float32), tf.constant(matrix64, tf.float32)
        back = tf.constant(np.linalg.pinv(matrix64), tf.float32)
        target = tuple(layer.target_shape)

        def forward(x):
            shape = tf.shape(x)
            flat = tf.reshape(x, (shape[0], -1))
            return tf.reshape(tf.matmul(flat - mean, matrix), (shape[0], *target))

        def inverse(y, shape):
            flat = tf.matmul(tf.reshape(y, (tf.shape(y)[0], -1)), back) + mean
            return tf.reshape(flat, shape)

        return forward, inverse
    raise TypeError(f"no inverse for preprocessing layer {layer.name!r}")


def split_for_xla(spec: Spec, layers: dict[str, list[Any]]
                  ) -> tuple[dict[str, list[Any]], HostAugmentation | None]:
    """The input layers that stay in the model, and the augmentation for the pipeline.

    Only with ``training.jit_compile: true`` and an augmentation step XLA cannot compile;
    otherwise ``(layers, None)``.

    Raises:
        SpecError: a step that changes the shape (``crop``) would have to move to the
            pipeline (it comes before a step XLA cannot compile).
    """
    if spec.training.jit_compile is not True:
        return layers, None
    kept: dict[str, list[Any]] = {}
    host: dict[str, tuple[list[Any], list[Any]]] = {}
    for name, steps in layers.items():
        blocking = [k for k, layer in enumerate(steps)
                    if _is_augmentation(layer) and not layer.supports_jit]
        if not blocking:
            kept[name] = list(steps)
            continue
        last = blocking[-1]
        moved = [layer for layer in steps[:last + 1] if _is_augmentation(layer)]
        for layer in moved:
            if type(layer).__name__ == "RandomCrop":
                raise SpecError(origin(layer), "with training.jit_compile: true, augmentation "
                                f"up to {origin(steps[last])} runs in the input pipeline, "
                                "and a crop there would change the model's input shape",
                                valid="list crop after the rotate/translate/zoom steps")
        pre = [layer for layer in steps[:last + 1]
               if (origin(layer) or "").startswith("data.preprocessing")]
        host[name] = (pre, moved)
        kept[name] = [layer for layer in steps if not any(layer is m for m in moved)]
    return kept, (HostAugmentation(host) if host else None)


def remember_host(model: Any, host: HostAugmentation | None) -> None:
    """Keep the pipeline augmentation of ``model`` for :func:`host_augmentation`."""
    if host is not None:
        _HOST[model] = host


def host_augmentation(model: Any) -> HostAugmentation | None:
    """The augmentation the training pipeline of ``model`` applies (None: none)."""
    return _HOST.get(model)


def check_layers(model: Any, spec: Spec) -> None:
    """With ``jit_compile: true``, every layer left in the (uncompiled) model must be
    compilable.

    Raises:
        SpecError: at the spec path that built the first layer XLA cannot compile.
    """
    if spec.training.jit_compile is not True:
        return
    bad = _first_uncompilable(model, None)
    if bad is not None:
        layer, path = bad
        raise SpecError(path or "training.jit_compile", f"layer {layer.name!r} "
                        f"({type(layer).__name__}) cannot be compiled by XLA, and "
                        "training.jit_compile is true", value=True if path is None else None,
                        valid="jit_compile: auto or false, or a spec without this layer")


def check_compiled(model: Any, spec: Spec) -> None:
    """With ``jit_compile: true``, the compiled model must really use XLA (Keras turns it
    off with a warning only, e.g. when TensorFlow op determinism is enabled).

    Raises:
        SpecError: at ``training.jit_compile``.
    """
    if spec.training.jit_compile is True and not model.jit_compile:
        raise SpecError("training.jit_compile", "Keras turned XLA off for this model "
                        "(is TensorFlow op determinism enabled?)", value=True,
                        valid="auto or false")


def _first_uncompilable(layer: Any, inherited: str | None):
    """The first layer (depth first) with ``supports_jit`` false, with the spec path of
    it or of the nearest enclosing layer a spec path built (a transfer base)."""
    path = origin(layer) or inherited
    for sub in layer._flatten_layers(include_self=False, recursive=False):
        # Private: Keras 3.15 walks layers this way in model_supports_jit; a public
        # `.layers` misses sublayers held as attributes.
        if not sub.supports_jit:
            return sub, origin(sub) or path
        found = _first_uncompilable(sub, origin(sub) or path)
        if found is not None:
            return found
    return None


def why_not(model: Any, spec: Spec) -> str | None:
    """Why ``jit_compile: auto`` left XLA off (None when XLA is on or was turned off)."""
    if model.jit_compile or spec.training.jit_compile is False:
        return None
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return "auto: Keras leaves XLA off on machines without a GPU"
    if getattr(model, "_distribute_strategy", None) is not None:
        return "auto: Keras leaves XLA off under a distribution strategy"
    bad = _first_uncompilable(model, None)
    if bad is not None:
        return (f"auto: layer {bad[0].name!r} ({type(bad[0]).__name__}) cannot be compiled "
                "(jit_compile: true moves augmentation to the input pipeline)")
    return None
