"""``kspec.export``: write a checked, versioned model for serving."""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from kspec.exporter import layout, metadata
from kspec.exporter.errors import ExportError
from kspec.exporter.layout import MODEL_FILES
from kspec.exporter.parity import (
    FOLD_TOLERANCE,
    PRECISION_TOLERANCES,
    TOLERANCES,
    ParityReport,
    compare,
    keras_predict,
    model_precision,
)
from kspec.exporter.signature import SIGNATURE_KEY, class_output_plan, describe_inputs

FORMATS = ("savedmodel", "tflite", "keras")


@dataclass
class ExportResult:
    """What :func:`export` wrote.

    Attributes:
        path: the version directory, ``MODELS_DIR/NAME/VERSION``.
        name, version, format: as published.
        signature: input and output names with dtypes and shapes.
        check: the parity check that passed before publishing.
        fold: which batch norms were folded or skipped (None when folding was off).
    """

    path: Path
    name: str
    version: int
    format: str
    signature: dict[str, Any]
    check: ParityReport
    fold: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def model_path(self) -> Path:
        """The file or directory a client loads."""
        return self.path / MODEL_FILES[self.format] if self.format in MODEL_FILES else self.path

    def summary(self) -> str:
        """The lines printed by ``kspec export``."""
        lines = [f"exported {self.name} version {self.version} ({self.format}) -> {self.path}"]
        for kind in ("inputs", "outputs"):
            for key, s in self.signature.get(kind, {}).items():
                lines.append(f"  {kind[:-1]:<7} {key:<24} {s['dtype']:<8} {s['shape']}")
        if self.fold is not None:
            for f in self.fold["folded"]:
                lines.append(f"  folded  {f['batch_norm']} into {f['into']}")
            for s in self.fold["skipped"]:
                lines.append(f"  kept    {s['batch_norm']}: {s['reason']}")
        lines.append("  " + self.check.summary())
        return "\n".join(lines)


def _tolerance(fmt: str, folded: bool, rtol: float | None, atol: float | None,
               precision: str = "float32"):
    base_r, base_a = TOLERANCES[fmt]
    if folded:
        base_r, base_a = max(base_r, FOLD_TOLERANCE[0]), max(base_a, FOLD_TOLERANCE[1])
    floor_r, floor_a = PRECISION_TOLERANCES[precision]
    base_r, base_a = max(base_r, floor_r), max(base_a, floor_a)
    return (base_r if rtol is None else rtol), (base_a if atol is None else atol)


def _float32_twin(model: Any) -> Any:
    """A mixed-precision model rebuilt in float32 with the same weights, for TFLite: the
    converter would keep float16/bfloat16 casts as TensorFlow ops that the TFLite runtime
    lacks (checked: "Select TensorFlow op(s) ... not supported by this interpreter"). The
    parity check then compares it with the mixed-precision Keras model at that precision's
    tolerance."""
    from kspec.compiler.precision import dtype_policy, under_global_policy

    with dtype_policy("float32"):
        return under_global_policy(model)


def _signature_of_savedmodel(path: Path) -> tuple[Any, dict[str, Any]]:
    import tensorflow as tf

    from kspec.exporter.signature import describe_signature

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures[SIGNATURE_KEY]

    _, wanted = fn.structured_input_signature

    def run(inputs):  # as a client sends them: in the signature's dtypes
        feed = {k: tf.constant(v, dtype=wanted[k].dtype) if k in wanted else tf.constant(v)
                for k, v in inputs.items()}
        return {k: v.numpy() for k, v in fn(**feed).items()}

    # Keep `loaded` alive as long as `run` is: the signature only holds a weak reference.
    run.loaded = loaded  # type: ignore[attr-defined]
    return run, describe_signature(fn)


def _write_and_load(fmt: str, model: Any, tmp: Path, plan: dict[str, str]):
    """Write the artifact into ``tmp``; return (runner, signature description, extra info)."""
    from kspec.exporter.signature import write_savedmodel

    if fmt == "savedmodel":
        write_savedmodel(model, tmp, plan)
        run, sig = _signature_of_savedmodel(tmp)
        return run, sig, {}
    if fmt == "tflite":
        from kspec.exporter import tflite

        # The SavedModel is only a conversion step here: keep it out of the version folder.
        # Named like the version's own temporary folder (with our pid), so that a hard crash
        # here is cleaned up by the next export's remove_stale_temps.
        prefix = f"{layout.TMP_PREFIX}{os.getpid()}-tflite-"
        with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=prefix) as scratch:
            write_savedmodel(model, scratch, plan)
            _, sig = _signature_of_savedmodel(Path(scratch))
            info = tflite.convert(scratch, tmp / MODEL_FILES["tflite"])
        return tflite.runner(tmp / MODEL_FILES["tflite"]), sig, {"tflite": info}
    # .keras: the model itself; class outputs are a serving-signature feature.
    from kspec.compiler.loading import load_model
    from kspec.exporter.signature import describe_outputs

    model.save(tmp / MODEL_FILES["keras"])
    reloaded = load_model(tmp / MODEL_FILES["keras"], compile=False)
    sig = {"inputs": describe_inputs(reloaded),
           "outputs": describe_outputs(reloaded)}
    return (lambda inputs: keras_predict(reloaded, inputs)), sig, {}


