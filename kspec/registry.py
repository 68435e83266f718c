"""One registry class, one instance per concept.

A registry maps names (and aliases) to factories that build Keras objects. Registering an
entry never imports Keras: factories import it when they are called, so looking names up,
listing them and validating a spec stay instant and TensorFlow-free.

Example:
    >>> from kspec.registry import Registry
    >>> colours = Registry("colour")
    >>> @colours.register("red", aliases=("rouge",), description="the colour red")
    ... def _red():
    ...     return (255, 0, 0)
    >>> colours.get("rouge").name
    'red'
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from kspec.errors import PathPart, SpecError, first_line, format_path, suggest


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes:
        name: the canonical name used in specs.
        factory: callable building the object from the spec's parameters, or its
            ``"module:function"`` name, imported on first use (see :meth:`implementation`).
        description: one line for the docs (``kspec components``).
        aliases: other accepted names.
        params: accepted parameter names; None means "read them off the factory's signature".
        tags: free-form flags (e.g. ``{"constant"}`` for zeros/constant initializers).
        config: for kinds whose spec entries have a schema of their own (data sources,
            preprocessing and augmentation steps, tuners), the pydantic model of the mapping;
            the spec's unions and the JSON Schema are generated from these.
    """

    name: str
    factory: Callable[..., Any] | str
    description: str = ""
    aliases: tuple[str, ...] = ()
    params: frozenset[str] | None = None
    tags: frozenset[str] = field(default_factory=frozenset)
    config: type | None = None

    def implementation(self) -> Callable[..., Any]:
        """The factory, importing it first when it was registered by name.

        Naming the implementation (``"kspec.data.tables:read_csv"``) lets the spec layer
        register a kind with its schema while the code that needs TensorFlow or pandas lives
        in a higher layer and is imported only when a spec uses it.
        """
        if not isinstance(self.factory, str):
            return self.factory
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)

    def accepted_params(self) -> frozenset[str] | None:
        """Parameter names a spec may pass, or None when any keyword is accepted."""
        if self.params is not None:
            return self.params
        if self.config is not None:
            return frozenset(n for n in self.config.model_fields if n != "type")
        try:
            sig = inspect.signature(self.factory)
        except (TypeError, ValueError):  # builtins without a signature
            return None
        names = set()
        for p in sig.parameters.values():
            if p.kind is p.VAR_KEYWORD:
                return None
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
        return frozenset(names)


class Registry:
    """Names of one concept (activations, losses, ...) mapped to factories."""

    def __init__(self, kind: str, plural: str | None = None) -> None:
        self.kind = kind
        self.plural = plural or kind + "s"
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        factory: Callable[..., Any] | str | None = None,
        *,
        description: str = "",
        aliases: Sequence[str] = (),
        params: Sequence[str] | None = None,
        tags: Sequence[str] = (),
        replace: bool = False,
        config: type | None = None,
    ) -> Callable[..., Any]:
        """Register ``factory`` under ``name``; usable as a decorator.

        Raises:
            ValueError: the name or an alias is taken (unless ``replace=True``).
        """

        def add(fn: Callable[..., Any] | str) -> Callable[..., Any] | str:
            doc = config.__doc__ if config is not None else getattr(fn, "__doc__", None)
            entry = Entry(
                name=name,
                factory=fn,
                description=description or first_line(doc),
                aliases=tuple(aliases),
                params=None if params is None else frozenset(params),
                tags=frozenset(tags),
                config=config,
            )
            for key in (name, *aliases):
                if key in self and not replace:
                    raise ValueError(f"{self.kind} {key!r} is already registered")
            if replace and name in self._entries:
                self.unregister(name)
            self._entries[name] = entry
            for alias in aliases:
                self._aliases[alias] = name
            return fn

        return add(factory) if factory is not None else add

    def schema(self, name: str, implementation: str, *, aliases: Sequence[str] = (),
               tags: Sequence[str] = ()) -> Callable[[type], type]:
        """Class decorator: register a pydantic model as the schema of ``name``, implemented
        by the function called ``implementation`` (``"module:function"``, imported on use).

        Example:
            >>> from pydantic import BaseModel
            >>> shapes = Registry("shape")
            >>> @shapes.schema("square", "math:sqrt")
            ... class Square(BaseModel):
            ...     side: float = 1.0
            >>> shapes.get("square").implementation()(16.0)
            4.0
        """

        def add(cls: type) -> type:
            self.register(name, implementation, config=cls, aliases=aliases, tags=tags)
            return cls

        return add

    def configs(self) -> list[type]:
        """The schema classes of every entry that has one, in registration order."""
        return [e.config for e in self._entries.values() if e.config is not None]

    def unregister(self, name: str) -> None:
        """Remove ``name`` and its aliases (used by tests and by ``replace=True``)."""
        entry = self._entries.pop(name)
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    # -- lookup -------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, *, aliases: bool = False) -> list[str]:
        """Canonical names, sorted; with ``aliases=True`` every accepted name."""
        out = list(self._entries)
        if aliases:
            out += list(self._aliases)
        return sorted(out)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in sorted(self._entries)]

    def get(self, name: Any, path: str | Sequence[PathPart] = "") -> Entry:
        """The entry for ``name`` (or an alias).

        Raises:
            SpecError: unknown name, with a did-you-mean and the valid names.
        """
        if isinstance(name, str):
            canonical = self._aliases.get(name, name)
            if canonical in self._entries:
                return self._entries[canonical]
        raise SpecError.unknown_name(path, self.kind, name, self.names(aliases=True))

    # -- specs --------------------------------------------------------------------------
    def split_ref(self, ref: Any, path: str | Sequence[PathPart]) -> tuple[Entry, dict[str, Any]]:
        """Split a spec reference (``"relu"`` or ``{"type": "leaky_relu", ...}``).

        Returns the entry and its parameters, checked against what the entry accepts.
        """
        path = path if isinstance(path, str) else format_path(path)
        if isinstance(ref, str):
            return self.get(ref, path), {}
        if isinstance(ref, Mapping):
            if "type" not in ref:
                raise SpecError(
                    path,
                    f"a {self.kind} given as a mapping needs a 'type' key",
                    value=dict(ref),
                    valid=self.names(),
                )
            entry = self.get(ref["type"], f"{path}.type")
            params = {k: v for k, v in ref.items() if k != "type"}
            accepted = entry.accepted_params()
            if accepted is not None:
                for key in params:
                    if key not in accepted:
                        raise SpecError(
                            f"{path}.{key}",
                            f"unknown parameter {key!r} for {self.kind} {entry.name!r}",
                            valid=sorted(accepted),
                            hint=suggest(key, accepted),
                        )
            return entry, params
        raise SpecError(
            path,
            f"a {self.kind} must be a name or a mapping with 'type'",
            value=ref,
            valid=self.names(),
        )

    def check(self, ref: Any, path: str | Sequence[PathPart]) -> Entry:
        """Validate a reference without building it (no Keras import)."""
        return self.split_ref(ref, path)[0]

    def build(self, ref: Any, path: str | Sequence[PathPart], **extra: Any) -> Any:
        """Build the object a reference names, re-raising failures with the spec path."""
        path = path if isinstance(path, str) else format_path(path)
        entry, params = self.split_ref(ref, path)
        try:
            return entry.implementation()(**params, **extra)
        except SpecError:
            raise
        except (TypeError, ValueError) as e:
            raise SpecError(path, f"cannot build {self.kind} {entry.name!r}: {e}", value=ref) from e


