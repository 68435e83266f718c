"""Checks of a graph model that need no Keras: names, cycles, unused blocks.

Every error names the blocks involved and the place in the spec, e.g.
``model.blocks[2].inputs[0]: unknown input or block 'trnk'; did you mean 'trunk'?``.
Shape mismatches at merges are found when the model is built (``kspec.compiler.graph``).
"""

from __future__ import annotations

from typing import Any

from kspec.errors import SpecError, suggest
from kspec.spec.base import RelativeSpecError


def _fail(path: str, reason: str, **kw: Any) -> None:
    raise RelativeSpecError(SpecError(path, reason, **kw))


def check_graph(model: Any) -> None:
    """Validate the graph form of a ``ModelSpec`` (raises RelativeSpecError)."""
    if model.layers:
        _fail(".layers", "a graph model has 'blocks' and no top-level 'layers'; put the layers "
              "in a block")
    if model.base is not None:
        _fail(".base", "in the graph form a transfer base is a block: "
              "{name: ..., inputs: [...], base: {...}}")
    input_names = [i.name for i in model.inputs]
    seen: dict[str, str] = {}
    for i, name in enumerate(input_names):
        if name in seen:
            _fail(f".inputs[{i}].name", f"input name {name!r} is used twice")
        seen[name] = f"inputs[{i}]"
    blocks = {}
    for i, block in enumerate(model.blocks):
        if block.name in seen:
            _fail(f".blocks[{i}].name", f"block name {block.name!r} is already used by "
                  f"{seen[block.name]}")
        seen[block.name] = f"blocks[{i}]"
        blocks[block.name] = (i, block)
    known = input_names + list(blocks)
    for i, block in enumerate(model.blocks):
        for j, src in enumerate(block.inputs):
            if src not in seen:
                _fail(f".blocks[{i}].inputs[{j}]", f"block {block.name!r} takes unknown input "
                      f"or block {src!r}", valid=known, hint=suggest(src, known))
            if src == block.name:
                _fail(f".blocks[{i}].inputs[{j}]", f"block {block.name!r} takes itself as "
                      "input (a cycle)")
        if block.use is not None and block.use not in model.definitions:
            defs = sorted(model.definitions)
            _fail(f".blocks[{i}].use", f"block {block.name!r} uses an unknown definition "
                  f"{block.use!r}", valid=defs or "a name under model.definitions",
                  hint=suggest(block.use, defs))
    _check_cycles(model, blocks)
    _check_outputs(model, blocks, input_names)
    _check_layer_names(model)


def _check_cycles(model: Any, blocks: dict) -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        if name not in blocks or state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = trail[trail.index(name):] + [name]
            i, _ = blocks[name]
            _fail(f".blocks[{i}].inputs", "the blocks form a cycle: " + " -> ".join(cycle),
                  valid="each block takes inputs or earlier blocks only")
        state[name] = 1
        for src in blocks[name][1].inputs:
            visit(src, trail + [name])
        state[name] = 2

    for name in blocks:
        visit(name, [])


def _check_outputs(model: Any, blocks: dict, input_names: list[str]) -> None:
    outputs = model.output_blocks()
    names: dict[str, int] = {}
    for k, out in enumerate(model.outputs):
        if out.name in names:
            _fail(f".outputs[{k}].name", f"output name {out.name!r} is used twice")
        names[out.name] = k
    for k, (name, block) in enumerate(outputs.items()):
        if block not in blocks:
            where = f".outputs[{k}].block" if model.outputs and model.outputs[k].block \
                else f".outputs[{k}].name"
            _fail(where, f"output {name!r} comes from unknown block {block!r}",
                  valid=sorted(blocks), hint=suggest(block, list(blocks)))
    # Everything must lead to an output: an unused block is almost always a wiring mistake.
    reached: set[str] = set()
    stack = list(outputs.values())
    while stack:
        name = stack.pop()
        if name in reached:
            continue
        reached.add(name)
        if name in blocks:
            stack.extend(blocks[name][1].inputs)
    unused = [b for b in blocks if b not in reached]
    if unused:
        i = blocks[unused[0]][0]
        _fail(f".blocks[{i}]", f"block(s) {', '.join(map(repr, unused))} lead to no output",
              valid=f"a block feeding an output ({', '.join(outputs)}), or remove them")
    for i, name in enumerate(input_names):
        if name not in reached:
            _fail(f".inputs[{i}]", f"input {name!r} is not used by any block leading to an "
                  "output")
    for name in model.definitions:
        if not any(b.use == name for _, b in blocks.values()):
            _fail(f".definitions.{name}", f"definition {name!r} is not used by any block",
                  valid="a block with 'use: " + name + "', or remove it")


def _check_layer_names(model: Any) -> None:
    # Inline layers keep their own names in the Keras model, so they must be unique and
    # differ from the inputs' and outputs' names (Keras names outputs after layers);
    # definitions' layers are prefixed with the block name and repetition.
    seen: dict[str, str] = {i.name: f"inputs[{k}]" for k, i in enumerate(model.inputs)}
    for k, out in enumerate(model.outputs):
        if out.name in seen:
            _fail(f".outputs[{k}].name", f"output name {out.name!r} is already the name of "
                  f"{seen[out.name]}")
        seen[out.name] = f"outputs[{k}]"
    for i, block in enumerate(model.blocks):
        for j, layer in enumerate(block.layers):
            if layer.name is None:
                continue
            where = f"blocks[{i}].layers[{j}]"
            if layer.name in seen:
                _fail(f".{where}.name", f"layer name {layer.name!r} is already used by "
                      f"{seen[layer.name]}")
            if block.repeat > 1:
                continue
            seen[layer.name] = where
