"""TFRecord sources: files of ``tf.train.Example`` records, streamed, described in the spec.

::

    source:
      type: tfrecord
      path: data/train-*.tfrecord          # a file or glob, or one per split
      features:
        image: {encoding: png, shape: [28, 28, 1]}
        label: {dtype: int64}
      label: label

Before training, one pass reads every record (bytes and numbers, not the image pixels):
it counts the records of each file and parses them against ``features``, so a record that
lacks a key, holds another dtype or another number of values is refused with its file,
its index and the feature, and every label and group id is checked as in-memory data is.
The first record of each file also has its images decoded.

Training reads the files in a new seeded order every epoch, interleaves eight of them,
mixes records through a bounded shuffle buffer, parses a batch of records at once and
builds batches in parallel.

Example:
    >>> from kspec.spec.sources import TfrecordSource  # doctest: +SKIP
    >>> parts, label, meta = read_tfrecord(src, ["image"], "data.source")  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from kspec.data.split import Split
from kspec.data.stream import (
    RowNames,
    StreamSplit,
    text_key,
    unit_hash,
    unit_hash_tf,
)
from kspec.data.tables import label_columns
from kspec.errors import DataError, SpecError, first_line, suggest

SCAN_BATCH = 1024
# How each dtype of the spec is stored in a tf.train.Feature.
KINDS = {"float32": "float_list", "int64": "int64_list", "string": "bytes_list"}
_DTYPES = {v: k for k, v in KINDS.items()}
_COMPRESSION = {"none": "", "gzip": "GZIP", "zlib": "ZLIB"}


@dataclass
class Plan:
    """What to read from every record: each key's description, and which keys feed the
    model's inputs, its labels and the group ids."""

    features: dict[str, Any]
    inputs: dict[str, str]
    labels: dict[str | None, str]
    group: str | None
    groups: Any
    compression: str
    shuffle_buffer: int
    where: str

    def input_specs(self) -> dict[str, tuple[tuple, str]]:
        out = {}
        for name, key in self.inputs.items():
            d = self.features[key]
            out[name] = (tuple(d.shape), "uint8" if d.encoding else d.stored())
        return out


def _described(src: Any, key: str) -> Any:
    """The description of ``key``: as the spec gives it, or an int64 scalar (a label or
    group key the spec does not describe)."""
    from kspec.spec.sources import TfrecordFeature

    return src.features.get(key) or TfrecordFeature(dtype="int64")


def plan_for(src: Any, input_names: list[str], where: str, groups: Any = None) -> Plan:
    """The :class:`Plan` of a ``tfrecord`` source for a model with ``input_names``."""
    keys = list(src.features)
    labels = label_columns(src.label)
    group = groups.column if groups is not None else None
    if src.inputs:
        mapping = dict(src.inputs)
        for name, key in mapping.items():
            if name not in input_names:
                raise SpecError(f"{where}.inputs.{name}", f"the model has no input {name!r}",
                                valid=input_names)
            if key not in src.features:
                raise SpecError(f"{where}.inputs.{name}", f"features does not describe "
                                f"{key!r}", valid=keys, hint=suggest(key, keys))
        missing = [n for n in input_names if n not in mapping]
        if missing:
            raise SpecError(f"{where}.inputs", f"no feature for model inputs {missing}",
                            valid=input_names)
    else:
        mapping = {}
        others = [k for k in keys if k not in labels.values() and k != group]
        for name in input_names:
            if name in src.features:
                mapping[name] = name
            elif len(input_names) == 1 and len(others) == 1:
                mapping[name] = others[0]
            else:
                raise SpecError(f"{where}.inputs", f"which feature feeds model input {name!r}? "
                                "map them: inputs: {INPUT: KEY}", valid=keys)
    for name, key in mapping.items():
        if src.features[key].stored() == "string" and not src.features[key].encoding:
            raise SpecError(f"{where}.features.{key}", "bytes feed the model only as an "
                            "encoded image", value="string", valid="encoding: png | jpeg | "
                            "image, or a float32 / int64 dtype")
    features = {k: _described(src, k) for k in {*mapping.values(), *labels.values()}}
    if group is not None:
        features[group] = _described(src, group)
    return Plan(features, mapping, labels, group, groups, _COMPRESSION[src.compression],
                src.shuffle_buffer, where)


