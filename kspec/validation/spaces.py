"""Search spaces validated like ordinary values; a spec with spaces loads as its default.

Every value a space can take (each option of a choice, both bounds of a range, each side of a
boolean) is substituted into the spec, with every other space at its default, and the normal
schema validation runs on the result. An error is reported where the offending value is
written: ``model.layers[1].activation.$choice[2]: unknown activation 'rleu'``.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from kspec.errors import PathPart, SpecError, SpecErrors, format_path
from kspec.spec.loader import apply_overrides, check_schema, read_raw
from kspec.spec.paths import relative_to
from kspec.spec.search import SearchSpec
from kspec.spec.spaces import Space, default_choice, has_spaces, parse_spaces, resolve
from kspec.validation.lint import lint_spec


class SearchSpaceNotice(UserWarning):
    """A spec with search spaces was loaded as its default configuration."""


def _errors_of(raw: Mapping[str, Any]) -> list[SpecError]:
    try:
        spec = check_schema(raw)
    except SpecErrors as e:
        return list(e.errors)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lint_spec(spec)  # combinations that cannot be right are errors for any value
    except SpecError as e:
        return list(e.errors)
    return []


def _default_where(space: Space, chosen: Any) -> tuple[PathPart, ...]:
    """Where the value a space takes in a probe is written."""
    key = f"${space.kind}"
    if space.kind == "choice":
        return space.option_paths[chosen]
    if space.kind == "bool":
        return (*space.path, key)
    return (*space.path, key, "default" if space.body.default is not None else "min")


def _attribute(err: SpecError,
               placed: list[tuple[Space, tuple[PathPart, ...]]]) -> SpecError | None:
    """Move an error found in a resolved spec to where its value is written, if a space's."""
    best = None
    for space, where in placed:
        at = format_path(space.resolved_path)
        if err.path == at or err.path.startswith((at + ".", at + "[")):
            if best is None or len(space.resolved_path) > len(best[0].resolved_path):
                best = (space, where, at)
    if best is None:
        return None
    _, where, at = best
    return err.moved(format_path(where) + err.path[len(at):])


def _show(space: Space, value: Any) -> str:
    if space.kind == "choice":
        return repr(space.body.values[value])
    return repr(value)


def check_spaces(raw: dict[str, Any], source: str = "<spec>") -> tuple[Any, list[Space]]:
    """Parse the spaces of ``raw`` and validate every value each of them can take.

    Returns:
        The parsed tree and the spaces (see :func:`kspec.spec.spaces.parse_spaces`).

    Raises:
        SpecErrors: every problem, at the path where the bad value is written.

    Example:
        >>> raw = {"model": {"layers": [{"type": "dense", "units": {"$choice": [8, -1]}}]},
        ...        "training": {"loss": "mse"}}
        >>> check_spaces(raw)
        Traceback (most recent call last):
        kspec.errors.SpecErrors: model.layers[0].units.$choice[1]: ...
    """
    tree, spaces = parse_spaces(raw, source)
    found: dict[tuple[str, str], SpecError] = {}

    def placed_for(choice: dict[Space, Any]) -> list[tuple[Space, tuple[PathPart, ...]]]:
        out = []
        for s in spaces:
            if all(choice.get(p, p.default) == i for p, i in s.parents):
                out.append((s, _default_where(s, choice.get(s, s.default))))
        return out

    base = _errors_of(resolve(tree, default_choice))
    base_keys = {(e.path, e.reason) for e in base}
    for err in base:
        moved = _attribute(err, placed_for({})) or err
        found.setdefault((moved.path, moved.reason), moved)

    for space in spaces:
        parents = {p: i for p, i in space.parents}
        for value, where in space.candidates():
            choice = {**parents, space: value}
            if all(choice[s] == s.default for s in choice):
                continue  # the default configuration, checked above
            errors = _errors_of(resolve(tree, lambda s: choice.get(s, s.default)))
            placed = [(s, where if s is space else w) for s, w in placed_for(choice)]
            for err in errors:
                moved = _attribute(err, placed)
                if moved is None:
                    if (err.path, err.reason) in base_keys:
                        continue
                    moved = SpecError(err.path, f"{err.reason} (when {space.name} is "
                                      f"{_show(space, value)})", valid=err.valid, hint=err.hint)
                found.setdefault((moved.path, moved.reason), moved)
    if found:
        raise SpecErrors(list(found.values()), source=source)
    return tree, spaces


