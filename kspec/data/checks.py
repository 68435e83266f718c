"""Bad data is refused before training, with the source, the feature and an example row.

Checks: empty splits, rows that disagree in number, NaN/inf in features or labels, feature
shapes that differ from the model's inputs, and labels outside the number of classes (read
off the model's output units when the loss says they are class indices).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kspec.data.split import Data, Split
from kspec.errors import DataError


def _column(meta: dict, key: str, index: tuple[int, ...]) -> str:
    """``column 'petal_width'`` for tables with known names, else the element index."""
    names = meta.get("feature_names")
    if isinstance(names, dict):
        names = names.get(key)
    if isinstance(names, list) and len(index) == 2 and index[1] < len(names):
        return f"column {names[index[1]]!r}"
    return f"element {tuple(index[1:])}" if len(index) > 1 else "the value"


def check_lengths(split: Split, where: str) -> None:
    n = len(split)
    arrays = dict(split.x)
    if isinstance(split.y, dict):
        arrays.update({f"y[{k}]": v for k, v in split.y.items()})
    elif split.y is not None:
        arrays["y"] = split.y
    if split.sample_weight is not None:
        arrays["sample_weight"] = split.sample_weight
    if split.groups is not None:
        arrays["groups"] = split.groups
    for k, v in arrays.items():
        if len(v) != n:
            raise DataError(f"{where}: {k} has {len(v)} rows but the features have {n}")


def row_phrase(i: int, line_offset: int | None = None) -> str:
    """How every message names a row: ``row 2 (line 4 of the file)``.

    Rows count from 0 in the source as given (before splitting), like array indices and
    pandas positions; files with a header also get the line an editor shows (``line_offset``
    is 2 for a CSV: line 1 is the header, row 0 is line 2).

    Example:
        >>> row_phrase(2, 2)
        'row 2 (line 4 of the file)'
        >>> row_phrase(17)
        'row 17'
    """
    return f"row {i}" + (f" (line {i + line_offset} of the file)" if line_offset else "")


def _row(meta: dict, i: int) -> str:
    """Row ``i`` of the source; for files with a header also the line number. Streamed
    sources name their rows themselves (``meta["row_names"]``: ``record 17 of a.tfrecord``)."""
    names = meta.get("row_names")
    if names is not None and i < len(names):
        return names[i]
    return row_phrase(i, meta.get("row_offset"))


def first_non_number(arr: np.ndarray, limit: int = 100_000) -> tuple[int, Any]:
    """``(row, value)`` of the first element of ``arr`` that is not a number (looking at
    ``limit`` elements at most); ``(0, first value)`` when every one looked at is a number
    written as text."""
    flat = arr.reshape(len(arr), -1)
    seen = 0
    for i, row in enumerate(flat):
        for value in row:
            try:
                float(value)
            except (TypeError, ValueError):
                return i, value
            seen += 1
            if seen >= limit:
                break
        else:
            continue
        break
    return 0, flat[0, 0] if flat.size else None


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_numeric(arr: np.ndarray, what: str, where: str, meta: dict | None = None) -> None:
    """Refuse text, objects, dates or records where a model needs numbers.

    Raises:
        DataError: naming ``what`` (the feature, array or column), a row and its value.
    """
    kind = arr.dtype.kind
    if kind in "biufc":
        return
    if kind in "USO":
        i, value = first_non_number(arr) if len(arr) else (0, None)
        try:
            float(value)
            numbers = True
        except (TypeError, ValueError):
            numbers = False
        holds = "Python objects" if kind == "O" else "text"
        stored = "stored as Python objects" if kind == "O" else "written as text"
        fix = (f"numbers {stored}: convert them with .astype('float32')" if numbers
               else "the model needs numbers")
        raise DataError(f"{where}: {what} holds {holds} (dtype {arr.dtype}), not numbers; "
                        f"{_row(meta or {}, i)} is {_show(value)} ({fix})")
    raise DataError(f"{where}: {what} has dtype {arr.dtype}, not numbers (the model needs "
                    "integers, floats or booleans)")


def _finite(arr: np.ndarray, what: str, where: str, meta: dict, key: str) -> None:
    if arr.dtype.kind not in "fc" or np.isfinite(arr).all():
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    count = int((~np.isfinite(arr)).sum())
    raise DataError(f"{where}: {what} has {count} non-finite value(s); {_row(meta, bad[0])}, "
                    f"{_column(meta, key, bad)} is {arr[bad].item()!r}")


def _where(source: str, name: str) -> str:
    return source if name == "all" else f"{source} ({name} split)"


def check_splits(splits: dict[str, Split], source: str, meta: dict) -> None:
    """Empty splits, ragged rows, NaN/inf; row numbers count within each split as given."""
    for name, split in splits.items():
        where = _where(source, name)
        if len(split) == 0:
            raise DataError(f"{where}: the split is empty")
        check_lengths(split, where)
        for key, arr in split.x.items():
            _finite(arr, f"feature {key!r}", where, meta, key)
        labels = split.y if isinstance(split.y, dict) else {"": split.y}
        for key, arr in labels.items():
            if arr is not None and arr.dtype != object:
                _finite(arr, f"label {key!r}" if key else "the label", where, meta, key)


def check_data(data: Data) -> None:
    """Refuse data that would fail (or silently mislead) training: empty or non-finite."""
    check_splits(data.splits(), data.source, data.meta)


def _feature(spec: Any, key: str) -> str:
    """How messages name the data of model input ``key``: the NPZ array it comes from."""
    src = getattr(getattr(spec, "data", None), "source", None)
    if getattr(src, "type", None) == "npz":
        array = (src.inputs or {}).get(key) if src.inputs else src.x
        if array is not None:
            return f"array {array!r}" + (f" (input {key!r})" if array != key else "")
    return f"feature {key!r}"


def check_inputs(spec: Any, splits: dict[str, Split], source: str) -> None:
    """Every model input has data of the declared shape and type; no data goes unused."""
    declared = {i.name: i.shape for i in spec.model.inputs}
    text_inputs = {i.name for i in spec.model.inputs if i.dtype == "string"}
    # Categorical columns are string inputs the data section adds: one text per row.
    data_spec = getattr(spec, "data", None)
    if data_spec is not None and hasattr(data_spec, "categorical_inputs"):
        declared.update({name: [1] for name in data_spec.categorical_inputs()})
        text_inputs.update(data_spec.categorical_inputs())
    for name, split in splits.items():
        where = _where(source, name)
        extra = [k for k in split.x if k not in declared]
        missing = [k for k in declared if k not in split.x]
        if missing or extra:
            raise DataError(f"{where}: the data has features {sorted(split.x)} but the model "
                            f"has inputs {sorted(declared)}"
                            + (f"; no data for {missing}" if missing else "")
                            + (f"; no input for {extra}" if extra else ""))
        for key, arr in split.x.items():
            if key not in text_inputs:
                check_numeric(np.asarray(arr), _feature(spec, key), where)
            shape = declared[key]
            got = tuple(arr.shape[1:])
            if shape is None:
                continue
            if len(got) != len(shape) or any(s is not None and s != g
                                             for s, g in zip(shape, got)):
                hint = ""
                if len(got) == len(shape) == 3 and got[:2] == tuple(shape[:2]):
                    hint = (" (an image folder reads channels by color_mode: grayscale gives 1, "
                            "rgb gives 3)")
                raise DataError(f"{where}: feature {key!r} has shape {list(got)} per row (row 0 "
                                f"of {len(arr)}), but model input {key!r} expects "
                                f"{list(shape)}{hint}")


def _judging_loss(ref: Any) -> Any:
    """The registry entry of the loss that judges the labels (None when unknown); the
    ``label_columns`` wrapper (tag ``packed_groups``) names the one inside.

    What the labels must look like is read off the loss's registry tags: ``sparse`` (class
    indices), ``binary`` (labels in [0, 1], or -1/0/1 with ``signed_labels``).
    """
    from kspec.errors import SpecError
    from kspec.registry import LOSSES, load_builtins

    load_builtins()
    try:
        entry, params = LOSSES.split_ref(ref, "")
    except SpecError:
        return None
    if "packed_groups" in entry.tags:
        return _judging_loss(params.get("loss", "binary_crossentropy"))
    return entry


def _prepacked(spec: Any) -> bool:
    """Targets from ``pack_groups`` passed to ``kspec.fit``: their last column is the group.

    With ``data.groups`` the labels are checked before kspec packs them, so nothing is cut.
    """
    from kspec.registry import LOSSES, load_builtins

    load_builtins()
    loss = getattr(getattr(spec, "training", None), "loss", None)
    kind = loss.get("type") if isinstance(loss, dict) else loss
    return (kind in LOSSES and "packed_groups" in LOSSES.get(kind).tags
            and getattr(spec.data, "groups", None) is None)


def _outputs(spec: Any) -> list[tuple[str, Any, int | None]]:
    """``(output_name, loss registry entry, units_of_its_last_layer)`` for every output."""
    model = spec.model
    loss = getattr(getattr(spec, "training", None), "loss", None)
    per_output = isinstance(loss, dict) and "type" not in loss
    out = []
    for name in model.output_names():
        located = model.output_stack(name)
        units = getattr(located[1][-1], "units", None) if located else None
        out.append((name, _judging_loss(loss.get(name) if per_output else loss), units))
    return out


def _check_one(y: np.ndarray, entry: Any, classes: int | None, origin: str, where: str,
               what: str, meta: dict) -> None:
    tags = entry.tags if entry is not None else frozenset()
    loss = entry.name if entry is not None else None
    if y.dtype.kind in "US":
        i, value = first_non_number(y)
        raise DataError(f"{where}: {what} holds text (dtype {y.dtype}); {_row(meta, i)} is "
                        f"{_show(value)}: give class indices 0..K-1 (np.unique(y, "
                        "return_inverse=True)[1]) or numbers, or use a CSV source, whose text "
                        "labels kspec encodes")
    binary = classes is None and "binary" in tags
    if (classes is None and not binary) or y.dtype == object:
        return
    if classes is not None and "sparse" not in tags and y.ndim == 2 and y.shape[1] > 1:
        if y.shape[1] != classes:
            raise DataError(f"{where}: {what} has {y.shape[1]} one-hot columns (row 0) but "
                            f"{origin} say {classes} classes")
        return
    flat = y.reshape(len(y), -1)[:, 0]
    if binary:
        outside = (~np.isin(flat, (-1, 0, 1)) if "signed_labels" in tags
                   else (flat < 0) | (flat > 1))
        bad = np.flatnonzero(outside)
        if len(bad):
            raise DataError(f"{where}: {what} of {_row(meta, bad[0])} is "
                            f"{flat[bad[0]].item()!r}; the loss {loss!r} expects labels in "
                            f"[0, 1] ({len(bad)} rows outside)")
        return
    bad = np.flatnonzero((flat < 0) | (flat >= classes) | (flat != np.round(flat)))
    if len(bad):
        raise DataError(f"{where}: {what} of {_row(meta, bad[0])} is {flat[bad[0]].item()!r}, "
                        f"outside the {classes} classes (0..{classes - 1}) of {origin} "
                        f"({len(bad)} rows outside)")


def _label_array(spec: Any, output: str, n_outputs: int) -> str:
    """`` (array 'y')`` when the labels come from an NPZ archive, so messages name it."""
    src = getattr(getattr(spec, "data", None), "source", None)
    if getattr(src, "type", None) != "npz" or src.y is None:
        return ""
    key = src.y if isinstance(src.y, str) else src.y.get(output)
    return f" (array {key!r})" if key is not None and (n_outputs == 1 or
                                                       not isinstance(src.y, str)) else ""


def check_labels(spec: Any, splits: dict[str, Split], source: str, meta: dict) -> None:
    """Class labels must lie in [0, classes): declared, or the output units of the model.

    ``data.classes`` applies to a single output; otherwise each output with a sparse
    cross-entropy loss is checked against its last layer's units, and each with a binary
    loss against [0, 1].
    """
    if getattr(getattr(spec, "training", None), "targets", None):
        # Labels are raw material for derived targets (training.targets); the loss applies
        # to those and kspec.train.targets checks them.
        return
    outputs = _outputs(spec)
    declared = getattr(spec.data, "classes", None)
    prepacked = _prepacked(spec)
    for name, split in splits.items():
        where = _where(source, name)
        ys = split.y if isinstance(split.y, dict) else (
            {outputs[0][0]: split.y} if split.y is not None and len(outputs) == 1 else {})
        for out_name, loss, units in outputs:
            y = ys.get(out_name)
            if not isinstance(y, np.ndarray):
                continue
            if prepacked and y.ndim == 2 and y.shape[1] > 1:
                y = y[:, :-1]  # the label column(s) only, not the group
            what = "the label" if len(outputs) == 1 else f"the label of output {out_name!r}"
            what += _label_array(spec, out_name, len(outputs))
            names = meta.get("class_names")
            if declared is not None and len(outputs) == 1:
                _check_one(y, loss, declared, "data.classes", where, what, meta)
            elif loss is not None and "sparse" in loss.tags and units is not None:
                _check_one(y, loss, units, "the model's output units", where, what, meta)
            elif (loss is not None and "sparse" in loss.tags and isinstance(names, list)
                  and len(outputs) == 1):
                # The model cannot tell (e.g. a custom head); the source declares classes.
                _check_one(y, loss, len(names), "the source's class names", where, what, meta)
            else:
                _check_one(y, loss, None, "", where, what, meta)
