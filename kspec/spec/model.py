"""The model section: named inputs and a stack of layers, or a graph of named blocks.

Each layer is a mapping with a ``type``; built-in types have their own model (so a typo in
a parameter is an error that names the layer), and types a user registered with
``kspec.register`` are accepted with their constructor's keyword arguments.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, WithJsonSchema, field_validator, model_validator

from kspec import registry
from kspec.errors import SpecError
from kspec.spec.base import (
    KERAS_NAME,
    ActivationRef,
    InitializerRef,
    IntOrTuple,
    PositiveInt,
    Rate,
    RegularizerRef,
    RelativeSpecError,
    Shape,
    Strict,
)
from kspec.spec.transfer import APPLICATIONS, TransferBase  # noqa: F401 - re-exported


class LayerBase(Strict):
    name: str | None = Field(None, pattern=KERAS_NAME,
                             description="layer name in the Keras model (unique)")
    trainable: bool = True


class WeightsMixin(Strict):
    use_bias: bool = True
    kernel_initializer: InitializerRef = "glorot_uniform"
    bias_initializer: InitializerRef = "zeros"
    kernel_regularizer: RegularizerRef | None = None
    bias_regularizer: RegularizerRef | None = None
    activity_regularizer: RegularizerRef | None = None


class Dense(LayerBase, WeightsMixin):
    """Fully connected layer."""

    type: Literal["dense"]
    units: PositiveInt
    activation: ActivationRef | None = None


class _Conv(LayerBase, WeightsMixin):
    filters: PositiveInt
    kernel_size: IntOrTuple
    strides: IntOrTuple = 1
    padding: Literal["valid", "same", "causal"] = "valid"
    dilation_rate: IntOrTuple = 1
    activation: ActivationRef | None = None


class Conv1D(_Conv):
    """1-D convolution (sequences)."""

    type: Literal["conv1d"]


class Conv2D(_Conv):
    """2-D convolution (images, channels last)."""

    type: Literal["conv2d"]


class _Pool(LayerBase):
    pool_size: IntOrTuple = 2
    strides: IntOrTuple | None = None
    padding: Literal["valid", "same"] = "valid"


class MaxPool1D(_Pool):
    """1-D max pooling."""

    type: Literal["max_pool1d"]


class MaxPool2D(_Pool):
    """2-D max pooling."""

    type: Literal["max_pool2d"]


class AvgPool1D(_Pool):
    """1-D average pooling."""

    type: Literal["avg_pool1d"]


class AvgPool2D(_Pool):
    """2-D average pooling."""

    type: Literal["avg_pool2d"]


class GlobalAvgPool(LayerBase):
    """Average over all spatial positions (1-D or 2-D, chosen from the input rank)."""

    type: Literal["global_avg_pool"]


class GlobalMaxPool(LayerBase):
    """Maximum over all spatial positions (1-D or 2-D, chosen from the input rank)."""

    type: Literal["global_max_pool"]


class Flatten(LayerBase):
    """Flatten all but the batch dimension."""

    type: Literal["flatten"]


class Reshape(LayerBase):
    """Reshape to ``target_shape`` (batch dimension excluded; one entry may be -1)."""

    type: Literal["reshape"]
    target_shape: list[int]

    @field_validator("target_shape")
    @classmethod
    def _one_unknown(cls, v: list[int]) -> list[int]:
        if any(d == 0 or d < -1 for d in v):
            raise ValueError("dimensions must be positive, or -1 for one inferred dimension")
        if v.count(-1) > 1:
            raise ValueError("at most one dimension may be -1")
        return v


class Embedding(LayerBase):
    """Integer ids to dense vectors."""

    type: Literal["embedding"]
    input_dim: PositiveInt
    output_dim: PositiveInt
    embeddings_initializer: InitializerRef = "uniform"
    embeddings_regularizer: RegularizerRef | None = None
    mask_zero: bool = False


class BatchNorm(LayerBase):
    """Batch normalization; place it before or after an activation layer as you choose."""

    type: Literal["batch_norm"]
    momentum: float = Field(0.99, gt=0.0, lt=1.0)
    epsilon: float = Field(1e-3, gt=0.0)
    center: bool = True
    scale: bool = True
    axis: int = -1


class Dropout(LayerBase):
    """Randomly zero a fraction ``rate`` of inputs during training."""

    type: Literal["dropout"]
    rate: Rate


class Activation(LayerBase):
    """A non-linearity on its own (e.g. after batch norm)."""

    type: Literal["activation"]
    activation: ActivationRef


class CustomLayer(LayerBase):
    """A layer type registered by the user with ``kspec.register``; keywords go to it."""

    model_config = {"extra": "allow"}
    type: str

    @model_validator(mode="after")
    def _registered(self) -> "CustomLayer":
        registry.load_builtins()
        try:  # the same name and parameter checks as every other registry reference
            registry.LAYERS.split_ref({"type": self.type, **self.params}, "")
        except SpecError as e:
            raise RelativeSpecError(e) from None
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


BUILTIN_LAYERS: dict[str, type[LayerBase]] = {
    cls.model_fields["type"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        Dense, Conv1D, Conv2D, MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D, GlobalAvgPool,
        GlobalMaxPool, Flatten, Reshape, Embedding, BatchNorm, Dropout, Activation,
    )
}


NOT_A_NAME = "<not a name>"


def _layer_tag(value: Any) -> str | None:
    """Pick the layer model: a built-in type, ``custom`` for registered types, else the
    unknown name itself (the loader turns it into an "unknown layer type" error)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        # A list or mapping as a type (unhashable); the loader says "should be a name".
        return None if kind is None else NOT_A_NAME
    if kind in BUILTIN_LAYERS:
        return kind
    registry.load_builtins()
    if kind in registry.LAYERS:
        return "custom"
    return kind


