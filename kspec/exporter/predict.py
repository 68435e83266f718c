"""Run an export (or a run directory) on input files: the engine of ``kspec predict``.

A SavedModel is run through ``tf.saved_model.load`` and its ``serving_default`` signature
(no Keras involved), a ``.tflite`` file through the TFLite interpreter, and a ``.keras``
file or run directory through Keras (``safe_mode=True``). Inputs come from CSV (one row per
example), NPZ (one array per input name), image files, or TFRecord files of a model trained
from a ``tfrecord`` source (read with the spec's feature description).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from kspec.compiler.loading import ModelFileError
from kspec.data.checks import row_phrase
from kspec.data.files import npz_array, open_npz, read_table
from kspec.errors import DataError, first_line
from kspec.exporter.errors import ExportError
from kspec.exporter.exportable import numpy_dtype
from kspec.exporter.layout import MODEL_FILES, versions
from kspec.exporter.metadata import read_metadata, read_spec_yaml

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
TFRECORD_SUFFIXES = {".tfrecord", ".tfrecords", ".tfr"}


@dataclass
class Predictor:
    """A loaded model as a function of named arrays.

    Attributes:
        path: what was loaded.
        kind: ``savedmodel``, ``tflite`` or ``keras``.
        inputs: ``{name: {"dtype": ..., "shape": [None, ...]}}``.
        run: ``run({name: array}) -> {output: array}``.
        spec: the resolved spec (plain dict) stored with the model, when there is one.
    """

    path: Path
    kind: str
    inputs: dict[str, dict[str, Any]]
    run: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    spec: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def _spec_dict(text: str | None, where: Path) -> dict[str, Any] | None:
    import yaml

    if not text:
        return None
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ModelFileError(f"{where}: the stored spec is not valid YAML "
                             f"({first_line(e)})") from e
    if not isinstance(spec, dict):
        raise ModelFileError(f"{where}: the stored spec is not a mapping")
    return spec


def _metadata(folder: Path) -> dict[str, Any]:
    """The export's ``kspec.json``, or what a run directory's ``meta.json`` knows (class
    names); a damaged file is named, not a traceback."""
    from kspec.exporter.metadata import ASSETS_DIR, METADATA_FILE
    from kspec.rundir import RunDir

    for file in (folder / ASSETS_DIR / METADATA_FILE, RunDir(folder).meta_file):
        if not file.is_file():
            continue
        try:
            meta = (read_metadata(folder) if file.name == METADATA_FILE
                    else json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise ModelFileError(f"{file}: cannot read the model's metadata "
                                 f"({type(e).__name__}: {first_line(e)})") from e
        if not isinstance(meta, dict):
            raise ModelFileError(f"{file}: expected a JSON object")
        return meta
    return {}


def load_predictor(path: str | Path) -> Predictor:
    """Load ``MODELS_DIR/NAME`` (latest version), a version folder, a ``.tflite`` or
    ``.keras`` file, or a run directory.

    Example:
        >>> p = load_predictor("models/quickstart")
        >>> sorted(p.run({"image": x}))
        ['output']
    """
    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    if path.is_dir() and not any((path / f).exists() for f in
                                 ("saved_model.pb", "model.tflite", "model.keras")):
        found = versions(path)
        if not found:
            raise ExportError(f"{path} holds no model: expected a SavedModel, model.tflite, "
                              "model.keras, or numbered version folders")
        path = path / str(found[-1])
    folder = path if path.is_dir() else path.parent
    meta = _metadata(folder)
    from kspec.rundir import RunDir

    spec_file = RunDir(folder).spec_file  # a run directory
    try:
        spec_text = read_spec_yaml(folder)
        if spec_text is None and spec_file.is_file():
            spec_text = spec_file.read_text(encoding="utf-8")
    except (OSError, ValueError) as e:  # UnicodeDecodeError is a ValueError
        raise ModelFileError(f"{folder}: cannot read the stored spec ({first_line(e)})") from e
    spec = _spec_dict(spec_text, folder)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return _savedmodel(path, spec, meta)
    if path.suffix == ".tflite" or (path / "model.tflite").is_file():
        return _tflite(path if path.suffix == ".tflite" else path / "model.tflite", spec, meta)
    file = path if path.suffix == ".keras" else path / MODEL_FILES["keras"]
    if not file.is_file():
        raise ExportError(f"cannot load {path}: not a SavedModel, .tflite or .keras model")
    return _keras(file, spec, meta)


def _savedmodel(path: Path, spec, meta) -> Predictor:
    import tensorflow as tf

    from kspec.compiler.loading import load_savedmodel
    from kspec.exporter.signature import SIGNATURE_KEY, describe_signature

    # The graph runs as it is, like TF Serving runs it: load only models you trust.
    loaded = load_savedmodel(path)
    if SIGNATURE_KEY not in loaded.signatures:
        raise ExportError(f"{path} has no {SIGNATURE_KEY!r} signature (has: "
                          f"{sorted(loaded.signatures)})")
    fn = loaded.signatures[SIGNATURE_KEY]
    sig = describe_signature(fn)

    def run(inputs):
        feed = {k: tf.constant(np.asarray(inputs[k]), dtype=fn.structured_input_signature[1][k]
                               .dtype) for k in sig["inputs"]}
        return {k: v.numpy() for k, v in fn(**feed).items()}

    run.loaded = loaded  # type: ignore[attr-defined]  # keeps the variables alive
    return Predictor(path, "savedmodel", sig["inputs"], run, spec, meta)


def _tflite(path: Path, spec, meta) -> Predictor:
    from kspec.exporter.tflite import runner

    try:
        run = runner(path)
    except (ValueError, RuntimeError, OSError) as e:  # not a flatbuffer, no signature, ...
        raise ModelFileError(f"{path}: not a loadable TFLite model ({type(e).__name__}: "
                             f"{first_line(e)})") from e
    inputs = {k: {"dtype": np.dtype(d["dtype"]).name,
                  "shape": [None, *(v if v >= 0 else None
                                    for v in d["shape_signature"][1:].tolist())]}
              for k, d in run.input_details.items()}
    return Predictor(path, "tflite", inputs, run, spec, meta)


def _keras(path: Path, spec, meta) -> Predictor:
    from kspec.compiler.loading import load_model
    from kspec.exporter.parity import keras_predict
    from kspec.exporter.signature import describe_inputs

    model = load_model(path, compile=False)
    return Predictor(path, "keras", describe_inputs(model),
                     lambda inputs: keras_predict(model, inputs), spec, meta)


# ----------------------------------------------------------------------------- input files


def read_inputs(files: Sequence[str | Path], predictor: Predictor) -> dict[str, np.ndarray]:
    """Named input arrays from CSV, NPZ or image files, shaped and typed for ``predictor``."""
    files = [Path(f) for f in files]
    for f in files:
        if not f.exists():
            raise DataError(f"{f}: file not found")
    images = [p for f in files for p in (sorted(f.iterdir()) if f.is_dir() else [f])
              if p.suffix.lower() in IMAGE_SUFFIXES]
    if images:
        return _images(images, predictor.inputs)
    records = [f for f in files if f.suffix.lower() in TFRECORD_SUFFIXES]
    if records:
        return _tfrecords(records, predictor)
    if len(files) != 1:
        raise DataError(f"give one CSV or NPZ file, or image files (received: "
                        f"{[str(f) for f in files]})")
    file = files[0]
    if file.suffix == ".npz":
        return _npz(file, predictor.inputs)
    if file.suffix in (".csv", ".tsv", ".txt"):
        return _csv(file, predictor)
    raise DataError(f"{file}: unsupported input file type {file.suffix!r} (expected .csv, "
                    f".npz, .tfrecord or images: {', '.join(sorted(IMAGE_SUFFIXES))})")


def _tfrecords(files: list[Path], predictor: Predictor) -> dict[str, np.ndarray]:
    """TFRecord files read with the features the model's ``tfrecord`` source describes."""
    from kspec.data.tfrecord import read_records
    from kspec.errors import SpecError

    source = ((predictor.spec or {}).get("data") or {}).get("source") or {}
    if source.get("type") != "tfrecord":
        raise DataError(f"{files[0]}: reading TFRecord files needs the feature description of "
                        "a model trained from a tfrecord source; this model's spec has "
                        f"{source.get('type') or 'no'} source (use .npz, .csv or images)")
    try:
        arrays = read_records([str(f) for f in files], source, list(predictor.inputs))
    except SpecError as e:
        raise DataError(f"{files[0]}: {e}") from e
    return {n: _shape_to(n, arrays[n], d, str(files[0])) for n, d in predictor.inputs.items()}