def resolve_spaces_for_load(raw: dict[str, Any], source: str = "<spec>") -> dict[str, Any]:
    """The loader's hook: a spec with spaces, checked and resolved to its defaults.

    A spec without spaces is returned unchanged. A notice (``SearchSpaceNotice``) says that
    the default configuration is used, so that ``kspec fit`` on a search spec trains it.
    """
    if not has_spaces(raw):
        return raw
    tree, spaces = check_spaces(raw, source)
    names = ", ".join(s.name for s in spaces[:4]) + (", ..." if len(spaces) > 4 else "")
    warnings.warn(SearchSpaceNotice(
        f"{len(spaces)} search space(s) ({names}) set to their defaults (first "
        "choice / min / default:); `kspec tune` searches them"), stacklevel=4)
    return resolve(tree, default_choice)


# Settings that may change between a search and its resumption without changing the trials.
_VOLATILE = ("max_trials", "overwrite", "directory", "project", "distributed",
             "max_consecutive_failures")


@dataclass
class SearchPlan:
    """A spec with search spaces, checked; what :func:`kspec.tune` works from.

    Attributes:
        raw: the spec as written (overrides applied), spaces included.
        tree: ``raw`` with :class:`Space` objects in place of spaces.
        spaces: every space, parents first.
        default: the default configuration as a validated Spec.
        source: the file name (or ``<dict>``) for messages.
    """

    raw: dict[str, Any]
    tree: Any
    spaces: list[Space]
    default: Any
    source: str = "<spec>"

    @property
    def search(self) -> SearchSpec:
        """The ``search:`` section (defaults when the spec has none)."""
        return self.default.search or SearchSpec()

    def resolve(self, choose, scope=None) -> dict[str, Any]:
        """The raw spec for one assignment (see :func:`kspec.spec.spaces.resolve`)."""
        return resolve(self.tree, choose, scope)

    def validate(self, resolved: Mapping[str, Any]):
        """Validate a resolved spec (no lint warnings, no notices): a Spec or SpecErrors."""
        return check_schema(resolved, self.source)

    def identity(self) -> dict[str, Any]:
        """What a resumed search must share with the first run: the spec and its spaces,
        minus settings that do not change the trials (max_trials, directory, ...)."""
        raw = copy.deepcopy(self.raw)
        search = raw.get("search")
        if isinstance(search, dict):
            for key in _VOLATILE:
                search.pop(key, None)
            if not search:
                raw.pop("search")
        return raw

    def fingerprint(self) -> str:
        """A hash of :meth:`identity`; a changed search space changes it."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_search(source: Any, overrides: Mapping[str, Any] | Iterable[str] | None = None
                ) -> SearchPlan:
    """Read a spec with search spaces, check every space, and keep the spaces.

    This is the counterpart of :func:`kspec.load_spec` (which resolves the spaces to their
    defaults) for the tuner: the raw spec with its spaces, parsed.

    Example:
        >>> plan = load_search("specs/search_mlp.yaml")
        >>> plan.spaces[0].name
        'model.layers[1].units'
    """
    from kspec.validation.load import validate

    raw, label = read_raw(source)
    if overrides:
        apply_overrides(raw, overrides)
    relative_to(raw, Path.cwd())  # as load_spec: trials and best_spec.yaml name the same files
    tree, spaces = check_spaces(raw, label)
    # The default configuration goes through the loader, lint warnings included.
    return SearchPlan(raw, tree, spaces, validate(resolve(tree, default_choice), label), label)


def raw_spec(source: Any, overrides: Mapping[str, Any] | Iterable[str] | None = None) -> dict:
    """The spec as written, search spaces included, after checking it (for custom tuners)."""
    return load_search(source, overrides).raw


def diff_paths(old: Any, new: Any, path: tuple[PathPart, ...] = ()) -> list[str]:
    """Paths at which two raw specs differ (for the changed-space refusal)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in list(old) + [k for k in new if k not in old]:
            if key not in old or key not in new:
                out.append(format_path((*path, key)))
            else:
                out += diff_paths(old[key], new[key], (*path, key))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in diff_paths(a, b, (*path, i))]
    return [] if old == new else [format_path(path)]
