"""Training, dev (validation) and test error of a run, as the bias/variance recipe reads them.

A classifier's error is ``1 - accuracy`` (the spec's plain accuracy metric); any other model's
error is its loss, in the loss's units. ``kspec report`` builds the bias/variance report on
:func:`split_errors`; the end-of-fit summary shows :func:`error_line`.

Example:
    >>> spec = load_spec("specs/quickstart.yaml")  # doctest: +SKIP
    >>> split_errors(spec, {"train": {"accuracy": 0.99, "loss": 0.05},
    ...                     "test": {"accuracy": 0.97, "loss": 0.1}})  # doctest: +SKIP
    {'metric': 'accuracy', 'measure': '1 - accuracy', 'train': 0.01, 'test': 0.03}
"""

from __future__ import annotations

from typing import Any, Mapping

# Plain accuracies, in the order they are preferred when a run has several.
ACCURACY_NAMES = ("accuracy", "binary_accuracy", "sparse_categorical_accuracy",
                  "categorical_accuracy")
SPLITS = ("train", "validation", "test")


def error_metric(spec: Any, metrics: Mapping[str, Mapping[str, float]]) -> tuple[str, bool]:
    """``(metric key, is_accuracy)``: the accuracy metric the errors come from, else
    ``("loss", False)``. For several outputs, the first output that reports an accuracy."""
    keys = set(metrics.get("train") or next(iter(metrics.values()), {}) or {})
    outputs = [""]
    if spec is not None and len(spec.model.output_names()) > 1:
        outputs = [f"{name}_" for name in spec.model.output_names()]
    for prefix in outputs:
        for name in ACCURACY_NAMES:
            if prefix + name in keys:
                return prefix + name, True
    return "loss", False


def split_errors(spec: Any, metrics: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """The error of each split: ``{"metric", "measure", "train", "validation", "test"}``
    (splits the run lacks are left out)."""
    key, accuracy = error_metric(spec, metrics)
    out: dict[str, Any] = {"metric": key, "measure": f"1 - {key}" if accuracy else key}
    for split in SPLITS:
        value = (metrics.get(split) or {}).get(key)
        if isinstance(value, (int, float)):
            out[split] = 1.0 - float(value) if accuracy else float(value)
    return out


def error_line(spec: Any, metrics: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The summary's one line of errors (``[]`` without at least two splits)::

        errors   train 0.0119   dev 0.0335   test 0.0186   (1 - accuracy; kspec report RUN)
    """
    errors = split_errors(spec, metrics)
    shown = [(name, errors[split]) for name, split in
             (("train", "train"), ("dev", "validation"), ("test", "test")) if split in errors]
    if len(shown) < 2:
        return []
    cells = "   ".join(f"{name} {value:.4g}" for name, value in shown)
    return [f"errors   {cells}   ({errors['measure']}; kspec report RUN)"]
