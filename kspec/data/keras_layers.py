"""Keras layers for fitted preprocessing and training-only augmentation.

All are registered serializable under the ``kspec`` package, so ``.keras`` files that
contain them load with ``safe_mode=True``. Fitted statistics are non-trainable weights:
they are saved with the model and a reloaded or exported model applies exactly them.

Keras's random image layers default to ``training=True`` when called outside ``fit`` /
``predict`` (e.g. ``model(x)`` or a traced export), so kspec uses subclasses whose default
is ``training=False``: augmentation only happens when training is asked for.
"""

from __future__ import annotations

import keras
from keras import ops

_register = keras.saving.register_keras_serializable(package="kspec")


class _Fitted(keras.layers.Layer):
    """A layer applying fitted statistics to raw inputs: always in float32.

    Under a mixed-precision policy Keras casts a layer's inputs and variables to float16 or
    bfloat16 (it does so for the variables even with ``autocast=False`` in Keras 3.15, see
    ``Layer.__call__``): a raw value of 1000.5 becomes 1000 in bfloat16, so ``x - mean``
    would lose everything below the fourth digit. These layers keep the float32 policy
    whatever the global one is; the next layer casts their normalized output to its compute
    dtype, where that rounding no longer hurts.
    """

    fixed_dtype = "float32"  # kspec.compiler.precision leaves these layers as they are

    def __init__(self, **kwargs):
        kwargs["dtype"] = self.fixed_dtype
        super().__init__(**kwargs)

    def _out(self, y):
        return y


@_register
class Rescale(_Fitted):
    """``y = (x - offset) * scale + shift`` with fitted, non-trainable ``offset``/``scale``.

    Min-max scaling, z-scores and per-channel mean subtraction are all this affine map;
    ``stat_shape`` broadcasts against one example (``[]`` global, ``[c]`` per channel,
    the example's shape per feature).

    Example:
        >>> import numpy as np
        >>> layer = Rescale(stat_shape=[2])
        >>> layer.set_statistics(offset=[1.0, 2.0], scale=[0.5, 1.0])
        >>> [float(v) for v in layer(np.array([[3.0, 3.0]]))[0]]
        [1.0, 1.0]
    """

    def __init__(self, stat_shape=(), shift: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.stat_shape = tuple(int(d) for d in stat_shape)
        self.shift = float(shift)

    def build(self, input_shape=None):
        self.offset = self.add_weight(name="offset", shape=self.stat_shape,
                                      initializer="zeros", trainable=False)
        self.scale = self.add_weight(name="scale", shape=self.stat_shape,
                                     initializer="ones", trainable=False)
        self.built = True

    def set_statistics(self, offset, scale) -> None:
        """Store fitted statistics (builds the layer if needed)."""
        if not self.built:
            self.build()
        self.offset.assign(ops.reshape(ops.cast(offset, self.offset.dtype), self.stat_shape))
        self.scale.assign(ops.reshape(ops.cast(scale, self.scale.dtype), self.stat_shape))

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        return self._out((x - self.offset) * self.scale + self.shift)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "stat_shape": list(self.stat_shape),
                "shift": self.shift}


