"""The import graph stays layered (docs/DEVELOPING.md, "Layers"): every import of one kspec
package by another, at module level or inside a function, goes down the list below, so no
two packages import each other and the spec layer imports nothing above it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "kspec"

# Lowest first. A package may import packages of its own level or lower, and those listed
# in SAME_LEVEL_ALLOWED; never a higher one.
LAYERS = [
    {"errors", "kernels", "atomic"},
    {"registry"},
    {"spec"},
    {"validation"},
    {"rundir"},
    {"components"},
    {"compiler"},
    {"data"},
    {"train"},
    {"search", "exporter"},
    {"serve", "diagnose"},
    {"cli"},
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "kspec"


def import_edges() -> set[tuple[str, str, str]]:
    """``(importing package, imported package, file)`` for every kspec-internal import."""
    edges = set()
    for file in ROOT.rglob("*.py"):
        module = ".".join(file.relative_to(ROOT.parent).with_suffix("").parts)
        source = _package(module.removesuffix(".__init__"))
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
                if node.module == "kspec":  # `from kspec import registry` names a module
                    targets = [f"kspec.{a.name}" for a in node.names]
            for target in targets:
                if target.startswith("kspec"):
                    edges.add((source, _package(target), str(file.relative_to(ROOT.parent))))
    return edges


def test_every_package_has_a_layer():
    packages = {p.stem if p.is_file() else p.name for p in ROOT.iterdir()
                if (p.suffix == ".py" and p.stem != "__init__")
                or (p.is_dir() and (p / "__init__.py").exists())}
    packages -= {"datasets", "__main__"}  # data files and the `python -m kspec` shim
    assert packages <= set(LEVEL), f"add to LAYERS: {sorted(packages - set(LEVEL))}"


def test_imports_go_down_the_layers():
    upward = sorted(f"{file}: {a} imports {b}" for a, b, file in import_edges()
                    if a in LEVEL and b in LEVEL and LEVEL[b] > LEVEL[a])
    assert not upward, "\n".join(upward)


def test_no_module_but_the_cli_imports_the_public_facade():
    """``kspec/__init__.py`` is the public facade (it imports lazily); modules inside kspec
    import the modules they need, never the facade (the CLI reads its version)."""
    users = sorted({file for a, b, file in import_edges() if b == "kspec" and a != "cli"})
    assert users == [], users


def test_the_spec_layer_imports_only_errors_and_the_registry():
    imported = {b for a, b, _ in import_edges() if a == "spec"}
    assert imported <= {"spec", "errors", "registry"}, imported


def test_no_two_packages_import_each_other():
    edges = {(a, b) for a, b, _ in import_edges() if a != b}
    assert not {(a, b) for a, b in edges if (b, a) in edges}


RUN_FILES = ("spec.yaml", "meta.json", "metrics.json", "members.json", "history.csv",
             "history.png", "model.keras", "checkpoint.keras", "error.log", "diagnostics.csv",
             "diagnostics.png", "diagnose.png")


def test_only_the_run_directory_module_spells_a_run_directorys_file_names():
    """``kspec/rundir.py`` is the one reader and writer of a run directory: no other module
    joins a run's file names onto a path. (An export's own layout, in kspec/exporter, and a
    search trial's folder, in kspec/search, are not run directories.)"""
    import re

    joined = re.compile(r"/\s*[\"'](" + "|".join(map(re.escape, RUN_FILES)) + r")[\"']")
    found = []
    for file in ROOT.rglob("*.py"):
        rel = str(file.relative_to(ROOT.parent))
        if rel == "kspec/rundir.py":
            continue
        for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            if joined.search(line) and "trial_dir" not in line:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "\n".join(found)
