"""Parity checks: does the written model compute what the Keras model computes?

The written artifact is loaded back the way a client would load it (``tf.saved_model.load``,
the TFLite interpreter, ``kspec.load_model`` in Keras safe mode), run twice on the same
sample of inputs, and compared with the Keras model's ``predict``. The two runs must agree
exactly (inference is deterministic: augmentation and dropout are off) and match the Keras
predictions within ``rtol``/``atol`` (``|got - want| <= atol + rtol * |want|``, as in
``numpy.allclose``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from kspec.exporter.errors import ParityError
from kspec.exporter.signature import CLASS_SUFFIX, PROBABILITY_SUFFIX

# Default tolerances per target. SavedModel runs the same TF kernels as Keras, so only
# summation order (oneDNN, batch size) differs; TFLite fuses ops and uses XNNPACK kernels;
# folded batch norm rounds the kernel once more.
TOLERANCES = {"savedmodel": (1e-5, 1e-5), "keras": (1e-5, 1e-5), "tflite": (1e-4, 1e-4)}
FOLD_TOLERANCE = (1e-4, 1e-4)
# Floors per training.precision. A mixed-precision model computes in float16 (10-bit
# mantissa, steps of ~1e-3) or bfloat16 (7 bits, ~8e-3) and only its output layer in
# float32: another summation order or a folded batch norm moves the values entering that
# layer by a few steps of the compute dtype (measured: docs/export.md).
PRECISION_TOLERANCES = {"float32": (0.0, 0.0), "mixed_float16": (1e-2, 1e-2),
                        "mixed_bfloat16": (5e-2, 5e-2)}


def model_precision(model: Any) -> str:
    """``float32``, ``mixed_float16`` or ``mixed_bfloat16``: the compute dtype of the
    model's layers (nested models included), as ``training.precision`` set it."""
    import keras

    def layers(m):
        for layer in m.layers:
            yield layer
            if isinstance(layer, keras.Model):
                yield from layers(layer)

    dtypes = {str(getattr(layer, "compute_dtype", "float32")) for layer in layers(model)}
    for half in ("float16", "bfloat16"):
        if half in dtypes:
            return f"mixed_{half}"
    return "float32"


@dataclass
class OutputCheck:
    """One output's comparison."""

    max_abs_diff: float
    max_rel_diff: float
    within_tolerance: bool
    deterministic: bool


@dataclass
class ParityReport:
    """The result of a parity check (stored in the export's metadata).

    Attributes:
        target: what was checked (``savedmodel``, ``tflite``, ``keras``).
        samples: number of input rows used.
        inputs: where they came from (``test split of bundled:digits``, ``synthetic``, ...).
        rtol, atol: the tolerances applied.
        outputs: per output name, the differences found.
        precision: the model's precision (``float32``, ``mixed_float16``,
            ``mixed_bfloat16``), which sets the tolerance's floor.
    """

    target: str
    samples: int
    inputs: str
    rtol: float
    atol: float
    outputs: dict[str, OutputCheck] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    precision: str = "float32"

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        return out

    def summary(self) -> str:
        if not self.passed:
            return f"parity FAILED ({self.target}): " + "; ".join(self.problems)
        worst = max((c.max_abs_diff for c in self.outputs.values()), default=0.0)
        return (f"parity passed: {self.target} vs Keras on {self.samples} rows ({self.inputs}), "
                f"max |diff| {worst:.2e} (rtol {self.rtol:g}, atol {self.atol:g} for "
                f"{self.precision}), repeated calls identical")


