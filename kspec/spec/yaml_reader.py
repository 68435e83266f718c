"""Reading spec files and YAML text safely and within bounds.

What a spec file can hold is plain YAML (JSON is YAML), read with a ``SafeLoader`` subclass
that also:

- refuses duplicate keys (YAML would keep the last one silently);
- reads ``1e-3`` as a number (YAML 1.2 and JSON do; PyYAML's YAML 1.1 reads a string);
- supports merge keys (``<<: *defaults``), keys written beside them overriding the merged ones;
- refuses nesting deeper than :data:`~kspec.spec.limits.MAX_DEPTH`, aliases that refer to
  what contains them, aliases that copy the spec beyond :data:`~kspec.spec.limits.MAX_NODES`
  values (a "billion laughs"), and integers longer than 100 digits, each before anything
  expands them, so every attack is answered in milliseconds with one line naming the place.

Files larger than ``KSPEC_MAX_SPEC_BYTES`` bytes (default 4 MiB; the ``max_bytes`` argument
of :func:`read_file` and :func:`parse_text` overrides it) are refused before they are read,
and files must be UTF-8 (a BOM is allowed): anything else is refused with the byte offset.

Example:
    >>> parse_text("base: &b {type: dense, units: 8}\\nlayer: {<<: *b, units: 4}")["layer"]
    {'type': 'dense', 'units': 4}
"""

from __future__ import annotations

import codecs
import os
import re
from pathlib import Path
from typing import Any

import yaml

from kspec.errors import SpecError
from kspec.spec.limits import MAX_DEPTH, MAX_INT_DIGITS, MAX_NODES, check_tree, unshared

MAX_BYTES_ENV = "KSPEC_MAX_SPEC_BYTES"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def max_bytes() -> int:
    """The size limit for spec files and texts: ``$KSPEC_MAX_SPEC_BYTES`` or 4 MiB."""
    text = os.environ.get(MAX_BYTES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_BYTES
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise SpecError("<spec>", f"{MAX_BYTES_ENV} must be a positive number of bytes",
                        value=text)
    return value


class _Refused(yaml.YAMLError):
    """A bound broken while reading; carries the place in the text."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.problem_mark, self.context = problem, mark, None


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node) -> None:
    """Refuse a composed document that aliases would expand too far or into itself.

    Each node is measured once (aliases are shared nodes), so this costs the size of the
    text, not of its expansion.
    """
    sizes: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if finished:
            on_path.discard(id(node))
            kids = [sizes[id(k)] for k in _node_children(node)]
            size = 1 + sum(k[0] for k in kids)
            height = 1 + max((k[1] for k in kids), default=0)
            if size > MAX_NODES:
                raise _Refused(f"aliases expand the spec beyond {MAX_NODES:,} values (a "
                               "'billion laughs'?); write the values out or share less",
                               node.start_mark)
            if height > MAX_DEPTH + 1:  # +1: scalars are nodes too
                raise _Refused(f"aliases nest the spec more than {MAX_DEPTH} levels deep",
                               node.start_mark)
            sizes[id(node)] = (size, height)
            continue
        if id(node) in sizes:
            continue
        on_path.add(id(node))
        stack.append((node, True))
        for child in _node_children(node):
            if id(child) in on_path:
                raise _Refused("an alias refers to the mapping or list that contains it (a "
                               "recursive alias)", child.start_mark)
            if id(child) not in sizes:
                stack.append((child, False))


class SpecLoader(yaml.SafeLoader):
    """The safe, bounded YAML loader of specs (see the module docstring)."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        # PyYAML composes recursively: refuse deep nesting before Python's recursion limit.
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep",
                               self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None:
            _measure(node)
        return node


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader: SpecLoader, node: yaml.MappingNode, deep: bool = False):
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE_TAG:
            continue  # merged keys may be overridden by the keys written beside them
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable: the SafeLoader refuses it with its own message
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_int(loader: SpecLoader, node: yaml.ScalarNode) -> int:
    text = str(node.value).replace("_", "")
    if len(text) > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {len(text)} digits is too large", node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_value(loader: SpecLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))  # a lone `=` is text (YAML 1.1's value tag)


SpecLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
SpecLoader.add_constructor("tag:yaml.org,2002:value", _construct_value)

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
SpecLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def _one_line(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message (with a snippet of the text) as one line."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    problem = getattr(e, "problem", None)
    if problem is None:
        return " ".join(str(e).split())
    context = getattr(e, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + problem + (f" ({context})" if context else "")


def _load(text: str) -> Any:
    try:
        data = yaml.load(text, Loader=SpecLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:  # merge keys nested past Python's limit; never in a real spec
        raise _Refused(f"nested more than {MAX_DEPTH} levels deep", None) from None
    check_tree(data)  # integers and sizes of what the YAML constructors built
    return unshared(data)


def yaml_value(text: str) -> Any:
    """Parse one YAML value as specs do (``1e-3`` is a number); used by ``--set``.

    Raises:
        SpecError: text that is not YAML or breaks a bound, in one line.
    """
    try:
        return _load(text)
    except _Refused as e:
        raise SpecError("<value>", _one_line(e), value=text) from None
    except yaml.YAMLError as e:
        raise SpecError("<value>", f"not valid YAML: {_one_line(e)}", value=text) from None


def parse_text(text: str, source: str = "<string>", max_bytes: int | None = None
               ) -> dict[str, Any]:
    """Parse YAML (or JSON, which is YAML) into a mapping, safely and within bounds.

    Raises:
        SpecError: text too large, not YAML, breaking a bound, or not a mapping; one line.
    """
    limit = _limit() if max_bytes is None else max_bytes
    if len(text) > limit:
        raise SpecError("<spec>", f"the spec is {len(text):,} characters long; the limit is "
                        f"{limit:,} (set {MAX_BYTES_ENV} to raise it)", source=source)
    try:
        data = _load(text)
    except _Refused as e:  # valid YAML beyond a bound
        raise SpecError("<spec>", _one_line(e), source=source) from None
    except yaml.YAMLError as e:
        raise SpecError("<spec>", f"not valid YAML/JSON: {_one_line(e)}", source=source) \
            from None
    except SpecError as e:  # a bound of check_tree, at its spec path
        raise SpecError(e.path, e.reason, source=source) from None
    if not isinstance(data, dict):
        raise SpecError("<spec>", "a spec must be a mapping at the top level",
                        value=data, source=source)
    return data


def _limit() -> int:
    return max_bytes()


_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
         (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))


def decode(data: bytes, source: str) -> str:
    """The text of a spec file: UTF-8 (with or without a BOM), else a one-line SpecError
    that names the encoding or the first byte that cannot be read."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise SpecError("<spec>", f"the file is {name} text; save it as UTF-8",
                            source=source)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
        line = data[:offset].count(b"\n") + 1
        raise SpecError("<spec>", f"not UTF-8 text: byte 0x{data[offset]:02x} at offset "
                        f"{offset} (line {line}) cannot be decoded; is it a binary file? "
                        "save the spec as UTF-8", source=source) from None
    if "\x00" in text:
        offset = text.index("\x00")
        raise SpecError("<spec>", f"a NUL character at offset {offset}: a binary or UTF-16 "
                        "file? save the spec as UTF-8 text", source=source)
    return text


def read_file(path: str | os.PathLike, max_bytes: int | None = None) -> dict[str, Any]:
    """Read a spec file: size checked before reading, UTF-8 decoded, parsed within bounds.

    Args:
        path: the YAML or JSON file.
        max_bytes: the size limit; default ``$KSPEC_MAX_SPEC_BYTES`` or 4 MiB.

    Raises:
        SpecError: missing, unreadable, too large, not UTF-8, not YAML or not a mapping.
    """
    path = Path(path)
    source = str(path)
    limit = _limit() if max_bytes is None else max_bytes
    try:
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "not found"
            raise SpecError("<spec>", f"spec file {what}: {source}", source=source)
        size = path.stat().st_size
        if size > limit:
            raise SpecError("<spec>", f"the file is {size:,} bytes; a spec may have "
                            f"{limit:,} (set {MAX_BYTES_ENV} to raise the limit)",
                            source=source)
        with path.open("rb") as f:
            data = f.read(limit + 1)  # a file that grows while read is still bounded
    except OSError as e:
        raise SpecError("<spec>", f"cannot read the spec file: {e.strerror or e}",
                        source=source) from None
    if len(data) > limit:
        raise SpecError("<spec>", f"the file is larger than {limit:,} bytes (set "
                        f"{MAX_BYTES_ENV} to raise the limit)", source=source)
    return parse_text(decode(data, source), source, max_bytes=limit)
