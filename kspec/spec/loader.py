"""Reading specs from files, strings and dicts; ``--set`` overrides; schema validation with
pydantic's errors translated into SpecErrors at the user's spec paths.

This module is the schema step only; the whole validation pipeline (schema, then search
spaces, then lint) is :func:`kspec.validation.load_spec`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from kspec.errors import PathPart, SpecError, SpecErrors, format_path, safe_repr, suggest
from kspec.spec.base import RelativeSpecError
from kspec.spec.limits import check_tree, unshared
from kspec.spec.paths import relative_to
from kspec.spec.root import Spec
from kspec.spec.yaml_reader import parse_text, read_file, yaml_value

__all__ = ["apply_overrides", "check_schema", "json_schema", "parse_key_path",
           "parse_overrides", "parse_text", "read_raw", "to_yaml", "translate_errors",
           "yaml_value"]


def read_raw(source: Any) -> tuple[dict[str, Any], str]:
    """The raw mapping of a spec and a label for messages (file name or ``<dict>``).

    A file is read within bounds (:mod:`kspec.spec.yaml_reader`) and its relative paths are
    made relative to the file's folder (:mod:`kspec.spec.paths`); a dict or YAML text keeps
    them relative to the current folder. Every raw spec is checked for depth, size, cycles
    and huge integers (:func:`kspec.spec.limits.check_tree`) and no two places of the copy
    returned share a value.
    """
    if isinstance(source, Spec):
        return source.to_dict(), "<spec>"
    if isinstance(source, Mapping):
        try:
            check_tree(source)
        except SpecError as e:
            raise SpecErrors([e], source="<dict>") from None
        return unshared(dict(source)), "<dict>"
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        looks_like_path = isinstance(source, os.PathLike) or (
            "\n" not in text and re.search(r"\.(ya?ml|json)$", text, re.I) is not None
        )
        if looks_like_path:
            raw = read_file(text)
            return relative_to(raw, Path(text).resolve().parent), str(text)
        return parse_text(text), "<string>"
    raise TypeError(f"a spec is a path, a YAML/JSON string, a dict or a Spec; got {type(source)}")


# -- overrides ------------------------------------------------------------------------------
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key_path(key: str) -> list[PathPart]:
    """``"model.layers[0].units"`` -> ``["model", "layers", 0, "units"]``."""
    parts: list[PathPart] = []
    pos = 0
    for m in _PART.finditer(key):
        if m.start() != pos and key[pos:m.start()] != ".":
            raise SpecError(key, "not a key path like 'training.epochs' or 'model.layers[0].units'")
        parts.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not parts or pos != len(key):
        raise SpecError(key, "not a key path like 'training.epochs' or 'model.layers[0].units'")
    return parts


def parse_overrides(texts: Iterable[str]) -> dict[str, Any]:
    """``["a.b=VALUE", ...]`` (the CLI's ``--set``) -> ``{"a.b": value}``, VALUE read as YAML."""
    out: dict[str, Any] = {}
    for text in texts:
        if "=" not in text:
            raise SpecError(text, "an override is KEY.PATH=VALUE", value=text)
        key, value = text.split("=", 1)
        out[key.strip()] = yaml_value(value) if value.strip() else None
    return out


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any] | Iterable[str]) -> dict:
    """Set values by key path. Strings ``"a.b=VALUE"`` parse VALUE as YAML."""
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    for key, value in overrides.items():
        parts = parse_key_path(key)
        node: Any = raw
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    raise SpecError(format_path(parts[: i + 1]), "no such list item", value=key)
                node = node[part]
            else:
                if not isinstance(node, dict):
                    raise SpecError(format_path(parts[: i + 1]), "not a mapping", value=key)
                node = node.setdefault(part, [] if isinstance(nxt, int) else {})
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                raise SpecError(format_path(parts), "no such list item", value=key)
        elif not isinstance(node, dict):
            raise SpecError(format_path(parts), "not a mapping", value=key)
        check_tree(value, root=tuple(parts))
        node[last] = unshared(value)
    return raw


# -- schema validation -----------------------------------------------------------------------
def check_schema(raw: Mapping[str, Any], source: str = "<dict>") -> Spec:
    """Validate a raw mapping (without search spaces) against the schema.

    Raises:
        SpecErrors: every schema problem, each at its path in ``raw``.
    """
    try:
        return Spec.model_validate(raw)
    except ValidationError as e:
        raise SpecErrors(translate_errors(e, raw), source=source) from None


