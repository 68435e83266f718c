"""Reading specs from files, strings and dicts; ``--set`` overrides; schema validation with
pydantic's errors translated into SpecErrors at the user's spec paths.

This module is the schema step only; the whole validation pipeline (schema, then search
spaces, then lint) is :func:`kspec.validation.load_spec`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from pydantic import ValidationError

from kspec.errors import PathPart, SpecError, SpecErrors, format_path, suggest
from kspec.spec.base import RelativeSpecError
from kspec.spec.root import Spec


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (YAML would keep the last silently)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, Any] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        seen[key] = True
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)

# YAML 1.1 (PyYAML) reads `1e-3` as a string; YAML 1.2 and JSON read it as a number, which
# is what anyone writing a learning rate means. Resolve YAML 1.2 floats.
_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_UniqueKeyLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789.")
)


def yaml_value(text: str) -> Any:
    """Parse one YAML value as specs do (``1e-3`` is a number)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def parse_text(text: str, source: str = "<string>") -> dict[str, Any]:
    """Parse YAML (or JSON, which is YAML) into a mapping, safely."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise SpecError("<spec>", f"not valid YAML/JSON: {e}", source=source) from e
    if not isinstance(data, dict):
        raise SpecError(
            "<spec>", "a spec must be a mapping at the top level", value=data, source=source
        )
    return data


def read_raw(source: Any) -> tuple[dict[str, Any], str]:
    """The raw mapping of a spec and a label for messages (file name or ``<dict>``)."""
    if isinstance(source, Spec):
        return source.to_dict(), "<spec>"
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source)), "<dict>"
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        looks_like_path = isinstance(source, os.PathLike) or (
            "\n" not in text and re.search(r"\.(ya?ml|json)$", text, re.I) is not None
        )
        if looks_like_path:
            path = Path(text)
            if not path.is_file():
                raise SpecError("<spec>", f"spec file not found: {text}", source=text)
            return parse_text(path.read_text(encoding="utf-8"), str(path)), str(path)
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
        node[last] = value
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


def translate_errors(exc: ValidationError, raw: Mapping[str, Any]) -> list[SpecError]:
    """Turn pydantic's errors into SpecErrors that name the path in the user's spec."""
    from kspec.spec.model import layer_names

    grouped: dict[str, SpecError] = {}
    for err in exc.errors():
        path = _walk(raw, err["loc"], missing=err["type"] == "missing")
        kind, ctx = err["type"], err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, RelativeSpecError):
            err_obj = inner.inner.under(path)
        elif kind == "union_tag_invalid":
            expected = re.findall(r"'([^']*)'", ctx.get("expected_tags", ""))
            valid = layer_names() if "_layer_tag" in ctx.get("discriminator", "") else expected
            err_obj = SpecError.unknown_name(_join(path, ".type"), "type", ctx.get("tag"), valid)
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
                f"invalid value {err['input']!r}",
                valid=valid,
                hint=suggest(err["input"], valid),
            )
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
