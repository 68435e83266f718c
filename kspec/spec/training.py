"""The training section: optimizer, loss, metrics, schedule of epochs and callbacks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from kspec import registry
from kspec.errors import SpecError
from kspec.spec.base import (
    LossRef,
    MetricRef,
    OptimizerRef,
    PositiveInt,
    RelativeSpecError,
    Strict,
)


class EarlyStopping(Strict):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: bool = True
    start_from_epoch: int = Field(0, ge=0)


class Checkpoint(Strict):
    """Save the model (in the run directory) every epoch or when ``monitor`` improves."""

    monitor: str = "val_loss"
    save_best_only: bool = True
    mode: Literal["auto", "min", "max"] = "auto"


class ReduceLROnPlateau(Strict):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls."""

    monitor: str = "val_loss"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0)
    min_lr: float = Field(0.0, ge=0.0)


class Callbacks(Strict):
    """Callbacks; history is always written as CSV in the run directory."""

    early_stopping: EarlyStopping | None = None
    checkpoint: Checkpoint | None = None
    reduce_lr_on_plateau: ReduceLROnPlateau | None = None
    tensorboard: bool = False
    backup_and_restore: bool = Field(
        True, description="resume from the last finished epoch after a crash"
    )


def _check_schedule(value: Any) -> Any:
    """An optimizer's ``learning_rate`` may itself be a schedule reference."""
    if isinstance(value, dict) and isinstance(value.get("learning_rate"), dict):
        registry.load_builtins()
        try:
            registry.SCHEDULES.check(value["learning_rate"], "")
        except SpecError as e:
            e.path = ".learning_rate" + e.path
            raise RelativeSpecError(e) from None
    return value


class TrainingSpec(Strict):
    """How to train: optimizer, loss, metrics, batches, epochs and callbacks."""

    optimizer: OptimizerRef = "adam"
    loss: LossRef | dict[str, LossRef] = Field(
        ..., description="one loss, or one per output name"
    )
    loss_weights: dict[str, float] | None = None
    metrics: list[MetricRef] | dict[str, list[MetricRef]] = Field(default_factory=list)
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    steps_per_epoch: PositiveInt | None = Field(
        None, description="cap the number of batches per epoch (quick runs)"
    )
    shuffle: bool = True
    class_weight: dict[int, float] | Literal["balanced"] | None = None
    callbacks: Callbacks = Field(default_factory=Callbacks)
    verbose: Literal[0, 1, 2, "auto"] = "auto"

    @field_validator("optimizer")
    @classmethod
    def _schedule(cls, v: Any) -> Any:
        return _check_schedule(v)