# One instance per concept. The modules listed in _PROVIDERS fill them at first use.
ACTIVATIONS = Registry("activation")
INITIALIZERS = Registry("initializer")
REGULARIZERS = Registry("regularizer")
LAYERS = Registry("layer")
LOSSES = Registry("loss", plural="losses")
METRICS = Registry("metric")
OPTIMIZERS = Registry("optimizer")
SCHEDULES = Registry("learning-rate schedule")
DATASETS = Registry("dataset")
# Kinds whose spec mappings have a schema of their own (registered with `Registry.schema`
# where the spec layer defines them; their implementations live in higher layers).
SOURCES = Registry("data source")
PREPROCESSING = Registry("preprocessing step")
AUGMENTATIONS = Registry("augmentation")
TUNERS = Registry("tuner")

ALL: dict[str, Registry] = {
    "activations": ACTIVATIONS,
    "initializers": INITIALIZERS,
    "regularizers": REGULARIZERS,
    "layers": LAYERS,
    "losses": LOSSES,
    "metrics": METRICS,
    "optimizers": OPTIMIZERS,
    "schedules": SCHEDULES,
    "datasets": DATASETS,
    "sources": SOURCES,
    "preprocessing": PREPROCESSING,
    "augmentations": AUGMENTATIONS,
    "tuners": TUNERS,
}

# Modules that register built-in entries. They must not import Keras at module level.
_PROVIDERS = (
    "kspec.compiler.activations",
    "kspec.compiler.initializers",
    "kspec.compiler.regularizers",
    "kspec.compiler.layers",
    "kspec.compiler.losses",
    "kspec.compiler.metrics",
    "kspec.compiler.optimizers",
    "kspec.data.datasets",
)
_loaded = False

# Modules whose import registers kspec's Keras classes (layers, losses, metrics, initializers,
# models) with Keras serialization, so that a ``.keras`` file using them loads in safe mode.
# They import Keras; they are imported by name so that no package imports a higher one.
KERAS_CLASS_MODULES = (
    "kspec.components",
    "kspec.data.keras_layers",
)


def load_keras_classes() -> None:
    """Import the modules that register kspec's Keras classes (idempotent; imports Keras).

    Example:
        >>> load_keras_classes()
        >>> import keras
        >>> keras.saving.get_registered_object("kspec>Rescale").__name__
        'Rescale'
    """
    for mod in KERAS_CLASS_MODULES:
        importlib.import_module(mod)


def load_builtins() -> None:
    """Import the modules that register the built-in names (idempotent, Keras-free)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in _PROVIDERS:
        importlib.import_module(mod)
