"""Shared pieces of the schema: the strict base model and references to registry names.

Nothing here imports Keras or TensorFlow; checking a name only looks it up in a registry.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails

from kspec import registry
from kspec.errors import SpecError, safe_repr, suggest


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, never silently dropped.

    An unknown key is reported together with every other problem of the same mapping (a
    typo in one key must not hide an unknown activation beside it).
    """

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    @model_validator(mode="wrap")
    @classmethod
    def _no_unknown_keys(cls, data: Any, handler: Any) -> Any:
        # pydantic's own "extra inputs are not permitted" never says what *is* permitted;
        # this names the valid keys and the closest one.
        if cls.model_config.get("extra") != "forbid" or not isinstance(data, dict):
            return handler(data)
        data = cls.upgrade(data)
        valid = set()
        for name, field in cls.model_fields.items():
            valid.add(field.alias or name)
            valid.add(name)
        unknown = [key for key in data if key not in valid]
        if not unknown:
            return handler(data)
        names = sorted(valid)
        hints = {key: suggest(key, valid) for key in unknown}
        errors = [InitErrorDetails(type="value_error", loc=(), input=data[key], ctx={
            "error": RelativeSpecError(SpecError(
                f".{key}", f"unknown key {safe_repr(key)}", valid=names, hint=hints[key]))})
            for key in unknown]
        found = []
        try:
            handler({k: v for k, v in data.items() if k not in unknown})
        except ValidationError as e:
            # `unitz: 3` makes `units` missing: one problem, reported once (with the hint).
            found = [d for d in e.errors() if not (
                d["type"] == "missing" and len(d["loc"]) == 1 and d["loc"][0] in hints.values())]
        try:
            raise ValidationError.from_exception_data(
                cls.__name__, errors + [_details(d) for d in found])
        except (KeyError, TypeError) as e:  # an error type pydantic cannot rebuild
            raise ValidationError.from_exception_data(cls.__name__, errors + [
                InitErrorDetails(type="value_error", loc=d["loc"], input=d["input"],
                                 ctx={"error": ValueError(d["msg"])}) for d in found]) from e

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        """The mapping as this version reads it: a model whose keys changed overrides this
        to accept what earlier versions wrote (before any check)."""
        return data


def _details(error: Any) -> InitErrorDetails:
    """A reported pydantic error as one to raise again (with the unknown keys' errors)."""
    out = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
    if error.get("ctx"):
        out["ctx"] = error["ctx"]
    return out


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


MAX_SIZE = 2**31 - 1
"""Largest count or size (units, filters, kernel sizes, epochs, ...): TensorFlow's int32."""

MAX_SEED = 2**32 - 1
"""Largest seed: NumPy's and Keras's seeds are unsigned 32-bit integers."""

KERAS_NAME = r"^[A-Za-z0-9.][A-Za-z0-9_.-]{0,127}$"
"""Names of inputs and layers: Keras refuses ``/`` and TensorFlow's graphs and SavedModels
accept only this (a leading letter, digit or dot; then letters, digits, ``_ . -``)."""

PositiveInt = Annotated[int, Field(gt=0, le=MAX_SIZE)]
Size = Annotated[int, Field(gt=0, le=MAX_SIZE)]
Rate = Annotated[float, Field(ge=0.0, lt=1.0)]
Shape = list[Size | None]
IntOrTuple = Union[Size, list[Size]]
