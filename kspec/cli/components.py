"""``kspec components [KIND]``: list every name a spec may use."""

from __future__ import annotations


def add_parser(sub) -> None:
    from kspec.registry import ALL

    p = sub.add_parser("components", help="list the names a spec may use",
                       description="List registered components (activations, losses, ...) with "
                       "a one-line description each.")
    p.add_argument("kind", nargs="?", choices=sorted(ALL), help="only this registry")
    p.set_defaults(run=run)


def render(kind: str | None = None) -> str:
    """The component table as text (also used to generate docs/components.md)."""
    from kspec.registry import ALL, load_builtins

    load_builtins()
    out = []
    for name, reg in ALL.items():
        if kind and name != kind:
            continue
        out.append(f"{name} ({len(reg)})")
        for entry in reg.entries():
            alias = f" (also: {', '.join(entry.aliases)})" if entry.aliases else ""
            out.append(f"  {entry.name:<34} {entry.description}{alias}")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def run(args) -> int:
    print(render(args.kind), end="")
    return 0