@_register
class Whitening(_Fitted):
    """``y = (flatten(x) - mean) @ matrix``, reshaped to ``target_shape``.

    PCA whitening projects onto the principal axes (``target_shape = [components]``); ZCA
    rotates back (``target_shape`` = the input's shape). Both give zero mean and identity
    covariance on the data they were fitted on.
    """

    def __init__(self, features: int, components: int, target_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.features = int(features)
        self.components = int(components)
        self.target_shape = tuple(target_shape or (self.components,))

    def build(self, input_shape=None):
        self.mean = self.add_weight(name="mean", shape=(self.features,), initializer="zeros",
                                    trainable=False)
        self.matrix = self.add_weight(name="matrix", shape=(self.features, self.components),
                                      initializer="zeros", trainable=False)
        self.built = True

    def set_statistics(self, mean, matrix) -> None:
        if not self.built:
            self.build()
        self.mean.assign(ops.cast(mean, self.mean.dtype))
        self.matrix.assign(ops.cast(matrix, self.matrix.dtype))

    def call(self, inputs):
        x = ops.reshape(ops.cast(inputs, "float32"), (-1, self.features))
        y = ops.matmul(x - self.mean, self.matrix)
        return self._out(ops.reshape(y, (-1, *self.target_shape)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.target_shape)

    def get_config(self):
        return {**super().get_config(), "features": self.features,
                "components": self.components, "target_shape": list(self.target_shape)}


class _RandomLayer(keras.layers.Layer):
    """A seeded random layer that is the identity unless ``training`` is true."""

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

    def _per_example_shape(self, x):
        return (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)


@_register
class LaplacianNoise(_RandomLayer):
    """Add Laplace(0, ``scale``) noise in training (inverse-CDF sampling)."""

    def __init__(self, scale: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.scale = float(scale)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = ops.cast(inputs, self.compute_dtype)
        # Drawn in float32: in bfloat16, -0.5 + 1e-7 rounds to -0.5 and log1p(-1) = -inf.
        u = keras.random.uniform(ops.shape(x), minval=-0.5 + 1e-7, maxval=0.5,
                                 seed=self.seed_generator, dtype="float32")
        noise = -self.scale * ops.sign(u) * ops.log1p(-2.0 * ops.abs(u))
        return x + ops.cast(noise, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@_register
class RandomBrightnessShift(_RandomLayer):
    """Add one offset drawn from [-delta, delta] to each example, in training."""

    def __init__(self, delta: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.delta = float(delta)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = ops.cast(inputs, self.compute_dtype)
        shift = keras.random.uniform(self._per_example_shape(x), -self.delta, self.delta,
                                     seed=self.seed_generator, dtype=self.compute_dtype)
        return x + shift

    def get_config(self):
        return {**super().get_config(), "delta": self.delta}


@_register
class RandomContrastScale(_RandomLayer):
    """Scale each example's deviation from its per-channel mean by a factor in [1-f, 1+f].

    Unlike ``keras.layers.RandomContrast`` nothing is clipped to a pixel range, so it works
    on normalized inputs.
    """

    def __init__(self, factor: float, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.factor = float(factor)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        x = ops.cast(inputs, self.compute_dtype)
        axes = tuple(range(1, len(x.shape) - 1)) or (1,)
        mean = ops.mean(x, axis=axes, keepdims=True)
        c = keras.random.uniform(self._per_example_shape(x), 1 - self.factor, 1 + self.factor,
                                 seed=self.seed_generator, dtype=self.compute_dtype)
        return (x - mean) * c + mean

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@_register
class RandomCrop(_RandomLayer):
    """A random ``height`` x ``width`` window in training; the centre window otherwise.

    ``keras.layers.RandomCrop`` (Keras 3.15) returns the *uncropped* image when
    training=False, so a model's inference shapes differ from its training shapes
    (keras-team/keras#21868); this layer always crops, with a window per example.
    """

    def __init__(self, height: int, width: int, seed: int | None = None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.height, self.width = int(height), int(width)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.height, self.width, input_shape[-1])

    def call(self, inputs, training=False):
        h, w, c = inputs.shape[1], inputs.shape[2], inputs.shape[3]
        if not training:
            top, left = (h - self.height) // 2, (w - self.width) // 2
            return inputs[:, top:top + self.height, left:left + self.width, :]
        batch = ops.shape(inputs)[0]
        # One window per example: gather the chosen rows, then the chosen columns.
        top = keras.random.randint((batch, 1), 0, h - self.height + 1, seed=self.seed_generator)
        left = keras.random.randint((batch, 1), 0, w - self.width + 1, seed=self.seed_generator)
        rows = top + ops.arange(self.height, dtype=top.dtype)[None, :]
        cols = left + ops.arange(self.width, dtype=left.dtype)[None, :]
        rows = ops.broadcast_to(rows[:, :, None, None], (batch, self.height, w, c))
        out = ops.take_along_axis(inputs, rows, axis=1)
        cols = ops.broadcast_to(cols[:, None, :, None], (batch, self.height, self.width, c))
        return ops.take_along_axis(out, cols, axis=2)

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width}


def _inert_by_default(base):
    """A subclass of a Keras random layer whose ``training`` defaults to False."""

    def call(self, data, training=False):
        return base.call(self, data, training=bool(training))

    cls = type(base.__name__, (base,), {"call": call, "__doc__": (
        f"``keras.layers.{base.__name__}`` that is the identity unless training is true.")})
    cls.__module__ = __name__
    return _register(cls)


RandomFlip = _inert_by_default(keras.layers.RandomFlip)
RandomRotation = _inert_by_default(keras.layers.RandomRotation)
RandomTranslation = _inert_by_default(keras.layers.RandomTranslation)
RandomZoom = _inert_by_default(keras.layers.RandomZoom)
