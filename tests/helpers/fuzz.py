"""Seeded mutations of the example specs, as an outsider attacking kspec would write them.

Each mutation changes one to three places of a spec: a value swapped for one of another
type or an extreme (lists and mappings where names go, huge and negative numbers, names
Keras refuses), a key deleted, duplicated or replaced by a non-string, random text, deep
nesting, or a sub-tree moved elsewhere. Text mutations damage the YAML itself.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any, Iterator

import yaml

ROOT = Path(__file__).resolve().parents[2]

EXTREMES: list[Any] = [
    None, True, False, 0, -1, 1, 3, 1000, 65536, 2**20, 2**31 - 1, 2**31, 2**32 - 1, 2**32,
    2**63, 10**30, 10**400, -(10**30), 0.5, -0.0, 1e308, float("inf"), float("nan"),
    "", "x", "a/b", "a b", "_x", "relu", "dense", "output", "image", "same", "../..", "\x00",
    "é" * 3, "bundled:digits", "9" * 50, [], {}, [1, 2], [3, 3], [2**31 - 1], [1, 1, 1],
    {"a": 1}, [[]], {"type": []}, {"type": {}}, {"type": "dense"}, {1: 2}, {None: 1},
    {"$choice": [1, 2]}, {"$int": {"min": 1, "max": 3}}, {"$choice": []},
    {"$choice": [[1], {"a": 1}]}, {"$float": {"min": 1.0, "max": 0.0}},
]
ODD_KEYS: list[Any] = [1, None, True, 2.5, "a/b", "$x", "$choice", ""]


def example_specs() -> list[dict]:
    """Every spec in ``specs/`` as a raw mapping, in file-name order."""
    return [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "specs").glob("*.yaml"))]


def _nodes(tree: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    yield path, tree
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _nodes(value, (*path, key))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            yield from _nodes(value, (*path, i))


def _at(tree: Any, path: tuple) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def mutate(spec: dict, rng: random.Random, under: tuple[str, ...] | None = None) -> dict:
    """A copy of ``spec`` changed in one to three places (only below ``under`` if given)."""
    spec = copy.deepcopy(spec)
    for _ in range(rng.randint(1, 3)):
        places = [(p, n) for p, n in _nodes(spec) if p and (under is None or p[0] in under)]
        if not places:
            break
        path, node = rng.choice(places)
        parent, key = _at(spec, path[:-1]), path[-1]
        op = rng.random()
        if op < 0.45:
            parent[key] = copy.deepcopy(rng.choice(EXTREMES))
        elif op < 0.55:
            del parent[key]
        elif op < 0.65:
            if isinstance(parent, list):
                parent.insert(key, copy.deepcopy(node))
            else:
                parent[f"{key}{rng.choice(['_', 's', ''])}"] = copy.deepcopy(node)
        elif op < 0.72:
            for _ in range(rng.randint(1, 40)):
                node = [node] if rng.random() < 0.5 else {"a": node}
            parent[key] = node
        elif op < 0.80:
            parent[key] = "".join(rng.choice("abcxyz_/.-:$ 0123") for _ in
                                  range(rng.randint(0, 12)))
        elif op < 0.88:
            if isinstance(node, (int, float)) and not isinstance(node, bool) \
                    and abs(node) < 1e100:
                parent[key] = rng.choice([node * 10 ** rng.randint(1, 12), -node, node + 0.5])
            else:
                parent[key] = copy.deepcopy(rng.choice(EXTREMES))
        elif op < 0.93 and isinstance(parent, dict):
            parent[rng.choice(ODD_KEYS)] = parent.pop(key)
        elif op < 0.96:
            for _ in range(rng.randint(100, 500)):
                node = [node]
            parent[key] = node
            break  # too deep to copy again
        else:
            parent[key] = copy.deepcopy(_at(spec, rng.choice(places)[0]))
    return spec


def mutate_text(text: str, rng: random.Random) -> str:
    """YAML text damaged in one place: a line dropped or repeated, characters flipped,
    brackets, anchors and aliases inserted."""
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    op = rng.random()
    if op < 0.25:
        del lines[i]
    elif op < 0.45:
        lines.insert(i, lines[i])
    elif op < 0.75:
        line = lines[i]
        j = rng.randrange(len(line) + 1)
        junk = rng.choice(["[", "]", "{", "}", ":", "- ", "&a ", "*a", "*b", "<<: ", "!!python/"
                           "object:os.system ", "\t", "'", '"', "#", "\\u0000", "9" * 5000,
                           "&a [*a]", "? ", "|", ">", "%YAML 1.1\n---\n", "---\n", "\ufeff"])
        lines[i] = line[:j] + junk + line[j:]
    else:
        lines[i] = lines[i].replace(" ", "", 1) if rng.random() < 0.5 else "  " + lines[i]
    return "\n".join(lines) + "\n"