def _shape_to(name: str, array: np.ndarray, desc: dict[str, Any], where: str) -> np.ndarray:
    shape = [d for d in desc["shape"][1:]]
    try:
        if None not in shape and list(array.shape[1:]) != shape:
            array = array.reshape([len(array), *shape])
        return array.astype(numpy_dtype(desc["dtype"]))
    except (ValueError, TypeError) as e:
        raise DataError(f"{where}: input {name!r} expects rows of shape {shape} and dtype "
                        f"{desc['dtype']}; received shape {list(array.shape[1:])} "
                        f"(first row: {np.ravel(array[:1])[:6].tolist()})") from e


def _npz(file: Path, inputs: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    with open_npz(file) as z:
        arrays = {k: npz_array(z, k, file) for k in z.files}
    if len(inputs) == 1 and next(iter(inputs)) not in arrays:
        key = "x" if "x" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
        if key is None:
            raise DataError(f"{file}: no array named {next(iter(inputs))!r} or 'x' (arrays: "
                            f"{sorted(arrays)})")
        arrays = {next(iter(inputs)): arrays[key]}
    missing = [n for n in inputs if n not in arrays]
    if missing:
        raise DataError(f"{file}: no arrays for inputs {missing} (arrays: {sorted(arrays)})")
    return {n: _shape_to(n, arrays[n], d, str(file)) for n, d in inputs.items()}


def _categorical(predictor: Predictor) -> dict[str, tuple[str, str | None]]:
    """``{input_name: (column, missing_token)}`` of the spec's ``data.categorical``."""
    data = (predictor.spec or {}).get("data") or {}
    out = {}
    for col, setting in (data.get("categorical") or {}).items():
        setting = setting if isinstance(setting, dict) else {}  # the short form: `col: one_hot`
        out[setting.get("input") or col] = (col, setting.get("missing"))
    return out


def _csv_columns(predictor: Predictor, columns: list[str]) -> dict[str, list[str]]:
    """Which columns feed which input: from the spec's CSV source when known."""
    source = ((predictor.spec or {}).get("data") or {}).get("source") or {}
    text = {name: [col] for name, (col, _) in _categorical(predictor).items()}
    if source.get("inputs"):
        return {**dict(source["inputs"]), **text}
    labels = source.get("label")
    labels = set([labels] if isinstance(labels, str) else (labels or []))
    labels |= {cols[0] for cols in text.values()}
    feats = source.get("features") or [c for c in columns if c not in labels]
    numeric = [n for n in predictor.inputs if n not in text]
    if len(numeric) != 1:
        raise DataError(f"a CSV feeds one input, but the model has {sorted(predictor.inputs)}; "
                        "use an NPZ file with one array per input")
    return {numeric[0]: feats, **text}


def _csv(file: Path, predictor: Predictor) -> dict[str, np.ndarray]:
    import pandas as pd

    text = _categorical(predictor)
    # Categorical columns stay text as written (a zip code '02139' is not the number 2139).
    source = ((predictor.spec or {}).get("data") or {}).get("source") or {}
    frame = read_table(file, sep="\t" if file.suffix == ".tsv" else ",",
                       dtype={col: str for col, _ in text.values()},
                       encoding=source.get("encoding") or "utf-8")
    for col, missing in text.values():
        if col in frame.columns and frame[col].isna().any():
            if missing is None:
                row = int(np.argmax(frame[col].isna().to_numpy()))
                raise DataError(f"{file}: categorical column {col!r} is empty in "
                                f"{row_phrase(row, 2)} and the model names no category for "
                                "empty cells")
            frame[col] = frame[col].fillna(missing)
    out = {}
    for name, cols in _csv_columns(predictor, list(frame.columns)).items():
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"{file}: columns {missing} for input {name!r} are missing "
                            f"(columns: {list(frame.columns)})")
        for c in cols:
            bad = pd.to_numeric(frame[c], errors="coerce").isna() & frame[c].notna()
            if bad.any() and predictor.inputs[name]["dtype"] != "string":
                row = int(np.argmax(bad.to_numpy()))
                raise DataError(f"{file}: column {c!r} is not numeric; {row_phrase(row, 2)} "
                                f"has {frame[c].iloc[row]!r}")
        out[name] = _shape_to(name, frame[cols].to_numpy(), predictor.inputs[name], str(file))
    return out


