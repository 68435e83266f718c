"""``kspec evaluate --under``: a model's score on the test split under fixed transforms.

Works on a run (its Keras model; the spec reloads the data's test split) and on an export
(``MODELS_DIR/NAME[/VERSION]``, run through its SavedModel signature without Keras, with the
spec stored beside it). The score is accuracy for classifiers (arg-max, or one unit
thresholded) and the mean absolute error for other models; ``drop`` is how much worse each
transform makes it (positive: worse).

Example:
    >>> r = evaluate_under("runs/quickstart-20261124-110738", "flip,rotate=15,noise=0.1")
    ...                                                                  # doctest: +SKIP
    >>> [(row["transform"], round(row["drop"], 2)) for row in r.rows]  # doctest: +SKIP
    [('clean', 0.0), ('flip', 0.62), ('rotate=15', 0.05), ('noise=0.1', 0.01)]
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from kspec import registry
from kspec.diagnose.fairness import logits_threshold, predicted_classes, true_classes
from kspec.diagnose.runs import is_run_dir, load_data_for, load_run
from kspec.diagnose.transforms import parse_transforms
from kspec.errors import DataError, SpecError
from kspec.validation import load_spec


@dataclass
class Robustness:
    """The score per transform: ``rows`` of ``{"transform", "score", "drop"}``, the clean
    score first."""

    name: str
    target: str
    kind: str
    metric: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    split: str = "test"
    examples: int = 0

    def text(self) -> str:
        lines = [f"{self.name} ({self.kind} {self.target}): {self.metric} on the {self.split} "
                 f"split ({self.examples} rows) under each transform", "",
                 f"  {'transform':<22}{self.metric:>22}{'drop':>10}"]
        for r in self.rows:
            drop = "" if r["transform"] == "clean" else f"{r['drop']:+.4f}"
            lines.append(f"  {r['transform']:<22}{r['score']:>22.4f}{drop:>10}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "kind": self.kind,
                "metric": self.metric, "split": self.split, "examples": self.examples,
                "rows": self.rows}

    def plot(self, path: str | Path) -> Path:
        from kspec.diagnose.plots import plot_robustness

        return plot_robustness(self.rows, Path(path), self.metric,
                               title=f"{self.name}: {self.metric} under transforms")

    def write(self, folder: str | Path) -> list[Path]:
        """``robustness.csv`` and ``robustness.png`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        table = folder / "robustness.csv"
        with table.open("w", newline="") as f:
            w = csv.DictWriter(f, ["transform", "score", "drop"])
            w.writeheader()
            w.writerows(self.rows)
        return [table, self.plot(folder / "robustness.png")]


def _is_classifier(spec: Any) -> bool:
    registry.load_builtins()
    loss = spec.training.loss
    if isinstance(loss, dict) and "type" not in loss:
        raise SpecError("training.loss", "robustness evaluation takes a model with one "
                        f"output; this one has {sorted(loss)}")
    entry, params = registry.LOSSES.split_ref(loss, "training.loss")
    if "packed_groups" in entry.tags:
        entry, _ = registry.LOSSES.split_ref(params.get("loss", "binary_crossentropy"),
                                             "training.loss.loss")
    return bool(entry.tags & {"binary", "multiclass"})


def _load(target: Any, data: Any) -> tuple[Any, str, str, Callable, Any]:
    """``(spec, kind, label, predict(x) -> output array, data)``."""
    if hasattr(target, "model") and hasattr(target, "spec") and hasattr(target, "run_dir"):
        spec, model = target.spec, target.model
        loaded = data or target.data or load_data_for(spec)
        return spec, "run", str(target.run_dir), _keras_predict(model), loaded
    if is_run_dir(target):
        parts = load_run(target, data=data)
        return parts.spec, "run", str(target), _keras_predict(parts.model), parts.data
    from kspec.exporter.errors import ExportError
    from kspec.exporter.predict import load_predictor

    try:
        predictor = load_predictor(target)
    except ExportError as e:
        raise DataError(f"{target}: not a run directory or a model export ({e})") from e
    if predictor.spec is None:
        raise DataError(f"{predictor.path}: the export has no spec.yaml beside it, so its test "
                        "data is unknown (export it from a run directory)")
    spec = load_spec(predictor.spec)
    output = spec.model.output_names()
    if len(output) != 1:
        raise SpecError("model", "robustness evaluation takes a model with one output; this "
                        f"one has {output}")

    def predict(x: dict[str, np.ndarray]) -> np.ndarray:
        result = predictor.run(x)
        key = output[0] if output[0] in result else next(iter(result))
        return np.asarray(result[key])

    return spec, predictor.kind, str(predictor.path), predict, data or load_data_for(spec)


def _keras_predict(model: Any) -> Callable:
    if len(model.outputs) != 1:
        raise SpecError("model", "robustness evaluation takes a model with one output; this "
                        f"one has {model.output_names}")

    def predict(x: dict[str, np.ndarray]) -> np.ndarray:
        feed = x if len(x) > 1 else next(iter(x.values()))
        return np.asarray(model.predict(feed, batch_size=256, verbose=0))

    return predict


def evaluate_under(target: Any, transforms: str | Iterable[str], *, split: str = "test",
                   seed: int | None = None, data: Any = None) -> Robustness:
    """Score ``target`` on a split, clean and under each transform.

    Args:
        target: a run directory, a ``kspec.Run``, or an export (``MODELS_DIR/NAME``,
            ``MODELS_DIR/NAME/VERSION``).
        transforms: ``"flip,rotate=15,noise=0.1"`` or a list of such items (see
            :mod:`kspec.diagnose.transforms`).
        split: the split to score (``test``; ``validation`` or ``train`` also work).
        seed: the noise seed; default the spec's seed.
        data: in-memory data as ``kspec.fit`` takes it (default: the spec's source).

    Raises:
        SpecError: an unknown transform, a split the data lacks, an image transform on a
            model without image inputs.

    Example:
        >>> r = evaluate_under("models/quickstart", ["flip", "noise=0.1"])  # doctest: +SKIP
        >>> r.kind, [row["transform"] for row in r.rows]                    # doctest: +SKIP
        ('savedmodel', ['clean', 'flip', 'noise=0.1'])
    """
    chosen = parse_transforms(transforms)
    spec, kind, label, predict, loaded = _load(target, data)
    part = loaded.splits().get(split)
    if part is None or part.y is None:
        raise SpecError("--split", f"the data has no labelled {split} split", value=split,
                        valid=sorted(loaded.splits()))
    x = {k: np.asarray(v) for k, v in part.x.items()}
    images = [k for k, v in x.items() if v.ndim == 4 and v.dtype.kind in "fiu"]
    floats = [k for k, v in x.items() if v.dtype.kind in "fiu"]
    shapes = {k: list(v.shape[1:]) for k, v in x.items()}
    for t in chosen:
        if not (images if t.images_only else floats):
            need = "image inputs (height, width, channels)" if t.images_only else "numbers"
            raise SpecError("--under", f"{t.kind} needs {need}; the model's inputs have "
                            f"shapes {shapes}", value=t.label)
    y = np.asarray(part.y)
    if spec.data.groups is not None:
        y = y[..., :-1]  # the packed group column
    classifier = _is_classifier(spec)
    threshold = logits_threshold(spec)
    metric = "accuracy" if classifier else "mean_absolute_error"

    def score(pred: np.ndarray) -> float:
        if classifier:
            return float(np.mean(predicted_classes(pred, threshold) == true_classes(y)))
        return float(np.mean(np.abs(pred.reshape(len(y), -1) - y.reshape(len(y), -1))))

    ranges = {k: (float(np.min(v)), float(np.max(v))) for k, v in x.items() if k in floats}
    clean = score(predict(x))
    rows = [{"transform": "clean", "score": clean, "drop": 0.0}]
    base_seed = spec.seed if seed is None else seed
    for i, t in enumerate(chosen):
        rng = np.random.default_rng([base_seed, i])
        moved = {k: (t.apply(v, *ranges[k], rng) if k in (images if t.images_only else floats)
                     else v)
                 for k, v in x.items()}
        value = score(predict(moved))
        rows.append({"transform": t.label, "score": value,
                     "drop": clean - value if classifier else value - clean})
    return Robustness(spec.name, label, kind, metric, rows, split, len(y))

