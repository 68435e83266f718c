"""``kspec schema``: print the JSON Schema of specs (for editors)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("schema", help="print the JSON Schema of the spec format",
                       description="Print the JSON Schema that YAML/JSON editors use to "
                       "validate and complete specs. Example: kspec schema > kspec.schema.json")
    p.add_argument("--indent", type=int, default=2)
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.spec import json_schema

    print(json.dumps(json_schema(), indent=args.indent))
    return 0
