"""Layer types by name: each builder turns one layer spec into Keras layers applied to ``x``.

Builders take ``(layer_spec, x, path, name)`` and return the output tensor. A layer whose
activation builds to a layer (leaky ReLU, PReLU, maxout, ...) gets it applied right after.
"""

from __future__ import annotations

from typing import Any, Callable

from kspec.compiler.size import charge, layer_params
from kspec.errors import SpecError, first_line
from kspec.registry import ACTIVATIONS, INITIALIZERS, LAYERS, REGULARIZERS
from kspec.spec import model as m

Builder = Callable[[Any, Any, str, str], Any]


def _init(ref, path):
    return INITIALIZERS.build(ref, path)


def _reg(ref, path):
    return None if ref is None else REGULARIZERS.build(ref, path)


def _weights(spec, path: str) -> dict[str, Any]:
    return {
        "use_bias": spec.use_bias,
        "kernel_initializer": _init(spec.kernel_initializer, f"{path}.kernel_initializer"),
        "bias_initializer": _init(spec.bias_initializer, f"{path}.bias_initializer"),
        "kernel_regularizer": _reg(spec.kernel_regularizer, f"{path}.kernel_regularizer"),
        "bias_regularizer": _reg(spec.bias_regularizer, f"{path}.bias_regularizer"),
        "activity_regularizer": _reg(spec.activity_regularizer, f"{path}.activity_regularizer"),
    }


def split_activation(ref, path: str) -> tuple[Any, Any]:
    """``(activation for the layer's constructor, layer to apply after it or None)``."""
    import keras

    if ref is None:
        return None, None
    act = ACTIVATIONS.build(ref, path)
    if isinstance(act, keras.layers.Layer):
        return None, act
    return act, None


def _named(layer, name):
    layer.name = name
    return layer


def apply_activation(x, ref, path: str, name: str):
    """Apply an activation given by reference as its own layer."""
    import keras

    act, post = split_activation(ref, path)
    if post is not None:
        return _named(post, name)(x)
    return keras.layers.Activation(act, name=name)(x)


def builtin(type_name: str, description: str):
    def deco(fn: Builder) -> Builder:
        LAYERS.register(type_name, fn, description=description, params=(), tags=("builtin",))
        return fn

    return deco


def _doc(cls) -> str:
    return first_line(cls.__doc__)


@builtin("dense", _doc(m.Dense))
def dense(spec: m.Dense, x, path, name):
    import keras

    act, post = split_activation(spec.activation, f"{path}.activation")
    layer = keras.layers.Dense(
        spec.units, activation=act, name=name if post is None else f"{name}_linear",
        **_weights(spec, path),
    )
    y = layer(x)
    return y if post is None else _named(post, name)(y)


def _conv(cls_name: str):
    def build(spec, x, path, name):
        import keras

        act, post = split_activation(spec.activation, f"{path}.activation")
        layer = getattr(keras.layers, cls_name)(
            spec.filters,
            spec.kernel_size,
            strides=spec.strides,
            padding=spec.padding,
            dilation_rate=spec.dilation_rate,
            activation=act,
            name=name if post is None else f"{name}_linear",
            **_weights(spec, path),
        )
        y = layer(x)
        return y if post is None else _named(post, name)(y)

    return build


builtin("conv1d", _doc(m.Conv1D))(_conv("Conv1D"))
builtin("conv2d", _doc(m.Conv2D))(_conv("Conv2D"))


def _pool(cls_name: str):
    def build(spec, x, path, name):
        import keras

        return getattr(keras.layers, cls_name)(
            pool_size=spec.pool_size, strides=spec.strides, padding=spec.padding, name=name
        )(x)

    return build


for _t, _cls, _k in (("max_pool1d", "MaxPooling1D", m.MaxPool1D),
                     ("max_pool2d", "MaxPooling2D", m.MaxPool2D),
                     ("avg_pool1d", "AveragePooling1D", m.AvgPool1D),
                     ("avg_pool2d", "AveragePooling2D", m.AvgPool2D)):
    builtin(_t, _doc(_k))(_pool(_cls))


def _global(kind: str):
    def build(spec, x, path, name):
        import keras

        rank = len(x.shape) - 2  # spatial dimensions
        classes = {1: f"Global{kind}Pooling1D", 2: f"Global{kind}Pooling2D",
                   3: f"Global{kind}Pooling3D"}
        if rank not in classes:
            raise SpecError(path, f"global pooling needs an input with 1-3 spatial dimensions, "
                            f"got shape {tuple(x.shape)}")
        return getattr(keras.layers, classes[rank])(name=name)(x)

    return build


builtin("global_avg_pool", _doc(m.GlobalAvgPool))(_global("Average"))
builtin("global_max_pool", _doc(m.GlobalMaxPool))(_global("Max"))


@builtin("flatten", _doc(m.Flatten))
def flatten(spec, x, path, name):
    import keras

    return keras.layers.Flatten(name=name)(x)


@builtin("reshape", _doc(m.Reshape))
def reshape(spec, x, path, name):
    import keras

    return keras.layers.Reshape(tuple(spec.target_shape), name=name)(x)


@builtin("embedding", _doc(m.Embedding))
def embedding(spec, x, path, name):
    import keras

    return keras.layers.Embedding(
        spec.input_dim,
        spec.output_dim,
        embeddings_initializer=_init(spec.embeddings_initializer,
                                     f"{path}.embeddings_initializer"),
        embeddings_regularizer=_reg(spec.embeddings_regularizer,
                                    f"{path}.embeddings_regularizer"),
        mask_zero=spec.mask_zero,
        name=name,
    )(x)


@builtin("batch_norm", _doc(m.BatchNorm))
def batch_norm(spec, x, path, name):
    import keras

    return keras.layers.BatchNormalization(
        axis=spec.axis, momentum=spec.momentum, epsilon=spec.epsilon, center=spec.center,
        scale=spec.scale, name=name,
    )(x)


@builtin("dropout", _doc(m.Dropout))
def dropout(spec, x, path, name):
    import keras

    return keras.layers.Dropout(spec.rate, name=name)(x)


@builtin("activation", _doc(m.Activation))
def activation(spec, x, path, name):
    return apply_activation(x, spec.activation, f"{path}.activation", name)


def build_layer(spec, x, path: str, name: str):
    """Apply one layer spec to ``x``; Keras errors come back as SpecErrors with ``path``."""
    entry = LAYERS.get(spec.type, f"{path}.type")
    charge(layer_params(spec, tuple(getattr(x, "shape", ()) or ())), path)
    try:
        if "builtin" in entry.tags:
            y = entry.factory(spec, x, path, name)
        else:  # registered by a user: a Layer class or a factory returning one
            layer = entry.factory(**spec.params, name=name)
            y = layer(x)
    except (SpecError, RecursionError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - Keras and TF raise many types; name the layer
        shape = tuple(getattr(x, "shape", ()) or ())
        raise SpecError(
            path, f"cannot apply {spec.type} layer to an input of shape {shape}: "
            f"{first_line(e)}"
        ) from e
    from kspec.compiler.origins import remember

    remember(y._keras_history.operation, path)  # errors found on the built model name it
    if getattr(spec, "trainable", True) is False:
        # The layer just created is the last one owning this output. Private: builders
        # return tensors, and _keras_history is how Keras 3.15 names a tensor's producer.
        y._keras_history.operation.trainable = False
    return y