def _images(files: list[Path], inputs: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    from PIL import Image

    if len(inputs) != 1 or len(next(iter(inputs.values()))["shape"]) != 4:
        raise DataError(f"image files need a model with one image input (height, width, "
                        f"channels); this one takes {inputs}")
    (name, desc), = inputs.items()
    height, width, channels = desc["shape"][1:]
    rows = []
    for f in files:
        try:
            with Image.open(f) as img:
                img = img.convert("L" if channels == 1 else "RGB")
                if height and width and img.size != (width, height):
                    img = img.resize((width, height), Image.BILINEAR)
                a = np.asarray(img, dtype=np.float32)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise DataError(f"{f}: not a readable image ({type(e).__name__}: "
                            f"{first_line(e)})") from e
        rows.append(a[..., None] if a.ndim == 2 else a)
    return {name: np.stack(rows).astype(desc["dtype"])}


# ----------------------------------------------------------------------------- output


def predictions(predictor: Predictor, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run ``predictor`` and add, for every classifier output, ``NAME_class`` (the arg-max
    class, or ``p > 0.5`` for one sigmoid unit) and ``NAME_label`` (its name, when the run
    or export knows the class names).

    Example:
        >>> out = predictions(load_predictor("runs/iris-20260101-120000"), {"features": x})
        >>> sorted(out)  # doctest: +SKIP
        ['output', 'output_class', 'output_label']
    """
    outputs = add_classes(predictor.run(inputs), predictor.spec)
    return add_labels(outputs, predictor.metadata.get("class_names"))


def _class_rule(loss: Any) -> str | None:
    """How a loss reads classes off its output: ``argmax``, ``threshold`` (a probability),
    ``logit`` (a binary logit), or None (not a classification loss, or unknown here)."""
    from kspec.errors import SpecError
    from kspec.registry import LOSSES, load_builtins

    params = loss if isinstance(loss, dict) else {}
    name = params.get("type") if isinstance(loss, dict) else loss
    if not isinstance(name, str):
        return None
    load_builtins()
    try:
        entry = LOSSES.get(name)
    except SpecError:  # a user's loss whose module is not imported here
        return None
    if entry.name == "label_columns":  # labels packed with groups: the wrapped loss decides
        return _class_rule(params.get("loss", "binary_crossentropy"))
    if "multiclass" in entry.tags:
        return "argmax"
    if {"binary", "probability"} <= entry.tags:
        return "logit" if params.get("from_logits") else "threshold"
    return None


def add_classes(outputs: dict[str, np.ndarray], spec: dict[str, Any] | None
                ) -> dict[str, np.ndarray]:
    """Add ``NAME_class`` to each output the spec's loss makes a classifier (cross-entropy,
    focal or categorical hinge losses), unless the model already serves one."""
    from kspec.exporter.signature import CLASS_SUFFIX, PROBABILITY_SUFFIX

    training = (spec or {}).get("training") or {}
    loss = training.get("loss")
    per_output = isinstance(loss, dict) and "type" not in loss
    out = dict(outputs)
    for name, values in outputs.items():
        if name.endswith((CLASS_SUFFIX, PROBABILITY_SUFFIX, "_label")) \
                or name + CLASS_SUFFIX in outputs:
            continue
        rule = _class_rule(loss.get(name) if per_output else loss)
        values = np.asarray(values)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.number):
            continue
        if rule == "argmax" and values.shape[1] > 1:
            out[name + CLASS_SUFFIX] = values.argmax(axis=-1).astype(np.int64)
        elif rule in ("threshold", "logit") and values.shape[1] == 1:
            cut = 0.5 if rule == "threshold" else 0.0
            out[name + CLASS_SUFFIX] = (values[:, 0] > cut).astype(np.int64)
    return out


def add_labels(outputs: dict[str, np.ndarray], class_names: Any) -> dict[str, np.ndarray]:
    """Add ``NAME_label`` (the class name) next to each ``NAME_class`` output, when the
    export's metadata knows the class names (one list, or one list per output)."""
    from kspec.exporter.signature import CLASS_SUFFIX

    out = dict(outputs)
    classes = [k for k in outputs if k.endswith(CLASS_SUFFIX)]
    for key in classes:
        base = key[: -len(CLASS_SUFFIX)]
        names = class_names.get(base) if isinstance(class_names, dict) else (
            class_names if len(classes) == 1 else None)
        if not isinstance(names, list):
            continue
        index = outputs[key].astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(names)):
            continue  # names that do not fit the classes: better none than wrong ones
        out[base + "_label"] = np.asarray([str(n) for n in names])[index]
    return out


