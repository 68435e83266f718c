"""``kspec.register``: put a user's own Keras class or function into a registry by name.

A spec can only name components (it never imports code by path), so a custom layer, loss,
metric, activation, initializer, regularizer, optimizer or schedule has to be registered
before the spec is loaded. The decorator also registers the object with Keras's
serialization, so a model using it saves to ``.keras`` and loads back with
``keras.saving.load_model(path, safe_mode=True)`` (in a fresh process: import the module that
defines it first).

Example:
    >>> import keras, kspec
    >>> @kspec.register("doubled_mse")
    ... class DoubledMSE(keras.losses.Loss):
    ...     def call(self, y_true, y_pred):
    ...         return 2.0 * keras.ops.mean(keras.ops.square(y_true - y_pred), axis=-1)
    >>> from kspec.registry import LOSSES
    >>> LOSSES.get("doubled_mse").name
    'doubled_mse'
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Callable, Sequence

from kspec import registry
from kspec.errors import first_line

# kind -> key in kspec.registry.ALL
KINDS = {
    "activation": "activations",
    "initializer": "initializers",
    "regularizer": "regularizers",
    "layer": "layers",
    "loss": "losses",
    "metric": "metrics",
    "optimizer": "optimizers",
    "schedule": "schedules",
}
_FUNCTION_KINDS = ("activation", "loss", "metric")
USER_TAG = "user"


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def detect_kind(obj: Any) -> str:
    """The registry a class belongs in, from its Keras base class.

    Raises:
        TypeError: a function (say which with ``kind=``) or a class with no Keras base.
    """
    import keras

    if not inspect.isclass(obj):
        raise TypeError(
            f"kspec.register cannot tell what the function {obj.__name__!r} is; pass "
            f"kind= one of {', '.join(_FUNCTION_KINDS)} (e.g. @kspec.register('my_act', "
            "kind='activation'))"
        )
    bases = (
        (keras.metrics.Metric, "metric"),
        (keras.losses.Loss, "loss"),
        (keras.initializers.Initializer, "initializer"),
        (keras.regularizers.Regularizer, "regularizer"),
        (keras.optimizers.Optimizer, "optimizer"),
        (keras.optimizers.schedules.LearningRateSchedule, "schedule"),
        (keras.layers.Layer, "layer"),  # an activation *layer* needs kind="activation"
    )
    for base, kind in bases:
        if issubclass(obj, base):
            return kind
    raise TypeError(
        f"kspec.register: {obj.__name__} is not a Keras Layer, Loss, Metric, Initializer, "
        "Regularizer, Optimizer or LearningRateSchedule subclass"
    )


def _serializable(obj: Any, package: str, name: str) -> None:
    """Register ``obj`` with Keras serialization (once; a notebook may re-run the cell)."""
    import keras

    current = keras.saving.get_registered_name(obj)
    if current != obj.__name__:  # the user registered it already
        return
    key = f"{package}>{name}"
    custom = keras.saving.get_custom_objects()  # Keras's global dict, not a copy
    old = custom.get(key)
    if old is not None and old is not obj:
        if (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) != (
            obj.__module__, obj.__qualname__
        ):
            raise ValueError(
                f"kspec.register: the Keras name {key!r} already belongs to "
                f"{old.__module__}.{old.__qualname__}; pass package= to tell them apart"
            )
        del custom[key]  # the same definition, re-executed
    keras.saving.register_keras_serializable(package=package, name=name)(obj)


def _init_params(cls: type) -> list[str] | None:
    """Keyword names a class's constructor accepts, following ``**kwargs`` up the bases
    (a Keras layer passes them to ``Layer.__init__``), so a typo in a spec is an error."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        try:
            sig = inspect.signature(vars(klass)["__init__"])
        except (TypeError, ValueError):
            return None
        params = list(sig.parameters.values())[1:]
        names += [p.name for p in params
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return sorted(set(names))
    return None  # **kwargs all the way down: accept anything


def _factory(kind: str, obj: Any) -> tuple[Callable[..., Any], Sequence[str] | None]:
    if inspect.isclass(obj):
        return obj, _init_params(obj)
    if kind not in _FUNCTION_KINDS:
        raise TypeError(f"kspec.register: a {kind} must be a class; {obj.__name__!r} is a "
                        "function")

    def factory():
        return obj

    factory.__doc__ = obj.__doc__
    factory.kspec_obj = obj  # type: ignore[attr-defined]
    return factory, ()


def register(
    name: str | Any | None = None,
    *,
    kind: str | None = None,
    description: str = "",
    aliases: Sequence[str] = (),
    package: str = "kspec_user",
    replace: bool = False,
) -> Any:
    """Decorator: make a Keras class (or function) available by ``name`` in specs.

    Args:
        name: the name specs use (default: the class name in snake_case).
        kind: ``activation``, ``initializer``, ``regularizer``, ``layer``, ``loss``,
            ``metric``, ``optimizer`` or ``schedule``; detected from the base class when
            omitted. Functions (activations, losses, metrics) and activation layers need it.
        description: one line for ``kspec components`` (default: the docstring's first line).
        aliases: other accepted names.
        package: the Keras serialization package (the saved name is ``package>ClassName``).
        replace: replace an earlier user registration of the same name.

    Returns:
        The decorator; it returns the class or function unchanged.

    Raises:
        ValueError: the name is taken by a built-in component (or by another user
            component, without ``replace=True``).

    Example:
        >>> import keras, kspec
        >>> @kspec.register("cube", kind="activation")
        ... def cube(x):
        ...     "x to the third power"
        ...     return x * x * x
        >>> kspec.load_spec({"model": {"layers": [
        ...     {"type": "dense", "units": 2, "activation": "cube"}]},
        ...     "training": {"loss": "mse"}}).model.layers[0].activation
        'cube'
    """
    if callable(name) and kind is None and not isinstance(name, str):  # bare @register
        return register()(name)

    def decorate(obj: Any) -> Any:
        registry.load_builtins()
        found = kind or detect_kind(obj)
        if found not in KINDS:
            raise ValueError(f"kspec.register: unknown kind {found!r}; expected one of "
                             f"{', '.join(KINDS)}")
        key = name or _snake(obj.__name__)
        reg = registry.ALL[KINDS[found]]
        _check_free(reg, key, aliases, obj, replace)
        _serializable(obj, package, obj.__name__)
        factory, params = _factory(found, obj)
        reg.register(key, factory, description=description or first_line(obj.__doc__),
                     aliases=aliases, params=params, tags=(USER_TAG,), replace=True)
        return obj

    return decorate


def _check_free(reg, key: str, aliases: Sequence[str], obj: Any, replace: bool) -> None:
    for k in (key, *aliases):
        if k not in reg:
            continue
        entry = reg.get(k)
        if USER_TAG not in entry.tags:
            raise ValueError(f"kspec.register: {reg.kind} {k!r} is a built-in name; choose "
                             "another name")
        old = getattr(entry.factory, "kspec_obj", entry.factory)
        same = (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == (
            obj.__module__, obj.__qualname__)  # the same definition, re-executed
        if not (replace or same):
            raise ValueError(f"kspec.register: {reg.kind} {k!r} is already registered by "
                             "you; pass replace=True to replace it")
        if entry.name in reg.names():
            reg.unregister(entry.name)
