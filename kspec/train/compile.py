"""Optimizer, loss and metrics from the training section, with spec paths on errors."""

from __future__ import annotations

from typing import Any

from kspec.errors import SpecError
from kspec.registry import LOSSES, METRICS, OPTIMIZERS
from kspec.spec import Spec


def _per_output(value: Any, build, path: str, outputs: list[str]):
    if isinstance(value, dict) and "type" not in value:
        for name in value:
            if name not in outputs:
                raise SpecError(f"{path}.{name}", f"the model has no output {name!r}",
                                valid=outputs)
        return {name: build(v, f"{path}.{name}") for name, v in value.items()}
    return build(value, path)


def _metrics(refs, path):
    return [METRICS.build(ref, f"{path}[{i}]") for i, ref in enumerate(refs)]


def compile_model(model: Any, spec: Spec) -> Any:
    """Compile ``model`` with the spec's optimizer, loss(es), loss weights and metrics."""
    t = spec.training
    outputs = list(model.output_names)
    optimizer = OPTIMIZERS.build(t.optimizer, "training.optimizer")
    loss = _per_output(t.loss, LOSSES.build, "training.loss", outputs)
    metrics = _per_output(t.metrics, _metrics, "training.metrics", outputs)
    if t.loss_weights:
        for name in t.loss_weights:
            if name not in outputs:
                raise SpecError(f"training.loss_weights.{name}",
                                f"the model has no output {name!r}", valid=outputs)
    try:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics,
                      loss_weights=t.loss_weights)
    except (ValueError, TypeError) as e:
        raise SpecError("training", f"cannot compile the model: {e}") from e
    return model
