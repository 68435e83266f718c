"""Search spaces written inside a spec, and the ``search:`` section (plain data, no Keras).

Any value of a spec may be replaced by a *search space*: a mapping with exactly one key that
starts with ``$`` (no ordinary spec key does, so a space cannot be mistaken for a value)::

    units: {$choice: [32, 64, 128]}
    rate: {$float: {min: 0.0, max: 0.5}}
    learning_rate: {$float: {min: 1.0e-4, max: 1.0e-2, sampling: log}}
    filters: {$int: {min: 16, max: 128, step: 16}}
    use_bias: {$bool: {}}
    optimizer:                                   # a choice of sub-specs: a conditional search
      $choice:
        - {type: adam, learning_rate: {$float: {min: 1.0e-4, max: 1.0e-2, sampling: log}}}
        - {type: sgd, learning_rate: 0.05, momentum: {$float: {min: 0.5, max: 0.95}}}

A hyperparameter is named by where its space is written in the spec, in the same notation as
errors and ``--set``: ``model.layers[1].units``; a space inside an option of a choice keeps the
option in its name: ``training.optimizer.$choice[0].learning_rate``.

This module holds the models of the four kinds of space and of the ``search:`` section;
:mod:`kspec.spec.spaces` finds the spaces in a spec and :mod:`kspec.validation.spaces` validates
every value of every space.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from kspec.errors import SpecError
from kspec.registry import TUNERS
from kspec.spec.base import PositiveInt, RelativeSpecError, Strict, registry_union

SPACE_KINDS = ("$choice", "$int", "$float", "$bool")
# Sections whose values must be the same in every trial: the data (every trial is compared on
# the same splits), the seed and the search settings themselves.
FIXED_SECTIONS = ("kspec", "name", "description", "seed", "data", "search")


# -- the bodies of the four kinds of space -----------------------------------------------------
class _Range(Strict):
    sampling: Literal["linear", "log", "reverse_log"] = Field(
        "linear", description="log: sample the logarithm uniformly (for rates spanning decades)"
    )

    @model_validator(mode="after")
    def _bounds(self):
        if self.min > self.max:
            raise RelativeSpecError(SpecError(".min", f"min {self.min!r} is above max {self.max!r}",
                                              valid="min <= max"))
        if self.sampling != "linear" and self.min <= 0:
            raise RelativeSpecError(SpecError(
                ".min", f"{self.sampling} sampling needs a positive range, got min {self.min!r}",
                valid="min > 0, or sampling: linear"))
        if self.default is not None and not self.min <= self.default <= self.max:
            raise RelativeSpecError(SpecError(
                ".default", f"default {self.default!r} is outside [{self.min!r}, {self.max!r}]"))
        return self


class IntSpace(_Range):
    """``$int``: an integer range; ``step`` is added (linear) or multiplied (log)."""

    min: int
    max: int
    step: PositiveInt | None = None
    default: int | None = None

    def top(self) -> int:
        """The largest value the range can produce (``max`` rounded down onto the steps)."""
        if self.step is None:
            return self.max
        if self.sampling == "linear":
            return self.min + (self.max - self.min) // self.step * self.step
        value = self.min
        while self.step > 1 and value * self.step <= self.max:
            value *= self.step
        return value


class FloatSpace(_Range):
    """``$float``: a float range, linear or log sampling, optional ``step``."""

    min: float
    max: float
    step: float | None = Field(None, gt=0)
    default: float | None = None


class BoolSpace(Strict):
    """``$bool``: true or false."""

    default: bool = False


class ChoiceSpace(Strict):
    """``$choice``: one of ``values`` (scalars, lists, or whole sub-specs)."""

    values: list[Any] = Field(..., min_length=1)
    default: Any = None


_BODIES = {"$int": IntSpace, "$float": FloatSpace, "$bool": BoolSpace, "$choice": ChoiceSpace}


def search_space_json_schema() -> dict[str, Any]:
    """JSON Schema of one search space: a mapping with exactly one ``$`` key."""
    options = [{"type": "object", "properties": {"$choice": {"type": "array", "minItems": 1}},
                "required": ["$choice"], "additionalProperties": False}]
    for key, model in _BODIES.items():
        body = model.model_json_schema()
        body.pop("title", None)
        options.append({"type": "object", "properties": {key: body}, "required": [key],
                        "additionalProperties": False})
    return {"description": "a search space (kspec tune): {$choice: [...]}, {$int: {min, max}}, "
            "{$float: {min, max, sampling}} or {$bool: {}}", "oneOf": options}


# -- the search section --------------------------------------------------------------------------
_MINIMIZE = ("loss", "error", "mse", "mae", "crossentropy", "hinge", "poisson", "divergence",
             "squared", "absolute", "huber", "logcosh")
_MAXIMIZE = ("accuracy", "auc", "precision", "recall", "f1", "iou", "r2", "score", "top_k")


def infer_direction(metric: str) -> str | None:
    """``min`` for losses and errors, ``max`` for accuracies and AUC, else None."""
    name = metric.lower()
    if any(word in name for word in _MINIMIZE):
        return "min"
    if any(word in name for word in _MAXIMIZE):
        return "max"
    return None


class Objective(Strict):
    """The metric a search optimizes, as Keras logs it (``val_accuracy``, ``loss``, ...)."""

    name: str = Field(..., min_length=1)
    direction: Literal["min", "max"] | None = Field(
        None, description="inferred for losses (min) and accuracies/AUC (max)")

    @model_validator(mode="after")
    def _direction(self):
        if self.direction is None:
            self.direction = infer_direction(self.name)
        if self.direction is None:
            raise RelativeSpecError(SpecError(
                ".direction", f"cannot tell whether {self.name!r} is to be minimized or "
                "maximized", valid="direction: min or direction: max"))
        return self


class SearchEarlyStopping(Strict):
    """Stop a trial when ``monitor`` (default: the objective) stalls for ``patience`` epochs."""

    monitor: str | None = None
    patience: int = Field(2, ge=0)
    min_delta: float = Field(0.0, ge=0.0)


# -- tuners: each a schema of its options, registered with the function that makes it --------
@TUNERS.schema("random", "kspec.search.tuners:random")
class RandomTuner(Strict):
    """Random search: each trial draws every space at random (``max_trials`` trials)."""

    example: ClassVar[dict] = {"type": "random"}

    type: Literal["random"]


@TUNERS.schema("grid", "kspec.search.tuners:grid")
class GridTuner(Strict):
    """Grid search: every combination of the choices (ranges in their steps), in order."""

    example: ClassVar[dict] = {"type": "grid"}

    type: Literal["grid"]


@TUNERS.schema("bayesian", "kspec.search.tuners:bayesian")
class BayesianTuner(Strict):
    """Bayesian optimization with a Gaussian process over the trials so far."""

    example: ClassVar[dict] = {"type": "bayesian", "initial_points": 2}

    type: Literal["bayesian"]
    initial_points: PositiveInt | None = Field(
        None, description="random trials before the model guides (default: 3 x dimensions)")
    alpha: float = Field(1e-4, gt=0.0, description="expected noise in the objective")
    beta: float = Field(2.6, gt=0.0, description="exploration weight")


@TUNERS.schema("hyperband", "kspec.search.tuners:hyperband")
class HyperbandTuner(Strict):
    """Hyperband: many configurations trained briefly, the best continued (``search.epochs``
    is the most epochs one model trains)."""

    example: ClassVar[dict] = {"type": "hyperband", "factor": 2}

    type: Literal["hyperband"]
    factor: int = Field(3, ge=2, description="reduction factor between rounds")
    iterations: PositiveInt = Field(1, description="times the whole Hyperband algorithm runs")


Tuner = registry_union(TUNERS)


class DistributedOptions(Strict):
    """Chief/worker search (KerasTuner's gRPC oracle); all waits are bounded."""

    oracle: str = Field("127.0.0.1:8000", pattern=r"^[^:\s]+:\d{1,5}$",
                        description="HOST:PORT the chief listens on and workers connect to")
    workers: PositiveInt | None = Field(
        None, description="the chief serves until this many workers have connected and left")
    connect_timeout: float = Field(60.0, gt=0.0,
                                   description="seconds a worker waits for the chief (and the "
                                   "chief for its first worker)")
    call_timeout: float = Field(600.0, gt=0.0, description="seconds one request may take")
    timeout: float | None = Field(None, gt=0.0, description="seconds the chief serves at most")


def _tuner_by_name_schema(schema: dict) -> None:
    # Editors should accept `tuner: bayesian` as well as `tuner: {type: bayesian, ...}`.
    tuner = schema["properties"]["tuner"]
    names = {"type": "string", "enum": TUNERS.names()}
    schema["properties"]["tuner"] = {"anyOf": [names, {k: v for k, v in tuner.items()
                                                       if k not in ("default", "description")}],
                                     "description": tuner.get("description", "")}


class SearchSpec(Strict):
    """How to search the spaces of a spec with KerasTuner."""

    model_config = ConfigDict(json_schema_extra=_tuner_by_name_schema)

    tuner: Tuner = Field(
        default_factory=lambda: RandomTuner(type="random"),
        description="a tuner name (`kspec components tuners`), or {type: NAME, ...options}")
    objective: str | Objective = Field("val_loss", description="metric name, or {name, direction}")
    max_trials: PositiveInt = Field(10, description="ignored by hyperband (its rounds decide)")
    executions_per_trial: PositiveInt = Field(1, description="trainings averaged per trial")
    epochs: PositiveInt | None = Field(
        None, description="epochs per trial (default: training.epochs); hyperband: the most")
    early_stopping: SearchEarlyStopping | None = None
    seed: int | None = Field(None, ge=0, description="seeds the tuner (default: the spec seed)")
    directory: str = Field("tuning", description="folder of search projects")
    project: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$",
                                description="project folder name (default: the spec name)")
    overwrite: bool = Field(False, description="start again, deleting an existing project")
    max_consecutive_failures: PositiveInt = Field(
        5, description="stop the search after this many failed trials in a row")
    distributed: DistributedOptions = Field(default_factory=DistributedOptions)

    @classmethod
    def upgrade(cls, data: dict) -> dict:
        # `tuner: hyperband` names a tuner with its default options. Earlier specs gave the
        # options in sections named after the tuner (`hyperband: {factor: 2}`); they are
        # folded into the tuner they belong to (and dropped for any other tuner).
        data = dict(data)
        legacy = {k: data.pop(k) for k in ("hyperband", "bayesian") if k in data}
        tuner = data.get("tuner", "random")
        if isinstance(tuner, str):
            tuner = {"type": tuner}
        kind = tuner.get("type") if isinstance(tuner, dict) else None
        if isinstance(kind, str) and isinstance(legacy.get(kind), dict):
            tuner = {**legacy[kind], **tuner}
        data["tuner"] = tuner
        return data

    @model_validator(mode="after")
    def _objective(self):
        if isinstance(self.objective, str):
            try:
                self.objective = Objective(name=self.objective)
            except ValidationError:
                raise RelativeSpecError(SpecError(
                    ".objective", f"cannot tell whether {self.objective!r} is to be minimized "
                    "or maximized", valid=f"{{name: {self.objective}, direction: min or max}}"))
        return self


__all__ = ["BayesianTuner", "BoolSpace", "ChoiceSpace", "FloatSpace", "GridTuner",
           "HyperbandTuner", "IntSpace", "Objective", "RandomTuner", "SearchSpec",
           "infer_direction"]
