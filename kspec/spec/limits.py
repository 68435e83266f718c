"""Bounds on a raw spec tree, whatever it was read from: nesting depth, size, integers.

A spec is a small tree of mappings, lists and scalars. Anything far outside that shape (a
list nested 400 deep, a structure that contains itself, a "billion laughs" of shared
sub-trees, a 5,000-digit integer) would otherwise surface as a ``RecursionError``, a hang or
a ``ValueError`` deep inside the validator; :func:`check_tree` refuses it first, with the
spec path, in time proportional to the spec as written.

Example:
    >>> check_tree({"model": {"layers": [[[[1]]]]}}, max_depth=4)
    Traceback (most recent call last):
    kspec.errors.SpecError: model.layers[0][0]: nested more than 4 levels deep ...
"""

from __future__ import annotations

from typing import Any

from kspec.errors import PathPart, SpecError, format_path

MAX_DEPTH = 64
"""Mappings and lists nested deeper than this are refused (a real spec uses about 10)."""

MAX_NODES = 20_000
"""Values in a spec once shared parts (YAML aliases) are copied in (a real spec has ~100)."""

MAX_INT_DIGITS = 100
"""Integers longer than this are refused before anything converts or prints them."""

_SHOWN_PARTS = 6  # a refused path is shown up to this many parts


def _where(path: tuple[PathPart, ...]) -> str:
    return format_path(path[:_SHOWN_PARTS]) + ("..." if len(path) > _SHOWN_PARTS else "")


def _children(node: Any) -> list[tuple[PathPart, Any]]:
    if isinstance(node, dict):
        return [(k if isinstance(k, (str, int)) else str(k), v) for k, v in node.items()]
    if isinstance(node, (list, tuple)):
        return list(enumerate(node))
    return []


def check_tree(tree: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES,
               root: tuple[PathPart, ...] = ()) -> None:
    """Refuse a raw spec that is too deep, too large, recursive or holds huge integers.

    Shared sub-trees count once per place they appear (that is how much work validating
    them takes), but are walked once, so a "billion laughs" is refused in milliseconds.
    The walk keeps its own stack: no recursion, whatever the depth.

    Args:
        tree: the raw spec (or a value about to be placed in one at ``root``).
        max_depth: deepest nesting of mappings and lists allowed.
        max_nodes: most values allowed, shared sub-trees counted where they appear.
        root: the path of ``tree`` in the spec, for messages.

    Raises:
        SpecError: at the path of the first offending value.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values below and including, height)
    on_path: set[int] = set()
    stack: list[tuple[Any, tuple[PathPart, ...], bool]] = [(tree, root, False)]
    while stack:
        node, path, finished = stack.pop()
        if finished:
            on_path.discard(id(node))
            kids = [sizes[id(v)] if isinstance(v, (dict, list, tuple)) else (1, 0)
                    for _, v in _children(node)]
            size = 1 + sum(k[0] for k in kids)
            height = 1 + max((k[1] for k in kids), default=0)
            if size > max_nodes:
                raise SpecError(_where(path) if path else "<spec>",
                                f"holds {size:,} values or more once shared parts (YAML "
                                f"aliases) are copied in; a spec may hold {max_nodes:,}")
            if height + len(path) - len(root) > max_depth:
                raise SpecError(_where(path), f"nested more than {max_depth} levels deep")
            sizes[id(node)] = (size, height)
            continue
        if isinstance(node, int) and not isinstance(node, bool):
            if node.bit_length() > MAX_INT_DIGITS * 3.33:
                raise SpecError(_where(path), f"an integer of about "
                                f"{int(node.bit_length() * 0.30103) + 1} digits is too large")
            continue
        if not isinstance(node, (dict, list, tuple)) or id(node) in sizes:
            continue
        if len(path) - len(root) >= max_depth:
            raise SpecError(_where(path), f"nested more than {max_depth} levels deep")
        on_path.add(id(node))
        stack.append((node, path, True))
        for key, value in _children(node):
            if isinstance(value, (dict, list, tuple)) and id(value) in on_path:
                raise SpecError(_where((*path, key)), "this value contains itself (a "
                                "recursive alias or structure)")
            stack.append((value, (*path, key), False))


def unshared(tree: Any) -> Any:
    """A copy of a checked tree in which no two places share a mapping or list.

    YAML aliases (and Python dicts built by reference) make several places of a spec one
    object; overriding one of them (``--set``) must not change the others.
    """
    if isinstance(tree, dict):
        return {k: unshared(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [unshared(v) for v in tree]
    return tree
