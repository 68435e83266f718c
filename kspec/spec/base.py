"""Shared pieces of the schema: the strict base model and references to registry names.

Nothing here imports Keras or TensorFlow; checking a name only looks it up in a registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from kspec import registry
from kspec.errors import SpecError, suggest


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, never silently dropped."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _no_unknown_keys(cls, data: Any) -> Any:
        # pydantic's own "extra inputs are not permitted" never says what *is* permitted;
        # this names the valid keys and the closest one.
        if cls.model_config.get("extra") != "forbid" or not isinstance(data, dict):
            return data
        valid = set()
        for name, field in cls.model_fields.items():
            valid.add(field.alias or name)
            valid.add(name)
        for key in data:
            if key not in valid:
                raise RelativeSpecError(
                    SpecError(
                        f".{key}",
                        f"unknown key {key!r}",
                        valid=sorted(valid),
                        hint=suggest(key, valid),
                    )
                )
        return data


class RelativeSpecError(ValueError):
    """A SpecError raised inside a validator; its path is relative to the field."""

    def __init__(self, inner: SpecError) -> None:
        self.inner = inner
        super().__init__(inner.reason)


def _checker(registry_name: str):
    def check(value: Any) -> Any:
        registry.load_builtins()
        try:
            registry.ALL[registry_name].check(value, "")
        except SpecError as e:
            raise RelativeSpecError(e) from None
        return value

    return check


def _ref_schema(kind: str, registry_name: str) -> dict[str, Any]:
    return {
        "anyOf": [
            {"type": "string", "description": f"{kind} name"},
            {
                "type": "object",
                "properties": {"type": {"type": "string", "description": f"{kind} name"}},
                "required": ["type"],
                "additionalProperties": True,
                "description": f"{kind} with parameters: {{type: NAME, ...}}",
            },
        ],
        "description": f"a {kind}: a name (see `kspec components {registry_name}`) or "
        f"{{type: NAME, ...parameters}}",
    }


def Ref(kind: str, registry_name: str):  # noqa: N802 - reads as a type
    """A name from a registry, or ``{type: NAME, ...params}``; checked against the registry."""
    return Annotated[
        Union[str, dict[str, Any]],
        AfterValidator(_checker(registry_name)),
        WithJsonSchema(_ref_schema(kind, registry_name)),
    ]


ActivationRef = Ref("activation", "activations")
InitializerRef = Ref("initializer", "initializers")
RegularizerRef = Ref("regularizer", "regularizers")
LossRef = Ref("loss", "losses")
MetricRef = Ref("metric", "metrics")
OptimizerRef = Ref("optimizer", "optimizers")
ScheduleRef = Ref("learning-rate schedule", "schedules")

def registry_union(reg: registry.Registry) -> Any:
    """A union of every schema registered in ``reg``, told apart by its ``type`` key.

    The spec's unions of data sources, preprocessing and augmentation steps and tuners are
    generated from their registries, so a new kind is its schema class plus its
    registration (``@registry.SOURCES.schema("name", "module:reader")``).
    """
    configs = tuple(reg.configs())
    return Annotated[Union[configs], Field(discriminator="type")]


PositiveInt = Annotated[int, Field(gt=0)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Shape = list[Annotated[int, Field(gt=0)] | None]
IntOrTuple = Union[Annotated[int, Field(gt=0)], list[Annotated[int, Field(gt=0)]]]