def _walk(raw: Any, loc: tuple[Any, ...], missing: bool = False) -> list[PathPart]:
    """Map a pydantic location onto the user's data, dropping union/tag entries."""
    path: list[PathPart] = []
    node = raw
    for n, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif (missing and n == len(loc) - 1 and isinstance(node, dict) and isinstance(part, str)
              and _is_field_name(part)):
            # a missing key (always last in the location): part of the path to write
            path.append(part)
            node = None
        # else: a union member or discriminator tag name; not part of the user's path
    return path


def _is_field_name(part: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) is not None and part not in {
        "str", "int", "float", "bool", "list", "dict", "custom",
    }


def _join(path: list[PathPart], rel: str) -> str:
    base = format_path(path)
    if not rel:
        return base
    return (base + rel) if path else format_path(parse_key_path(rel.lstrip(".")))


# Errors that only say a value has another type than one member of a union expects.
_TYPE_ERRORS = {"dict_type", "list_type", "model_type", "model_attributes_type", "string_type",
                "int_type", "float_type", "bool_type", "int_parsing", "float_parsing",
                "bool_parsing", "literal_error", "none_required", "is_instance_of",
                "tuple_type", "set_type", "int_from_float"}


def _first_branch(raw: Any, loc: tuple[Any, ...]) -> tuple[tuple, Any] | None:
    """``(location of the union, member label)`` of the first union member in ``loc``."""
    node = raw
    for n, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return tuple(loc[:n]), part
    return None


def _drop_other_branches(errors: list[dict], raw: Any) -> list[tuple[dict, list[PathPart]]]:
    """Errors with their user paths, less the union members the value was not meant for.

    ``metrics: [acuracy]`` fails as a list (unknown metric at ``metrics[0]``) and as a
    per-output mapping ("should be a valid dictionary" at ``metrics``); only the first is a
    problem of the spec. Of the members of a union, those whose errors reach deepest into
    the value are kept (and of those, the ones with the fewest errors); then a type error at
    a path is dropped when another error lies below that path or is more than a type error
    at it.
    """
    located = [(err, _walk(raw, err["loc"], missing=err["type"] == "missing"),
                _first_branch(raw, err["loc"])) for err in errors]
    deepest: dict[tuple, int] = {}
    for _, path, branch in located:
        if branch is not None:
            deepest[branch[0]] = max(deepest.get(branch[0], 0), len(path))
    depth_of: dict[tuple, int] = {}
    count_of: dict[tuple, int] = {}
    for _, path, branch in located:
        if branch is not None:
            depth_of[branch] = max(depth_of.get(branch, 0), len(path))
            count_of[branch] = count_of.get(branch, 0) + 1
    fewest: dict[tuple, int] = {}  # among the deepest members, the fewest errors win
    for branch, depth in depth_of.items():
        if depth == deepest[branch[0]]:
            fewest[branch[0]] = min(fewest.get(branch[0], count_of[branch]), count_of[branch])
    located = [(err, path, branch) for err, path, branch in located
               if branch is None or (depth_of[branch] == deepest[branch[0]]
                                     and count_of[branch] == fewest[branch[0]])]
    keep = []
    for err, path, _ in located:
        if err["type"] in _TYPE_ERRORS:
            n = len(path)
            if any((len(p) > n and p[:n] == path) or (p == path and e["type"] not in
                                                        _TYPE_ERRORS)
                   for e, p, _ in located if e is not err):
                continue
        keep.append((err, path))
    return keep


def _pattern_phrases() -> dict[str, str]:
    from kspec.spec.base import KERAS_NAME
    from kspec.spec.model import _NAME
    from kspec.spec.root import NAME

    return {
        KERAS_NAME: "a name Keras and TensorFlow accept: a letter, digit or '.', then "
                    "letters, digits, '_', '.' or '-'; at most 128 characters (no '/' or spaces)",
        _NAME: "an identifier: a letter, then letters, digits or '_'; at most 128 characters",
        NAME: "1 to 100 letters, digits, '_', '.' or '-' (it names run folders)",
    }


_PATTERNS = _pattern_phrases()


