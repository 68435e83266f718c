"""TensorFlow Datasets by name, read from a local ``data_dir`` (downloads only when asked).

``tfds.load`` of a dataset that is not on disk tries to download it (and hangs offline), so
kspec passes ``download=False`` unless the spec says ``download: true``, and turns "not
prepared" into a SpecError that points at ``data_dir``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kspec.data.split import Split
from kspec.data.tables import label_columns
from kspec.errors import DataError, SpecError, suggest


def tfds_compat() -> None:
    """Let TFDS prepare datasets on Python >= 3.9 without the ``importlib_resources`` backport.

    TFDS 4.9 imports ``importlib_resources`` while preparing a dataset but declares it only
    for Python < 3.9 (tensorflow/datasets#11212); the standard library's
    ``importlib.resources`` has the API it uses (``abc.Traversable``).
    """
    import importlib.util
    import sys

    if "importlib_resources" in sys.modules or importlib.util.find_spec("importlib_resources"):
        return
    import importlib.resources
    import importlib.resources.abc

    sys.modules["importlib_resources"] = importlib.resources


def _to_arrays(ds) -> dict[str, np.ndarray]:
    import tensorflow as tf

    # Whole-split batching (batch_size=-1) crashes under tfds.testing.mock_data, and
    # batching here is as fast: a few large batches, no per-example Python.
    parts: dict[str, list[np.ndarray]] = {}
    for batch in ds.batch(4096).prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
        for k, v in batch.items():
            parts.setdefault(k, []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def _load(src: Any, splits: dict[str, str], where: str):
    import tensorflow_datasets as tfds

    tfds_compat()
    data_dir = os.path.expanduser(src.data_dir) if src.data_dir else None
    kwargs = dict(split=list(splits.values()), data_dir=data_dir, download=src.download,
                  shuffle_files=False, with_info=True)
    try:
        return tfds.load(src.name, **kwargs)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise SpecError(f"{where}.name", f"unknown TFDS dataset {src.name!r} ({e})".split("\n")[0],
                        valid="a name from tfds.list_builders()") from e
    except AssertionError as e:  # tfds: "could not find data in ..." (not prepared)
        raise SpecError(f"{where}.data_dir", f"TFDS dataset {src.name!r} is not prepared in "
                        f"{src.data_dir or '~/tensorflow_datasets'} and download is false",
                        valid="a data_dir holding the prepared dataset, or download: true"
                        ) from e
    except ValueError as e:  # bad split strings
        key = f"{where}.split"
        raise SpecError(key, f"bad TFDS split: {e}".split("\n")[0], value=src.split) from e


def feature_mapping(src: Any, features: Any, input_names: list[str],
                    where: str) -> tuple[dict[str, str], dict[Any, str]]:
    """``({input_name: feature_key}, {output_or_None: label_key})`` of a TFDS split whose
    ``element_spec`` is ``features``, checked against its keys."""
    if not isinstance(features, dict):
        raise SpecError(where, f"{src.name} yields {type(features).__name__}, not a "
                        "feature dict")
    keys = list(features)
    labels = label_columns(src.label)
    if src.inputs:
        mapping = dict(src.inputs)
        for iname in mapping:
            if iname not in input_names:
                raise SpecError(f"{where}.inputs.{iname}", f"the model has no input "
                                f"{iname!r}", valid=input_names)
    elif len(input_names) == 1:
        others = [k for k in keys if k not in labels.values()]
        default = "image" if "image" in keys else (others[0] if len(others) == 1 else None)
        if default is None:
            raise SpecError(f"{where}.inputs", f"{src.name} has features {keys}; map one "
                            f"to the input: inputs: {{{input_names[0]}: KEY}}", valid=keys)
        mapping = {input_names[0]: default}
    else:
        raise SpecError(f"{where}.inputs", f"the model has inputs {input_names}; map "
                        "feature keys to each: inputs: {NAME: KEY}", valid=keys)
    for iname, key in mapping.items():
        if key not in keys:
            raise SpecError(f"{where}.inputs.{iname}", f"{src.name} has no feature {key!r}",
                            valid=keys, hint=suggest(key, keys))
    for output, key in labels.items():
        if key not in keys:
            path = f"{where}.label" + (f".{output}" if output else "")
            raise SpecError(path, f"{src.name} has no feature {key!r}", valid=keys,
                            hint=suggest(key, keys))
    return mapping, labels


def read_tfds(src: Any, input_names: list[str], where: str, groups: Any = None,
              categorical: Any = None):
    """``{split: Split}``: feature keys mapped onto the model's named inputs (with
    ``stream: true``, streamed splits: :mod:`kspec.data.stream_tfds`)."""
    splits = {"all": src.split} if isinstance(src.split, str) else dict(src.split)
    datasets, info = _load(src, splits, where)
    if src.stream:
        from kspec.data.stream_tfds import tfds_streams

        return tfds_streams(src, splits, datasets, info, input_names, where)
    meta: dict[str, Any] = {}
    out = {}
    for name, ds in zip(splits, datasets):
        mapping, labels = feature_mapping(src, ds.element_spec, input_names, where)
        wanted = set(mapping.values()) | set(labels.values())
        arrays = _to_arrays(ds.map(lambda d: {k: d[k] for k in wanted}))
        if not arrays:
            raise DataError(f"tfds:{src.name}: split {splits[name]!r} is empty")
        ys = {k: arrays[v] for k, v in labels.items()}
        if isinstance(src.label, str):
            names = getattr(info.features[src.label], "names", None)
            if names:
                meta["class_names"] = list(names)
        out[name] = Split({i: arrays[k] for i, k in mapping.items()},
                          ys.get(None) if None in ys else (ys or None))
    return out, f"tfds:{src.name}", meta