def layer_names() -> list[str]:
    """Every valid layer type: the built-in ones and those registered by users."""
    registry.load_builtins()
    return sorted(set(BUILTIN_LAYERS) | set(registry.LAYERS.names(aliases=True)))


Layer = Annotated[
    Union[tuple(Annotated[cls, Tag(name)] for name, cls in BUILTIN_LAYERS.items())]  # type: ignore[misc]
    | Annotated[CustomLayer, Tag("custom")],
    Discriminator(_layer_tag),
]


class Input(Strict):
    """A named model input."""

    name: str = Field("features", pattern=KERAS_NAME,
                      description="input name; also the serving signature key")
    shape: Shape | None = Field(
        None, description="shape without the batch dimension; inferred from the data when absent"
    )
    dtype: Literal["float32", "float16", "int32", "int64", "string", "bool"] = "float32"


# Block and output names are identifiers (they key losses and metrics) that TensorFlow
# accepts as the start of a layer name (no leading underscore).
_NAME = r"^[A-Za-z][A-Za-z0-9_]{0,127}$"
MAX_REPEAT = 1000
MAX_LAYERS = 2000
MERGES = ("concatenate", "add", "multiply", "average", "maximum", "subtract")


class BlockDef(Strict):
    """A reusable block: a stack of layers, optionally with a residual connection."""

    layers: list[Layer] = Field(..., min_length=1)
    residual: bool | Literal["project"] = Field(
        False, description="add the block's input to its output; 'project' first maps the "
        "input to the output's shape with a 1x1 convolution or a dense layer"
    )