def translate_errors(exc: ValidationError, raw: Mapping[str, Any]) -> list[SpecError]:
    """Turn pydantic's errors into SpecErrors that name the path in the user's spec."""
    from kspec.spec.model import NOT_A_NAME, layer_names

    grouped: dict[str, SpecError] = {}
    for err, path in _drop_other_branches(exc.errors(), raw):
        kind, ctx = err["type"], err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, RelativeSpecError):
            err_obj = inner.inner.under(path)
        elif kind == "union_tag_invalid":
            expected = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
            valid = layer_names() if "_layer_tag" in ctx.get("discriminator", "") else expected
            if ctx.get("tag") == NOT_A_NAME:
                given = err["input"].get("type") if isinstance(err["input"], dict) else None
                err_obj = SpecError(_join(path, ".type"), "a type is a name", value=given,
                                    valid=valid)
            else:
                err_obj = SpecError.unknown_name(_join(path, ".type"), "type", ctx.get("tag"),
                                                 valid)
        elif kind == "union_tag_not_found":
            valid = layer_names() if "_layer_tag" in ctx.get("discriminator", "") else None
            err_obj = SpecError(_join(path, ".type"), "missing 'type'", valid=valid)
        elif kind == "missing":
            err_obj = SpecError(format_path(path), "required key is missing")
        elif kind == "literal_error":
            expected = re.findall(r"'([^']*)'|(\d+)", ctx.get("expected", ""))
            valid = [a or b for a, b in expected]
            err_obj = SpecError(
                format_path(path),
                f"invalid value {safe_repr(err['input'])}",
                valid=valid,
                hint=suggest(err["input"], valid),
            )
        elif kind == "string_pattern_mismatch" and ctx.get("pattern") in _PATTERNS:
            err_obj = SpecError(format_path(path), "not a valid name", value=err["input"],
                                valid=_PATTERNS[ctx["pattern"]])
        else:
            msg = err["msg"]
            msg = re.sub(r"^(Value error, |Assertion failed, )", "", msg)
            msg = re.sub(r"^Input ", "", msg)
            err_obj = SpecError(format_path(path), msg[:1].lower() + msg[1:], value=err["input"])
        key = err_obj.path
        if key in grouped and kind not in ("missing",):
            prev = grouped[key]
            if err_obj.reason not in prev.reason:
                prev.reworded(f"{prev.reason} or {err_obj.reason}")
            continue
        grouped[key] = err_obj
    return list(grouped.values())


def to_yaml(spec: Spec | Mapping[str, Any]) -> str:
    """A spec as YAML, keys in schema order."""
    data = spec.to_dict() if isinstance(spec, Spec) else dict(spec)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def json_schema() -> dict[str, Any]:
    """JSON Schema of the spec format, for editors (``kspec schema``).

    Two things pydantic's schema cannot say on its own are added: a user-registered layer
    type is any name *other than* a built-in one (so exactly one layer schema matches each
    layer), and any value may be written as a search space (``{$choice: [...]}``, ...).
    """
    from kspec.spec.model import BUILTIN_LAYERS
    from kspec.spec.search import search_space_json_schema

    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kspec model spec"
    defs = schema.setdefault("$defs", {})
    custom = defs.get("CustomLayer", {}).get("properties", {}).get("type")
    if custom is not None:
        custom["not"] = {"enum": sorted(BUILTIN_LAYERS)}
    # Models inside the `search:` section hold settings, never search spaces.
    space_defs = _reachable(defs, "SearchSpec")
    ref = {"$ref": "#/$defs/SearchSpace"}
    for name, model in [("", schema), *defs.items()]:
        if name in space_defs:
            continue
        for key, prop in model.get("properties", {}).items():
            if name == "" and key in ("kspec", "search"):
                continue
            model["properties"][key] = {"anyOf": [_space_items(prop, ref), ref]}
    defs["SearchSpace"] = search_space_json_schema()
    return schema


def _reachable(defs: dict[str, Any], start: str) -> set[str]:
    """Names of ``defs`` that ``$defs/start`` refers to, directly or through others."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        text = json.dumps(defs[name])
        todo += re.findall(r'"#/\$defs/([^"]+)"', text)
    return seen


def _space_items(prop: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Let list items be search spaces too (``metrics: [{$choice: [...]}]``)."""
    for node in [prop, *prop.get("anyOf", [])]:
        if isinstance(node.get("items"), dict):
            node["items"] = {"anyOf": [node["items"], ref]}
    return prop