def export(
    source: Any,
    out: str | Path = "models",
    *,
    name: str | None = None,
    version: int | None = None,
    format: str = "savedmodel",
    fold_batchnorm: bool = False,
    class_outputs: bool | Iterable[str] = False,
    spec: Any = None,
    sample: Any = None,
    samples: int = 64,
    rtol: float | None = None,
    atol: float | None = None,
) -> ExportResult:
    """Export a trained model for serving, checked and versioned.

    The model is written into a temporary folder next to ``OUT/NAME``, loaded back the way a
    client loads it, run twice on real inputs and compared with the Keras model; only then
    is the folder renamed to ``OUT/NAME/VERSION``. A failure leaves nothing behind and never
    touches earlier versions.

    Args:
        source: a run directory, a ``.keras`` file, a ``kspec.Run`` or a ``keras.Model``.
        out: the models folder (TF Serving's ``--model_base_path`` is ``OUT/NAME``).
        name: the model name; default: the spec's name, else the Keras model's name.
        version: the version number; default: one more than the highest existing one.
        format: ``savedmodel`` (default), ``tflite`` or ``keras``.
        fold_batchnorm: fold batch norms that follow a linear Dense/Conv into its weights.
        class_outputs: add ``NAME_class`` (arg-max) and ``NAME_probability`` outputs: True
            for every softmax/sigmoid output, or a list of output names.
        spec: the spec of a bare ``keras.Model`` (stored as metadata).
        sample: input rows for the check (array, or dict by input name); default: the run's
            test split.
        samples: how many rows the check uses.
        rtol, atol: check tolerance; default per format and the model's precision (see
            ``kspec.exporter.parity``; docs/export.md).

    Returns:
        An :class:`ExportResult`.

    Raises:
        ParityError: the written model does not reproduce the Keras model.
        ExportWriteError: the target is full, read-only or forbidden (nothing published).
        ExportError: a bad source, name, version or option.
        kspec.ModelFileError: the run's ``model.keras`` cannot be loaded (a DataError).

    Example:
        >>> result = kspec.export("runs/quickstart-20260101-120000", out="models")
        >>> result.path
        PosixPath('models/quickstart/1')
    """
    from kspec.exporter.exportable import resolve, sample_inputs
    from kspec.exporter.fold import fold_batch_norm
    from kspec.rundir import library_versions
    from kspec.spec import to_yaml

    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r} (expected one of: "
                          f"{', '.join(FORMATS)})")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                or version < 1):
        raise ExportError(f"version must be a positive integer (received: {version!r})")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ExportError(f"samples must be a positive integer (received: {samples!r})")
    src = resolve(source, spec)
    model = src.model
    name = layout.check_name(name or (src.spec.name if src.spec else model.name))
    model_dir = Path(out) / name
    layout.remove_stale_temps(model_dir)
    if version is not None and (model_dir / str(version)).exists():
        raise ExportError(f"version {version} of {name!r} already exists at "
                          f"{model_dir / str(version)}; earlier versions are never overwritten")

    fold = fold_batch_norm(model) if fold_batchnorm else None
    serving_model = fold.model if fold is not None else model
    # The weights are the least the export writes (twice for TFLite: the SavedModel it is
    # converted from sits next to it); a disk that cannot hold them fails now, not later.
    layout.check_free_space(model_dir, layout.weight_bytes(serving_model)
                            * (2 if format == "tflite" else 1))
    plan = class_output_plan(serving_model, class_outputs)
    if format == "keras" and plan:
        warnings.warn("class outputs are a serving-signature feature; the .keras export "
                      "keeps the model's own outputs", stacklevel=2)
        plan = {}
    inputs, origin = sample_inputs(src, samples, sample, seed=src.spec.seed if src.spec else 0)
    reference = keras_predict(model, inputs)  # always the original, unfolded model
    precision = model_precision(model)
    rtol_, atol_ = _tolerance(format, bool(fold and fold.folded), rtol, atol, precision)

    tmp = layout.make_temp(model_dir)
    try:
        written = serving_model
        if format == "tflite" and precision != "float32":
            written = _float32_twin(serving_model)
        run, signature, extra = _write_and_load(format, written, tmp, plan)
        report = compare(run, inputs, reference, target=format, origin=origin,
                         rtol=rtol_, atol=atol_, class_plan=plan, precision=precision)
        meta = {
            "name": name, "format": format, "signature_key": SIGNATURE_KEY,
            "signature": signature, "class_outputs": plan,
            "source": src.origin, "seed": (src.spec.seed if src.spec else src.meta.get("seed")),
            "versions": library_versions(), "training_versions": src.meta.get("versions"),
            "metrics": src.metrics, "check": report.as_dict(),
            "fold": fold.as_dict() if fold is not None else None,
            "class_names": _class_names(src), **extra,
        }
        metadata.write_metadata(tmp, meta, to_yaml(src.spec) if src.spec else None)
        del run  # release the loaded artifact before the folder moves
        path, published = layout.publish(tmp, model_dir, version)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = layout.write_failure(e, model_dir) if isinstance(e, Exception) else None
        if failure is not None:
            raise failure from e
        raise
    return ExportResult(path, name, published, format, signature, report,
                        fold.as_dict() if fold is not None else None, meta)


def _class_names(src: Any) -> list | dict | None:
    """Class names known from the data (bundled tables, image folders, TFDS, CSV labels)."""
    meta = getattr(src.data, "meta", None) or {}
    return meta.get("class_names", src.meta.get("class_names"))