class Block(Strict):
    """A named node of a graph model.

    It takes one or more earlier inputs/blocks, merges them if there are several, and applies
    a layer stack (inline ``layers`` or a definition by ``use``, ``repeat`` times) or a
    transfer ``base``.
    """

    name: str = Field(..., pattern=_NAME)
    inputs: Annotated[
        list[str],
        # One name may be written without a list (see _one_name); tell editors so.
        WithJsonSchema({"anyOf": [{"type": "string"},
                                  {"type": "array", "items": {"type": "string"}, "minItems": 1}],
                        "description": "input or block name(s)"}),
    ] = Field(..., min_length=1, description="input or block names")
    merge: Literal["concatenate", "add", "multiply", "average", "maximum", "subtract"] | None = (
        None)
    axis: int = Field(-1, description="concatenation axis")
    layers: list[Layer] = Field(default_factory=list)
    use: str | None = Field(None, description="name of a block definition to apply")
    repeat: int = Field(1, gt=0, le=MAX_REPEAT,
                        description="apply the layers this many times (new weights)")
    residual: bool | Literal["project"] | None = Field(
        None, description="add the input to the output of each repetition (default: the "
        "definition's setting)"
    )
    base: TransferBase | None = None

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_name(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _shape_of_block(self) -> "Block":
        kinds = [k for k in ("layers", "use", "base") if getattr(self, k)]
        if len(kinds) > 1:
            raise RelativeSpecError(SpecError(
                f".{kinds[1]}", f"a block has one of 'layers', 'use' or 'base', not "
                f"{' and '.join(repr(k) for k in kinds)}"))
        if not kinds and self.merge is None:
            raise RelativeSpecError(SpecError(
                "", f"block {self.name!r} does nothing",
                valid="'layers', 'use: DEFINITION', 'base' or 'merge'"))
        if self.merge is not None and len(self.inputs) < 2:
            raise RelativeSpecError(SpecError(
                ".merge", f"block {self.name!r} merges a single input {self.inputs}",
                valid="two or more inputs"))
        if self.merge is None and len(self.inputs) > 1 and self.base is None:
            raise RelativeSpecError(SpecError(
                ".inputs", f"block {self.name!r} takes {len(self.inputs)} inputs but says "
                "how to merge them", valid=[f"merge: {m}" for m in MERGES]))
        if self.merge == "subtract" and len(self.inputs) != 2:
            raise RelativeSpecError(SpecError(
                ".inputs", "'subtract' takes exactly two inputs", value=self.inputs))
        if self.base is not None and (self.repeat != 1 or self.residual):
            raise RelativeSpecError(SpecError(
                ".repeat" if self.repeat != 1 else ".residual",
                "a 'base' block cannot be repeated or residual"))
        return self


class Output(Strict):
    """A named model output, taken from a block."""

    name: str = Field(..., pattern=_NAME, description="output name (loss/metric key)")
    block: str | None = Field(None, description="the block it comes from (default: name)")


class ModelSpec(Strict):
    """A layer stack on one named input, or a graph of named blocks.

    Stack form: ``inputs`` (one), optional transfer ``base``, ``layers``.
    Graph form: ``inputs``, ``blocks`` (each naming its inputs), ``definitions`` of reusable
    blocks and ``outputs``.
    """

    inputs: list[Input] = Field(default_factory=lambda: [Input()], min_length=1)
    base: TransferBase | None = Field(None, description="stack form: start from this model")
    layers: list[Layer] = Field(default_factory=list, description="stack form: the layers")
    output_name: str = Field("output", pattern=KERAS_NAME,
                             description="name of the output (and its last layer)")
    definitions: dict[str, BlockDef] = Field(
        default_factory=dict, description="graph form: reusable blocks by name")
    blocks: list[Block] = Field(default_factory=list, description="graph form: named blocks")
    outputs: list[Output] = Field(
        default_factory=list, description="graph form: named outputs (default: the last block, "
        "named output_name)")
    max_params: int = Field(
        100_000_000, gt=0, le=10**12, description="refuse to build a model whose layers hold "
        "more parameters (counted from the shapes before any weight is allocated); raise it "
        "for bigger models")

    @property
    def is_graph(self) -> bool:
        return bool(self.blocks)

    def output_names(self) -> list[str]:
        """The model's output names, in order."""
        if self.is_graph and self.outputs:
            return [o.name for o in self.outputs]
        return [self.output_name]

    def output_blocks(self) -> dict[str, str]:
        """Output name -> the block it is taken from (graph form)."""
        if not self.outputs:
            return {self.output_name: self.blocks[-1].name}
        return {o.name: o.block or o.name for o in self.outputs}

    def all_layers(self) -> list[tuple[str, Any]]:
        """Every layer spec with its path: the stack, the blocks and the definitions.

        For checks that look at each layer (lint, search spaces) in both forms.
        """
        out = [(f"model.layers[{i}]", layer) for i, layer in enumerate(self.layers)]
        for i, block in enumerate(self.blocks):
            out += [(f"model.blocks[{i}].layers[{j}]", layer)
                    for j, layer in enumerate(block.layers)]
        for name, definition in self.definitions.items():
            out += [(f"model.definitions.{name}.layers[{j}]", layer)
                    for j, layer in enumerate(definition.layers)]
        return out

    def output_stack(self, name: str) -> tuple[str, list[Any]] | None:
        """The layer list that produces output ``name`` and its spec path, or None when the
        output comes from a merge or a transfer base (its last layer is not in the spec).

        Example:
            >>> spec.model.output_stack("output")  # doctest: +SKIP
            ('model.layers', [Flatten(...), Dense(...)])
        """
        if not self.is_graph:
            return ("model.layers", list(self.layers)) if self.layers else None
        block_name = self.output_blocks().get(name)
        for j, block in enumerate(self.blocks):
            if block.name != block_name:
                continue
            if block.layers:
                return f"model.blocks[{j}].layers", list(block.layers)
            if block.use and block.use in self.definitions:
                return (f"model.definitions.{block.use}.layers",
                        list(self.definitions[block.use].layers))
        return None

    def base_names(self) -> list[str]:
        """Names of the layers that hold a transfer base (``base`` in the stack form)."""
        if self.is_graph:
            return [b.name for b in self.blocks if b.base is not None]
        return ["base"] if self.base is not None else []

    def layer_count(self) -> int:
        """Layers the spec builds, repetitions and residual additions included (a transfer
        base counts one)."""
        if not self.is_graph:
            return len(self.layers) + (self.base is not None)
        total = 0
        for block in self.blocks:
            definition = self.definitions.get(block.use) if block.use else None
            layers = definition.layers if definition is not None else block.layers
            residual = block.residual if block.residual is not None else \
                getattr(definition, "residual", False)
            total += block.repeat * (max(len(layers), 1) + bool(residual))  # + the Add
        return total

    @model_validator(mode="after")
    def _check(self) -> "ModelSpec":
        count = self.layer_count()
        if count > MAX_LAYERS:
            raise RelativeSpecError(SpecError(
                ".blocks" if self.is_graph else ".layers", f"the model would have {count:,} "
                f"layers (repetitions included); kspec builds at most {MAX_LAYERS:,}",
                valid="fewer layers or a smaller repeat"))
        if self.is_graph:
            from kspec.spec.graph import check_graph

            check_graph(self)
            return self
        for key in ("definitions", "outputs"):
            if getattr(self, key):
                raise RelativeSpecError(SpecError(
                    f".{key}", f"{key!r} belongs to the graph form; add 'blocks' (or remove "
                    f"{key!r})"))
        if not self.layers:
            given = "layers" in self.model_fields_set
            raise RelativeSpecError(SpecError(
                ".layers", "a layer stack needs at least 1 layer" if given
                else "required key is missing",
                valid="a list of layers (stack form), or 'blocks' (graph form)"))
        seen: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            if layer.name is None:
                continue
            if layer.name in seen:
                raise RelativeSpecError(
                    SpecError(
                        f".layers[{i}].name",
                        f"layer name {layer.name!r} is already used by layers[{seen[layer.name]}]",
                    )
                )
            seen[layer.name] = i
        if len(self.inputs) != 1:
            raise RelativeSpecError(
                SpecError(".inputs", "a layer stack takes exactly one input; use 'blocks' for "
                          "several inputs", value=len(self.inputs))
            )
        return self
