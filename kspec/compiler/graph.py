"""Graph models: named blocks wired by name, merges, repeated definitions, named outputs.

Errors that only show once shapes are known (merging tensors of different shapes, residual
connections that change the shape) are raised here and name the blocks involved.
"""

from __future__ import annotations

import contextlib
from typing import Any, Mapping

from kspec.compiler.size import charge
from kspec.errors import SpecError


def topological(blocks: list) -> list[tuple[int, Any]]:
    """Blocks in an order where every block comes after its inputs (the spec is acyclic)."""
    index = {b.name: i for i, b in enumerate(blocks)}
    done: set[str] = set()
    order: list[tuple[int, Any]] = []

    def visit(name: str) -> None:
        if name in done or name not in index:
            return
        done.add(name)
        block = blocks[index[name]]
        for src in block.inputs:
            visit(src)
        order.append((index[name], block))

    for b in blocks:
        visit(b.name)
    return order


def _shape(t) -> tuple:
    return tuple(t.shape[1:])


def merge(block: Any, xs: list, names: list[str], path: str):
    """Merge the tensors of a block's inputs, checking shapes first."""
    import keras

    shapes = [_shape(x) for x in xs]
    described = ", ".join(f"{n} {s}" for n, s in zip(names, shapes))
    if block.merge == "concatenate":
        rank = len(shapes[0])
        axis = block.axis if block.axis >= 0 else rank + 1 + block.axis
        ok = all(len(s) == rank for s in shapes) and 1 <= axis <= rank and all(
            s[k] == shapes[0][k] for s in shapes for k in range(rank) if k != axis - 1)
        if not ok:
            raise SpecError(f"{path}.merge", f"block {block.name!r} cannot concatenate "
                            f"{described} along axis {block.axis}",
                            valid="inputs whose shapes differ only along the axis")
        return keras.layers.Concatenate(axis=block.axis, name=f"{block.name}_concatenate")(xs)
    if any(s != shapes[0] for s in shapes):
        raise SpecError(f"{path}.merge", f"block {block.name!r} cannot {block.merge} inputs of "
                        f"different shapes: {described}",
                        valid="inputs of equal shape (or merge: concatenate)")
    cls = {"add": "Add", "multiply": "Multiply", "average": "Average", "maximum": "Maximum",
           "subtract": "Subtract"}[block.merge]
    return getattr(keras.layers, cls)(name=f"{block.name}_{block.merge}")(xs)


def _projection(x, target: tuple, path: str, what: str, name: str):
    """Map ``x`` to the ``target`` shape for a residual connection (ResNet's 1x1 shortcut)."""
    import keras

    shape = _shape(x)
    if len(shape) != len(target):
        raise SpecError(path, f"{what}: cannot project an input of shape {shape} onto "
                        f"{target} (different ranks)")
    charge(((shape[-1] or 1) + 1) * (target[-1] or 1), path)
    if len(shape) == 1:
        return keras.layers.Dense(target[-1], name=name)(x)
    strides = []
    for a, b in zip(shape[:-1], target[:-1]):
        stride = -(-a // b) if a and b else 0  # 'same' padding: out = ceil(in / stride)
        if not stride or -(-a // stride) != b:
            raise SpecError(path, f"{what}: cannot project an input of shape {shape} onto "
                            f"{target}: the spatial sizes are not a whole stride apart")
        strides.append(stride)
    conv = {2: "Conv1D", 3: "Conv2D", 4: "Conv3D"}.get(len(shape))
    if conv is None:
        raise SpecError(path, f"{what}: cannot project inputs of rank {len(shape)}")
    return getattr(keras.layers, conv)(target[-1], 1, strides=tuple(strides), padding="same",
                                       name=name)(x)


def _stack(layers: list, x, layer_path: str, prefix: str, keep_names: bool, where: str,
           output: bool = False):
    from kspec.compiler.layers import build_layer
    from kspec.compiler.precision import float32_outputs

    for j, layer_spec in enumerate(layers):
        if keep_names and layer_spec.name:
            name = layer_spec.name
        else:
            name = f"{prefix}_{layer_spec.name or f'{layer_spec.type}_{j}'}"
        # The last layer of an output block computes in float32 under mixed precision.
        last = output and j == len(layers) - 1
        try:
            with float32_outputs() if last else contextlib.nullcontext():
                x = build_layer(layer_spec, x, f"{layer_path}[{j}]", name)
        except SpecError as e:
            if where and where not in e.reason:
                e.reworded(f"{where}: {e.reason}")
            raise
    return x


def apply_block(spec_model: Any, block: Any, xs: list, path: str, output: bool = False):
    """The output tensor of one block, given its input tensors (``output``: the block
    feeds a model output, so its last layer computes in float32 under mixed precision)."""
    import keras

    from kspec.compiler.transfer import build_base

    if block.base is not None:
        return build_base(block.base, xs, f"{path}.base", block.name)
    x = merge(block, xs, block.inputs, path) if block.merge else xs[0]
    if block.use is not None:
        definition = spec_model.definitions[block.use]
        layers, residual = definition.layers, definition.residual
        layer_path = f"model.definitions.{block.use}.layers"
    else:
        layers, residual, layer_path = block.layers, False, f"{path}.layers"
    if block.residual is not None:
        residual = block.residual
    for r in range(block.repeat):
        prefix = f"{block.name}_{r}" if block.repeat > 1 else block.name
        where = f"in block {block.name!r}" + (f" (repetition {r + 1})" if block.repeat > 1 else "")
        keep = block.use is None and block.repeat == 1
        y = _stack(layers, x, layer_path, prefix, keep, where,
                   output=output and r == block.repeat - 1)
        if residual:
            shortcut = x
            if _shape(x) != _shape(y):
                what = f"block {block.name!r}"
                if residual != "project":
                    raise SpecError(
                        f"{path}.residual" if block.residual is not None else
                        f"model.definitions.{block.use}.residual",
                        f"{what}: the residual connection adds the block's input of shape "
                        f"{_shape(x)} to its output of shape {_shape(y)}",
                        valid="layers that keep the shape, or residual: project")
                shortcut = _projection(x, _shape(y), f"{path}.residual", what,
                                       f"{prefix}_projection")
            y = keras.layers.Add(name=f"{prefix}_residual")([shortcut, y])
        x = y
    return x


def build_graph(spec_model: Any, inputs: Mapping[str, Any]) -> list:
    """Apply every block to the (preprocessed) input tensors; return the named outputs."""
    import keras

    from kspec.compiler.precision import output_dtype

    tensors = dict(inputs)
    heads = set(spec_model.output_blocks().values())
    for index, block in topological(spec_model.blocks):
        xs = [tensors[name] for name in block.inputs]
        tensors[block.name] = apply_block(spec_model, block, xs, f"model.blocks[{index}]",
                                          output=block.name in heads)
    outputs = []
    taken = {b.name for b in spec_model.blocks if b.base is not None}
    for k, (name, block) in enumerate(spec_model.output_blocks().items()):
        if name in taken:
            raise SpecError(f"model.outputs[{k}].name", f"output {name!r} has the name of a "
                            "base block; give the output another name")
        # An identity layer carries the output's name: Keras names outputs after layers, and
        # the user's loss/metric keys are output names.
        # (in float32 under mixed precision: a residual head's last Add is not).
        outputs.append(keras.layers.Identity(name=name, dtype=output_dtype())(tensors[block]))
    return outputs