def resolve_files(pattern: str, where: str) -> list[str]:
    """The files a path or glob pattern names, sorted; none is a SpecError at ``where``."""
    path = os.path.expanduser(pattern)
    files = sorted(f for f in glob.glob(path) if os.path.isfile(f))
    if not files:
        if os.path.isdir(path):
            raise SpecError(where, f"{pattern} is a folder; name its files with a pattern",
                            value=pattern, valid=os.path.join(pattern, "*.tfrecord"))
        raise SpecError(where, f"no files match {pattern}")
    return files


# -- checking records ---------------------------------------------------------------------------
def check_record(raw: bytes, plan: Plan, file: str, index: int, decode: bool = False) -> None:
    """Refuse a record that does not match the plan, naming the file, record and feature.

    Raises:
        DataError: not a ``tf.train.Example``; a key missing; another dtype; another number
            of values; with ``decode``, an encoded image that does not decode.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    where = f"{file}: record {index}"
    try:
        example = tf.train.Example.FromString(raw)
    except DecodeError as e:
        raise DataError(f"{where} is not a tf.train.Example ({first_line(e)})") from e
    found = example.features.feature
    for key, desc in plan.features.items():
        spec_path = f"{plan.where}.features.{key}"
        if key not in found:
            hint = suggest(key, list(found))
            raise DataError(f"{where} has no feature {key!r} (named in {spec_path}); it has "
                            f"{sorted(found)}" + (f"; did you mean {hint!r}?" if hint else ""))
        kind = found[key].WhichOneof("kind")
        want = KINDS[desc.stored()]
        if kind is not None and kind != want:
            said = "an encoded image (bytes)" if desc.encoding else desc.stored()
            raise DataError(f"{where}: feature {key!r} holds {_DTYPES[kind]} values "
                            f"({kind}), but {spec_path} says {said}")
        count = len(getattr(found[key], kind).value) if kind else 0
        need = 1 if desc.encoding else int(np.prod(desc.shape))
        if count != need:
            shape = "one encoded image" if desc.encoding else f"shape {list(desc.shape)}"
            raise DataError(f"{where}: feature {key!r} has {count} values, but {spec_path} "
                            f"says {shape} ({need} value{'s' if need != 1 else ''})")
        if decode and desc.encoding:
            try:
                tf.io.decode_image(found[key].bytes_list.value[0], expand_animations=False)
            except tf.errors.OpError as e:
                raise DataError(f"{where}: feature {key!r} is not a decodable image "
                                f"({first_line(e.message)})") from e


def _tf_feature(desc: Any) -> Any:
    import tensorflow as tf

    if desc.encoding:
        return tf.io.FixedLenFeature([], tf.string)
    return tf.io.FixedLenFeature(list(desc.shape), getattr(tf, desc.stored()))


def _block(plan: Plan, values: dict[str, np.ndarray], names: Any, file: str) -> Split:
    """The numbers of parsed records as a Split for the checks (images left out)."""
    x = {n: values[k] for n, k in plan.inputs.items() if not plan.features[k].encoding}
    ys = {o: values[k] for o, k in plan.labels.items()}
    y = ys.get(None) if None in ys else (ys or None)
    groups = None
    if plan.group is not None:
        from kspec.data.groups import group_ids

        groups = group_ids(values[plan.group], plan.groups, file, f"feature {plan.group!r}",
                           {"row_names": names})
    return Split(x, y, None, groups)


def scan(files: list[str], plan: Plan, check: Any) -> tuple[list[int], dict[str, bool]]:
    """Every record of every file read and parsed against the plan (see the module's
    docstring). Returns the number of records of each file, and for each encoded image
    feature whether every image's header gives the size of its ``shape`` (then the
    pipeline decodes without a size check and resize per image)."""
    import tensorflow as tf

    from kspec.data.image_headers import image_size

    description = {k: _tf_feature(d) for k, d in plan.features.items()}
    sized = {k: True for k, d in plan.features.items() if d.encoding}
    counts = []
    for file in files:
        n = 0
        batches = iter(tf.data.TFRecordDataset(file, compression_type=plan.compression)
                       .batch(SCAN_BATCH).prefetch(2))
        while True:
            try:
                raws = next(batches)
            except StopIteration:
                break
            except tf.errors.OpError as e:  # DataLossError: a bad checksum, a cut file
                raise DataError(f"{file}: corrupt or truncated TFRecord file: cannot read "
                                f"past record {n} ({first_line(e.message)})") from e
            if n == 0:
                check_record(raws[0].numpy(), plan, file, 0, decode=True)
            try:
                parsed = tf.io.parse_example(raws, description)
            except tf.errors.InvalidArgumentError as e:
                for j, raw in enumerate(raws.numpy()):
                    check_record(raw, plan, file, n + j)
                raise DataError(f"{file}: records {n}-{n + len(raws) - 1} do not parse as "
                                f"{plan.where}.features says ({first_line(e.message)})") from e
            values = {k: v.numpy() for k, v in parsed.items()
                      if not plan.features[k].encoding}
            for key in sized:
                want = tuple(plan.features[key].shape[:2])
                sized[key] = sized[key] and all(image_size(b) == want
                                                for b in parsed[key].numpy())
            names = RowNames(len(raws), lambda i, n=n, file=file: f"record {n + i} of {file}")
            check(_block(plan, values, names, file), names)
            n += len(raws)
        counts.append(n)
    return counts, sized


# -- the stream ---------------------------------------------------------------------------------
class TfrecordStream(StreamSplit):
    """The records of one split: all records of its files, or those whose key falls in a
    range (``selection``: ``("hash", lo, hi, seed)`` or ``("position", first, end)``)."""

    def __init__(self, plan: Plan, files: list[str], source: str, split: str = "all") -> None:
        super().__init__(source, 0, plan.input_specs(), labelled=bool(plan.labels))
        self.plan, self.files, self.split = plan, list(files), split
        root = os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files])
        self.file_keys = [text_key(os.path.relpath(os.path.abspath(f), root)) for f in files]
        self.counts: list[int] | None = None
        self.sized: dict[str, bool] = {}
        self.selection: tuple | None = None

    def prepare(self, check):
        self.counts, self.sized = scan(self.files, self.plan, check)
        self.length = self._count()

    def _count(self) -> int:
        sel = self.selection
        if sel is None:
            return sum(self.counts)
        if sel[0] == "position":
            total, start = 0, 0
            for c in self.counts:
                total += max(0, min(start + c, sel[2]) - max(start, sel[1]))
                start += c
            return total
        _, lo, hi, seed = sel
        total = 0
        for key, c in zip(self.file_keys, self.counts):
            for first in range(0, c, 1 << 20):
                u = unit_hash(key, np.arange(first, min(c, first + (1 << 20))), seed)
                total += int(((u >= lo) & (u < hi)).sum())
        return total

    def carve(self, validation, test, *, shuffle, stratify, seed):
        return self._carve_rows(
            sum(self.counts), validation, test, shuffle=shuffle, stratify=stratify,
            seed=seed, count=lambda part: part._count(),
            hashed="a streamed source is split by a hash of each record's file and index",
            instead="separate files per split")

    # -- the pipeline ----------------------------------------------------------------------
    def _keep(self, fi: Any, i: Any) -> Any:
        import tensorflow as tf

        sel = self.selection
        if sel[0] == "position":
            g = tf.gather(tf.constant(np.cumsum([0, *self.counts[:-1]]), tf.int64), fi) + i
            return (g >= sel[1]) & (g < sel[2])
        _, lo, hi, seed = sel
        key = tf.gather(tf.constant(np.array(self.file_keys, dtype="uint64")), fi)
        u = unit_hash_tf(key, i, seed)
        return (u >= lo) & (u < hi)

    def _elements(self, batch_size, *, shuffle, seed, keys=False, labels_only=False,
                  drop_remainder=False):
        import tensorflow as tf

        plan = self.plan
        wanted = set(plan.labels.values()) | ({plan.group} if plan.group else set())
        if not labels_only:
            wanted |= set(plan.inputs.values())
        description = {k: _tf_feature(plan.features[k]) for k in wanted}

        def read(file, fi):
            """The raw records of one file (with each one's name when ``keys``)."""
            ds = tf.data.TFRecordDataset(file, compression_type=plan.compression)
            if self.selection is None and not keys:
                return ds
            ds = ds.enumerate()
            if self.selection is not None:
                ds = ds.filter(lambda i, raw: self._keep(fi, i))
            if keys:
                return ds.map(lambda i, raw: (raw, tf.strings.join(
                    ["record ", tf.strings.as_string(i), " of ", file])))
            return ds.map(lambda i, raw: raw)

        order = tf.data.Dataset.from_tensor_slices(
            (self.files, np.arange(len(self.files), dtype="int64")))
        if shuffle:
            order = order.shuffle(len(self.files), seed=seed, reshuffle_each_iteration=True)
        # Several files at once, except where the source's order is wanted (keys: checks,
        # statistics and samples name rows in file order).
        cycle = 1 if keys else min(len(self.files), 8)
        parallel = {"num_parallel_calls": tf.data.AUTOTUNE, "deterministic": True}
        ds = order.interleave(read, cycle_length=cycle, block_length=1,
                              **(parallel if cycle > 1 else {}))
        if shuffle:
            ds = ds.shuffle(plan.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)

        def decoder(d: Any, key: str):
            from kspec.data.stream_images import decode_bytes

            h, w, c = d.shape
            resize = not self.sized.get(key, False)
            return lambda data: decode_bytes(data, (h, w), c, d.encoding, resize=resize)

        def build(raw, key=None):
            """A batch of records parsed at once; its images decoded one by one."""
            parsed = tf.io.parse_example(raw, description)
            x = {}
            for name, k in ({} if labels_only else plan.inputs).items():
                d = plan.features[k]
                x[name] = parsed[k] if not d.encoding else tf.map_fn(
                    decoder(d, k), parsed[k],
                    fn_output_signature=tf.TensorSpec(list(d.shape), tf.uint8))
            out = {"x": x}
            if plan.labels:
                ys = {o: parsed[k] for o, k in plan.labels.items()}
                out["y"] = ys[None] if None in ys else ys
            if plan.group:
                out["groups"] = parsed[plan.group]
            if key is not None:
                out["key"] = key
            return out

        # Parsing a batch of records at once costs less CPU than one by one (measured ~10%
        # per image); batches are built in parallel.
        ds = ds.batch(batch_size, drop_remainder=drop_remainder).map(
            build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if plan.group:
            ds = ds.map(self._group_ids)
        return ds

    def _group_ids(self, element: dict) -> dict:
        """Raw group values -> ids, by the same function as in-memory data (all values
        were checked by :func:`scan`)."""
        import tensorflow as tf

        from kspec.data.groups import group_ids

        plan = self.plan

        def ids(values):
            return group_ids(values, plan.groups, self.source, f"feature {plan.group!r}", {})

        out = dict(element)
        out["groups"] = tf.ensure_shape(
            tf.numpy_function(ids, [element["groups"]], tf.int64, stateful=False), [None])
        return out


def read_tfrecord(src: Any, input_names: list[str], where: str, groups: Any = None,
                  categorical: Any = None):
    """``{split: TfrecordStream}`` for a ``tfrecord`` source (records are counted and
    checked by ``prepare``, before training)."""
    plan = plan_for(src, input_names, where, groups)
    paths = {"all": src.path} if isinstance(src.path, str) else dict(src.path)
    out = {}
    for split, pattern in paths.items():
        files = resolve_files(pattern, f"{where}.path" + ("" if split == "all" else
                                                          f".{split}"))
        label = pattern if split == "all" else f"{pattern} ({split} split)"
        out[split] = TfrecordStream(plan, files, label, split)
    return out, ", ".join(paths.values()), {}


def read_records(files: list[str], source: dict[str, Any],
                 input_names: list[str]) -> dict[str, np.ndarray]:
    """Every record of ``files`` as input arrays, read as the spec's ``tfrecord`` source
    says (``kspec predict --input FILE.tfrecord``)."""
    from kspec.spec.sources import TfrecordSource

    src = TfrecordSource.model_validate({**source, "path": files[0], "label": None})
    plan = plan_for(src, input_names, "data.source")
    stream = TfrecordStream(plan, files, ", ".join(files))
    stream.prepare(lambda block, names: None)
    parts: dict[str, list[np.ndarray]] = {}
    for element in stream.chunks(4096, keys=False):
        for k, v in element["x"].items():
            parts.setdefault(k, []).append(v)
    if not parts:
        raise DataError(f"{', '.join(files)}: no records")
    return {k: np.concatenate(v) for k, v in parts.items()}
