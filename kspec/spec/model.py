"""The model section: named inputs and a stack of layers.

Each layer is a mapping with a ``type``; built-in types have their own model (so a typo in
a parameter is an error that names the layer), and types a user registered with
``kspec.register`` are accepted with their constructor's keyword arguments.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from kspec import registry
from kspec.errors import SpecError
from kspec.spec.base import (
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


class LayerBase(Strict):
    name: str | None = Field(None, description="layer name in the Keras model (unique)")
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
        entry = registry.LAYERS.get(self.type, "")  # raises for unknown names
        params = dict(self.model_extra or {})
        accepted = entry.accepted_params()
        if accepted is not None:
            for key in params:
                if key not in accepted:
                    raise RelativeSpecError(
                        SpecError(
                            f".{key}",
                            f"unknown parameter {key!r} for layer {self.type!r}",
                            valid=sorted(accepted),
                        )
                    )
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


def _layer_tag(value: Any) -> str | None:
    """Pick the layer model: a built-in type, ``custom`` for registered types, else the
    unknown name itself (the loader turns it into an "unknown layer type" error)."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if kind in BUILTIN_LAYERS:
        return kind
    if isinstance(kind, str):
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

    name: str = Field("features", description="input name; also the serving signature key")
    shape: Shape | None = Field(
        None, description="shape without the batch dimension; inferred from the data when absent"
    )
    dtype: Literal["float32", "float16", "int32", "int64", "string", "bool"] = "float32"


class ModelSpec(Strict):
    """A layer stack on one named input."""

    inputs: list[Input] = Field(default_factory=lambda: [Input()], min_length=1)
    layers: list[Layer] = Field(..., min_length=1)
    output_name: str = Field("output", description="name of the output (and its last layer)")

    @model_validator(mode="after")
    def _unique_names(self) -> "ModelSpec":
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
                SpecError(".inputs", "a layer stack takes exactly one input", value=len(self.inputs))
            )
        return self