def write_predictions(outputs: dict[str, np.ndarray], path: str | Path) -> None:
    """Write predictions as ``.npz``, ``.json`` or ``.csv`` (one column per value)."""
    path = Path(path)
    if path.suffix not in (".npz", ".json", ".csv"):
        raise DataError(f"{path}: unsupported output type {path.suffix!r} (expected .csv, "
                        ".npz or .json)")
    try:
        if path.suffix == ".npz":
            np.savez(path, **outputs)
        elif path.suffix == ".json":
            path.write_text(json.dumps({k: v.tolist() for k, v in outputs.items()}, indent=1))
        else:
            import pandas as pd

            pd.DataFrame(_columns(outputs)).to_csv(path, index_label="row")
    except OSError as e:  # a full or read-only disk, a missing folder
        raise DataError(f"{path}: cannot write the predictions ({e.strerror or e})") from e


def _columns(outputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    cols = {}
    for name, values in outputs.items():
        flat = values.reshape(len(values), -1)
        if flat.shape[1] == 1:
            cols[name] = flat[:, 0]
        else:
            cols.update({f"{name}[{i}]": flat[:, i] for i in range(flat.shape[1])})
    return cols


def format_predictions(outputs: dict[str, np.ndarray], limit: int = 20) -> str:
    """A small table: one line per example, one column per (scalar) output value; the
    ``_class`` and ``_probability`` outputs come first, as they are what one looks for."""
    from kspec.exporter.signature import CLASS_SUFFIX, PROBABILITY_SUFFIX

    def rank(name: str) -> int:
        if name.endswith("_label"):
            return 0
        return 1 if name.endswith(CLASS_SUFFIX) else 2 if name.endswith(PROBABILITY_SUFFIX) else 3

    cols = _columns({k: outputs[k] for k in sorted(outputs, key=lambda n: (rank(n), n))})
    if not cols:
        return "(no outputs)"
    names = list(cols)[:12]
    widths = [max(10, len(n)) for n in names]
    rows = len(next(iter(cols.values())))
    lines = ["row   " + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    for r in range(min(rows, limit)):
        cells = []
        for n, w in zip(names, widths):
            v = cols[n][r]
            if isinstance(v, str):
                cells.append(f"{v:>{w}}")
            elif np.issubdtype(type(v), np.integer):
                cells.append(f"{v:>{w}d}")
            else:
                cells.append(f"{v:>{w}.5g}")
        lines.append(f"{r:<5} " + "  ".join(cells))
    if len(cols) > len(names):
        lines.append(f"({len(cols) - len(names)} more columns: write them all with --output)")
    if rows > limit:
        lines.append(f"... {rows - limit} more rows (write them all with --output FILE)")
    return "\n".join(lines)
