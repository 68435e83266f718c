"""Search spaces parsed out of a raw spec, and a spec resolved for one assignment of values.

Plain data, no TensorFlow: the syntax (``{$choice: [...]}``, ``{$int: {...}}``, ...) and the
``search:`` section are defined in :mod:`kspec.spec.search`; this module finds the spaces in a
raw spec, names them by their spec path and substitutes values for them.
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from pydantic import ValidationError

from kspec.errors import PathPart, SpecError, SpecErrors, format_path
from kspec.spec.search import _BODIES, FIXED_SECTIONS, SPACE_KINDS, IntSpace


# -- parsed spaces -----------------------------------------------------------------------------
@dataclass(eq=False)
class Space:
    """One search space of a spec, parsed.

    Attributes:
        kind: ``choice``, ``int``, ``float`` or ``bool``.
        path: where the space is written in the raw spec.
        body: the validated body (:class:`ChoiceSpace`, :class:`IntSpace`, ...).
        options: for a choice, each option parsed (may hold nested spaces).
        option_paths: for a choice, where each option is written.
        parents: the (choice, option index) pairs that must hold for this space to be active.
    """

    kind: str
    path: tuple[PathPart, ...]
    body: Any
    options: list[Any] = field(default_factory=list)
    option_paths: list[tuple[PathPart, ...]] = field(default_factory=list)
    parents: tuple[tuple["Space", int], ...] = ()

    @property
    def name(self) -> str:
        """The hyperparameter name: the spec path of the space (``model.layers[1].units``)."""
        return format_path(self.path)

    @property
    def resolved_path(self) -> tuple[PathPart, ...]:
        """Where the chosen value lands in the resolved spec."""
        return strip_space_parts(self.path)

    @property
    def conditional(self) -> bool:
        """A choice whose options are sub-specs or hold spaces of their own."""
        return self.kind == "choice" and any(
            isinstance(o, (dict, list)) or isinstance(o, Space) for o in self.options)

    @property
    def default(self) -> Any:
        """The default: an option index for choices, else a value."""
        body = self.body
        if self.kind == "choice":
            return 0 if body.default is None else body.values.index(body.default)
        if self.kind == "bool":
            return body.default
        return body.min if body.default is None else body.default

    def labels(self) -> list[Any]:
        """The values a tuner sees for a choice: the options themselves when they are scalars
        of one type, else a readable label per option (``adam``, ``sgd``, ``null``, ...)."""
        options = self.body.values
        scalar = all(isinstance(o, (str, int, float)) and not isinstance(o, bool)
                     for o in options)
        if scalar and len({type(o) for o in options}) == 1:
            return list(options)
        if scalar and all(isinstance(o, (int, float)) for o in options):
            return [float(o) for o in options]  # KerasTuner refuses a mix of int and float
        labels = []
        for i, option in enumerate(options):
            if isinstance(option, dict) and isinstance(option.get("type"), str):
                labels.append(option["type"])
            elif isinstance(option, (str, int, float, bool)) or option is None:
                labels.append(option if isinstance(option, str) else json.dumps(option))
            else:
                labels.append(f"option{i}")
        return [f"{label}#{i}" if labels.count(label) > 1 else label
                for i, label in enumerate(labels)]

    def candidates(self) -> list[tuple[Any, tuple[PathPart, ...]]]:
        """Values to validate, each with where it is written: every option, both bounds."""
        key = f"${self.kind}"
        if self.kind == "choice":
            return [(i, p) for i, p in enumerate(self.option_paths)]
        if self.kind == "bool":
            return [(False, (*self.path, key)), (True, (*self.path, key))]
        body = self.body
        top = body.top() if isinstance(body, IntSpace) else body.max
        out = [(body.min, (*self.path, key, "min")), (top, (*self.path, key, "max"))]
        if body.default is not None:
            out.append((body.default, (*self.path, key, "default")))
        return out

    def describe(self) -> dict[str, Any]:
        """Plain data that identifies the space (for fingerprints and summaries)."""
        data = {"name": self.name, "kind": self.kind,
                "body": self.body.model_dump(mode="json")}
        data["when"] = [[p.name, i] for p, i in self.parents]
        return data


def strip_space_parts(path: tuple[PathPart, ...]) -> tuple[PathPart, ...]:
    """``(training, optimizer, $choice, 0, learning_rate)`` -> ``(training, optimizer,
    learning_rate)``: the location of a value once its enclosing choices are resolved."""
    out: list[PathPart] = []
    skip = 0
    for i, part in enumerate(path):
        if skip:
            skip -= 1
            if part == "values" and i + 1 < len(path):
                skip = 1
            continue
        if isinstance(part, str) and part.startswith("$"):
            skip = 1
            continue
        out.append(part)
    return tuple(out)


def is_space(value: Any) -> bool:
    """True for a mapping written as a search space (one key, starting with ``$``)."""
    return isinstance(value, dict) and any(isinstance(k, str) and k.startswith("$") for k in value)


def has_spaces(raw: Any) -> bool:
    """True when any value of ``raw`` is a search space."""
    if isinstance(raw, dict):
        return is_space(raw) or any(has_spaces(v) for v in raw.values())
    if isinstance(raw, list):
        return any(has_spaces(v) for v in raw)
    return False


def _body_errors(exc: ValidationError, body: Any, where: tuple[PathPart, ...]) -> list[SpecError]:
    from kspec.spec.loader import translate_errors

    return [e.under(where) for e in translate_errors(exc, body if isinstance(body, dict) else {})]


def parse_spaces(raw: dict[str, Any], source: str = "<spec>") -> tuple[Any, list[Space]]:
    """Replace every search space of ``raw`` by a :class:`Space`; check their syntax.

    Returns:
        The parsed tree (``raw`` with Space objects in place of spaces) and every space, in
        the order they are written (parents before the spaces inside their options).

    Raises:
        SpecErrors: every syntax problem, each with its path (``...units.$int.min``).

    Example:
        >>> tree, spaces = parse_spaces({"model": {"units": {"$choice": [8, 16]}}})
        >>> [s.name for s in spaces]
        ['model.units']
    """
    errors: list[SpecError] = []
    spaces: list[Space] = []

    def walk(node: Any, path: tuple[PathPart, ...], parents: tuple) -> Any:
        if isinstance(node, dict) and is_space(node):
            return space(node, path, parents)
        if isinstance(node, dict):
            return {k: walk(v, (*path, k), parents) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i), parents) for i, v in enumerate(node)]
        return node

    def space(node: dict, path: tuple[PathPart, ...], parents: tuple) -> Any:
        if path and path[0] in FIXED_SECTIONS:
            errors.append(SpecError(path, f"search spaces are not allowed in '{path[0]}': it "
                                    "must be the same in every trial",
                                    valid="spaces in the model and training sections"))
            return None
        if len(node) != 1:
            errors.append(SpecError(path, "a search space is a mapping with exactly one key "
                                    f"({', '.join(SPACE_KINDS)})", value=node))
            return None
        (key, body), = node.items()
        if key not in _BODIES:
            errors.append(SpecError.unknown_name((*path, key), "search space", key, SPACE_KINDS))
            return None
        where = (*path, key)
        if key == "$choice" and isinstance(body, list):
            data, opts_at = {"values": body}, where
        elif key == "$bool" and body is None:
            data, opts_at = {}, where
        elif isinstance(body, dict):
            data, opts_at = body, (*where, "values")
        else:
            form = ("a list of options, or {values: [...], default: ...}" if key == "$choice"
                    else "a mapping such as {min: 1, max: 8}" if key in ("$int", "$float")
                    else "{} or {default: true}")
            errors.append(SpecError(where, f"{key} takes {form}", value=body))
            return None
        if key != "$choice" and has_spaces(data):
            errors.append(SpecError(where, "the bounds of a range cannot be search spaces"))
            return None
        try:
            validated = _BODIES[key].model_validate(
                {k: v for k, v in data.items() if k != "values"} | {"values": [None]}
                if key == "$choice" else data)
        except ValidationError as e:
            errors.extend(_body_errors(e, data, where))
            return None
        result = Space(key[1:], path, validated, parents=parents)
        if key == "$choice":
            values = data.get("values")
            if not isinstance(values, list) or not values:
                errors.append(SpecError((*where, "values") if opts_at != where else where,
                                        "a choice needs at least one option", value=values))
                return None
            validated.values = values
            if validated.default is not None and validated.default not in values:
                errors.append(SpecError((*where, "default"), "the default is not one of the "
                                        "values", value=validated.default))
                return None
            spaces.append(result)
            for i, option in enumerate(values):
                result.option_paths.append((*opts_at, i))
                result.options.append(walk(option, (*opts_at, i), (*parents, (result, i))))
            return result
        spaces.append(result)
        return result

    tree = walk(raw, (), ())
    if errors:
        raise SpecErrors(errors, source=source)
    _check_size(spaces, source)
    return tree, spaces


MAX_SPACE_VALUES = 1000
"""Values the search spaces of one spec may offer (each is validated on its own)."""


def _check_size(spaces: list[Space], source: str) -> None:
    total = 0
    for space in spaces:
        total += len(space.candidates())
        if total > MAX_SPACE_VALUES:
            raise SpecErrors([SpecError(
                space.path, f"the {len(spaces)} search spaces offer more than "
                f"{MAX_SPACE_VALUES:,} values to check (every option, every bound)",
                valid="fewer spaces or options; $int/$float ranges for long lists")],
                source=source)


Chooser = Callable[[Space], Any]
Scope = Callable[[Space, int], contextlib.AbstractContextManager]


def resolve(tree: Any, choose: Chooser, scope: Scope | None = None) -> Any:
    """The plain spec for one assignment: each space replaced by ``choose(space)``.

    ``choose`` returns an option index for a choice and a value for the others. When
    ``scope`` is given, every option of a conditional choice is walked inside
    ``scope(choice, index)`` (so KerasTuner sees every branch); only the chosen one is kept.
    """
    if isinstance(tree, Space):
        if tree.kind != "choice":
            return choose(tree)
        chosen = choose(tree)
        result = None
        for i, option in enumerate(tree.options):
            if i != chosen and (scope is None or not tree.conditional):
                continue
            with scope(tree, i) if scope is not None and tree.conditional else \
                    contextlib.nullcontext():
                value = resolve(option, choose, scope)
            if i == chosen:
                result = value
        return copy.deepcopy(result)
    if isinstance(tree, dict):
        return {k: resolve(v, choose, scope) for k, v in tree.items()}
    if isinstance(tree, list):
        return [resolve(v, choose, scope) for v in tree]
    return tree


def default_choice(space: Space) -> Any:
    """The chooser of the default configuration (first option / min / ``default:``)."""
    return space.default