def as_output_dict(model: Any, values: Any) -> dict[str, np.ndarray]:
    """Keras ``predict`` results (array, list or dict) keyed by output name."""
    from kspec.exporter.signature import output_names

    if isinstance(values, Mapping):
        return {k: np.asarray(v) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return dict(zip(output_names(model), (np.asarray(v) for v in values)))
    return {output_names(model)[0]: np.asarray(values)}


def _tensor_if_text(array: Any) -> Any:
    """Text arrays as string tensors: ``Model.predict`` refuses NumPy object/str arrays
    (categorical inputs) but takes ``tf.string`` tensors."""
    array = np.asarray(array)
    if array.dtype.kind in "OUS":
        import tensorflow as tf

        return tf.constant(array.astype(str))
    return array


def keras_predict(model: Any, inputs: Mapping[str, np.ndarray], batch_size: int = 256):
    """The Keras model's predictions on named inputs, keyed by output name."""
    import keras

    # Same structure as the model's own inputs (a tensor, a list or a dict), so Keras does
    # not have to guess how named arrays map onto it.
    x = keras.tree.map_structure(lambda t: _tensor_if_text(inputs[t.name]), model.input)
    if isinstance(x, list) and len(x) == 1:
        x = x[0]
    return as_output_dict(model, model.predict(x, batch_size=batch_size, verbose=0))


def _diffs(got: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    if got.size == 0:
        return 0.0, 0.0
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    rel = diff / np.maximum(np.abs(want.astype(np.float64)), 1e-12)
    return float(diff.max()), float(rel.max())


def compare(
    run: Callable[[dict[str, np.ndarray]], Mapping[str, Any]],
    inputs: dict[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    *,
    target: str,
    origin: str,
    rtol: float,
    atol: float,
    class_plan: Mapping[str, str] | None = None,
    precision: str = "float32",
) -> ParityReport:
    """Run ``run(inputs)`` twice and compare with ``reference``; raise if they disagree.

    Args:
        run: the loaded artifact as a function of named inputs -> named outputs.
        inputs: named input arrays (a batch of real rows when available).
        reference: the Keras model's outputs on ``inputs``.
        target, origin: recorded in the report.
        rtol, atol: the tolerance (see the module docstring).
        class_plan: the class outputs added to the signature (``{output: kind}``); their
            classes are checked against the served scores.
        precision: the model's precision, recorded in the report.

    Raises:
        ParityError: outputs missing, not deterministic, or outside the tolerance.
    """
    first = {k: np.asarray(v) for k, v in run(inputs).items()}
    second = {k: np.asarray(v) for k, v in run(inputs).items()}
    rows = len(next(iter(inputs.values())))
    report = ParityReport(target, rows, origin, rtol, atol, precision=precision)
    for name, want in reference.items():
        if name not in first:
            report.problems.append(f"output {name!r} is missing (got {sorted(first)})")
            continue
        got = first[name]
        if got.shape != want.shape:
            report.problems.append(f"output {name!r} has shape {got.shape}, Keras gives "
                                   f"{want.shape}")
            continue
        same = bool(np.array_equal(got, second[name], equal_nan=True))
        close = bool(np.allclose(got, want, rtol=rtol, atol=atol, equal_nan=True))
        abs_d, rel_d = _diffs(got, want)
        report.outputs[name] = OutputCheck(abs_d, rel_d, close, same)
        if not same:
            report.problems.append(f"output {name!r} differs between two calls on the same "
                                   "input (randomness left in inference?)")
        if not close:
            row = int(np.unravel_index(np.argmax(np.abs(got - want)), got.shape)[0])
            report.problems.append(
                f"output {name!r} differs from Keras by up to {abs_d:.3g} (row {row}: got "
                f"{np.ravel(got[row])[:4].tolist()}, Keras {np.ravel(want[row])[:4].tolist()}); "
                f"tolerance rtol={rtol:g}, atol={atol:g}")
        if name in (class_plan or {}):
            _check_class_output(name, got, first, report, class_plan[name])
    if not report.passed:
        raise ParityError(f"{target} export failed its parity check: "
                          + "; ".join(report.problems), report)
    return report


def _check_class_output(name: str, scores: np.ndarray, outputs: dict, report: ParityReport,
                        kind: str) -> None:
    """The served class must follow from the served scores: arg-max, or the 0.5 threshold of
    one sigmoid unit (0 for a logit)."""
    cls, prob = outputs.get(name + CLASS_SUFFIX), outputs.get(name + PROBABILITY_SUFFIX)
    if cls is None or prob is None or prob.shape != cls.shape:
        report.problems.append(f"outputs {name + CLASS_SUFFIX!r} / {name + PROBABILITY_SUFFIX!r} "
                               "are missing or misshapen")
        return
    if scores.shape[-1] == 1 and kind in ("sigmoid", "logit"):
        expected = scores[:, 0] > (0.5 if kind == "sigmoid" else 0.0)
        # Scores within rounding of the threshold may fall either side of it.
        clear = np.abs(scores[:, 0] - (0.5 if kind == "sigmoid" else 0.0)) > 1e-6
    else:
        expected = np.argmax(scores, axis=-1)
        top2 = np.sort(scores, axis=-1)[:, -2:]
        clear = (top2[:, 1] - top2[:, 0]) > 1e-6
    if not np.array_equal(cls.astype(np.int64)[clear], expected.astype(np.int64)[clear]):
        report.problems.append(f"output {name + CLASS_SUFFIX!r} does not follow from "
                               f"{name!r} ({kind})")
