"""Optimizer, loss and metrics from the training section, with spec paths on errors.

Multi-output models get one loss and one metric list per output (a single loss or metric
list in the spec applies to every output), so the history and the run summary carry
per-output entries such as ``digit_loss`` and ``digit_accuracy``.
"""

from __future__ import annotations

import re
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
    if len(outputs) > 1:
        # One entry for all outputs: Keras 3 wants the structure of the outputs.
        return {name: build(value, path) for name in outputs}
    return build(value, path)


def _metric(ref: Any, path: str) -> Any:
    metric = METRICS.build(ref, path)
    name = getattr(metric, "name", None)
    given = isinstance(ref, dict) and "name" in ref
    base = _snake_case(type(metric).__name__)
    if isinstance(name, str) and not given and re.fullmatch(re.escape(base) + r"_\d+", name):
        # Keras numbers the default name of every further instance (auc, auc_1, ...), so a
        # second model built in one session (ensemble members, search trials) would report
        # "auc_5"; the spec's metric keeps its plain name. Only that suffix is removed: a
        # name a metric chose itself ("group_1_accuracy") is kept.
        params = dict(ref) if isinstance(ref, dict) else {"type": ref}
        metric = METRICS.build({**params, "name": base}, path)
    return metric


def _snake_case(class_name: str) -> str:
    """Keras's default metric name for a class (``AUC`` -> ``auc``, ``F1Score`` ->
    ``f1_score``), as ``keras.src.utils.naming.to_snake_case`` derives it."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _metrics(refs, path):
    return [_metric(ref, f"{path}[{i}]") for i, ref in enumerate(refs)]


def build_optimizer(ref: Any, path: str = "training.optimizer") -> Any:
    """A fresh optimizer from a spec reference."""
    return OPTIMIZERS.build(ref, path)


def is_uncertainty_weighted(model: Any) -> bool:
    """Whether ``model`` is the learned-uncertainty wrapper of a multi-output model."""
    return hasattr(model, "weighting") and hasattr(model, "inner")


def wrap_for_loss_weighting(model: Any, spec: Spec) -> Any:
    """``model`` wrapped for ``training.loss_weighting: uncertainty`` (else unchanged).

    The wrapper (``kspec.components.multitask``, Kendall & Cipolla) learns one
    log-variance ``s`` per output and trains on ``sum exp(-s) * loss + s``; its
    ``from_spec`` checks the outputs and losses with spec paths.
    """
    if spec.training.loss_weighting != "uncertainty":
        return model
    from kspec.components.multitask import from_spec

    return from_spec(model, spec)


def _uncertainty_compile(model: Any, spec: Spec, opt: Any) -> Any:
    import keras

    t = spec.training
    outputs = list(model.output_keys)
    metrics = _per_output(t.metrics, _metrics, "training.metrics", outputs) if t.metrics else {}
    if not isinstance(metrics, dict):
        metrics = {outputs[0]: metrics}
    # Each output's own loss as a metric, so the history keeps per-output losses
    # (`kind_loss`) next to the learned total.
    metrics = {name: [*metrics.get(name, []),
                      keras.metrics.MeanMetricWrapper(model.task_losses[name], name="loss")]
               for name in outputs}
    try:
        model.compile(optimizer=opt, metrics=metrics, jit_compile=t.jit_compile)
    except (ValueError, TypeError) as e:
        raise SpecError("training", f"cannot compile the model: {e}") from e
    return model


def _beside_groups(metrics: Any, loss: Any, model: Any) -> Any:
    """Plain metrics listed beside the fairness metrics see the labels without the group
    column that ``data.groups`` packs into the targets (``label_columns`` loss)."""
    from kspec.components.losses import LabelColumnsLoss
    from kspec.components.metrics import for_packed_targets

    if not isinstance(loss, LabelColumnsLoss) or not isinstance(metrics, list):
        return metrics
    inner = type(loss.loss).__name__
    onehot = inner.startswith("Categorical") or inner == "KLDivergence"
    logits = bool(getattr(loss.loss, "from_logits", False))
    units = model.outputs[0].shape[-1]
    return [for_packed_targets(m, units, onehot, logits) for m in metrics]


def compile_model(model: Any, spec: Spec, *, optimizer: Any = None,
                  optimizer_path: str = "training.optimizer",
                  loss_weights: dict[str, float] | None = None) -> Any:
    """Compile ``model`` with the spec's optimizer, loss(es), loss weights and metrics.

    Args:
        model: the built model.
        spec: the validated spec.
        optimizer: an optimizer reference overriding ``training.optimizer`` (a phase's).
        optimizer_path: its place in the spec, for error messages.
        loss_weights: per-output weights overriding ``training.loss_weights`` (the learned
            uncertainty weights, when the plain model is compiled after training).

    Example:
        >>> compile_model(build_model(spec), spec)  # doctest: +SKIP
    """
    from kspec.train.scale import steps_per_execution

    t = spec.training
    ref = t.optimizer if optimizer is None else optimizer
    opt = build_optimizer(ref, optimizer_path)
    if is_uncertainty_weighted(model):
        return _uncertainty_compile(model, spec, opt)
    outputs = list(model.output_names)
    loss = _per_output(t.loss, LOSSES.build, "training.loss", outputs)
    if isinstance(loss, dict):
        missing = [name for name in outputs if name not in loss]
        if missing:
            raise SpecError("training.loss", f"no loss for output(s) {missing}", valid=outputs)
    metrics = _per_output(t.metrics, _metrics, "training.metrics", outputs) if t.metrics else []
    metrics = _beside_groups(metrics, loss, model)
    if t.loss_weights:
        for name in t.loss_weights:
            if name not in outputs:
                raise SpecError(f"training.loss_weights.{name}",
                                f"the model has no output {name!r}", valid=outputs)
    weights = loss_weights or t.loss_weights
    if weights and len(outputs) > 1:
        weights = {name: float(weights.get(name, 1.0)) for name in outputs}
    try:
        model.compile(optimizer=opt, loss=loss, metrics=metrics or None, loss_weights=weights,
                      steps_per_execution=steps_per_execution(spec),
                      jit_compile=t.jit_compile)
    except (ValueError, TypeError) as e:
        raise SpecError("training", f"cannot compile the model: {e}") from e
    return model
