"""Streamed splits: data read from disk batch by batch, never held whole in memory.

A source with ``stream: true`` (``image_folder``, ``csv``, ``tfds``) or of type ``tfrecord``
yields :class:`StreamSplit` objects instead of in-memory :class:`~kspec.data.split.Split`
arrays. A stream knows its inputs' shapes and dtypes and its number of rows, builds a
``tf.data`` pipeline for every use (training, evaluation, statistics), and hands small
in-memory samples (:meth:`StreamSplit.head`) to what needs arrays: the checks before
training, the export's parity check, the diagnostics probe.

Fractions of a streamed source are decided by a hash of each row's key (a file's path, a
record's file and index, a CSV row's number) with the seed, never by a shuffle in memory:
the same seed gives the same splits, and adding files leaves the old rows where they were.

Example:
    >>> from kspec import load_spec  # doctest: +SKIP
    >>> data = load_data(load_spec("specs/streamed_digit_images.yaml"))  # doctest: +SKIP
    >>> type(data.train).__name__, len(data.train)  # doctest: +SKIP
    ('ImageFolderStream', 320)
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Callable, Iterator

import numpy as np

from kspec.data.split import Split
from kspec.errors import DataError, SpecError

# Rows of each split checked before training like in-memory data (NaN, labels, shapes).
HEAD_ROWS = 256
# Images held by the shuffle buffer of a cached image folder (memory: that many images).
SHUFFLE_BUFFER = 1024

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1, _M2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


# -- row keys -> [0, 1) -------------------------------------------------------------------------
def _mix(z: int) -> int:
    """SplitMix64's finalizer on a Python int (Steele, Lea and Flood 2014)."""
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def text_key(text: str) -> int:
    """A stable 64-bit key for a name (a file's path relative to its folder).

    Example:
        >>> text_key("cat/001.png") == text_key("cat/001.png") != text_key("cat/002.png")
        True
    """
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _base(file_key: int, seed: int) -> int:
    return _mix((file_key ^ _mix((seed * _GOLDEN + _GOLDEN) & _MASK)) & _MASK)


def unit_hash(file_key: int, index: np.ndarray, seed: int) -> np.ndarray:
    """Where rows ``index`` of the file ``file_key`` fall in [0, 1) for ``seed`` (NumPy).

    Equal to :func:`unit_hash_tf` bit for bit, so a split decided in a tf.data pipeline and
    one counted in NumPy agree.

    Example:
        >>> u = unit_hash(text_key("a.tfrecord"), np.arange(5), seed=0)
        >>> bool(((u >= 0) & (u < 1)).all())
        True
    """
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps modulo 2**64, as intended
        z = (np.asarray(index).astype("uint64") * np.uint64(_GOLDEN)
             + np.uint64(_base(file_key, seed)))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype("float64") / float(1 << 53)


def unit_hash_tf(file_key: Any, index: Any, seed: int) -> Any:
    """:func:`unit_hash` inside a tf.data pipeline (``file_key`` a uint64 tensor or int)."""
    import tensorflow as tf

    def u64(v):
        return tf.constant(v, tf.uint64) if isinstance(v, int) else tf.cast(v, tf.uint64)

    shift = tf.bitwise.right_shift
    if isinstance(file_key, int):
        base = u64(_base(file_key, seed))
    else:  # a tensor of text_key values: mix with the seed in the graph, as _base does
        base = _mix_tf(tf.bitwise.bitwise_xor(u64(file_key), u64(_mix((seed * _GOLDEN + _GOLDEN)
                                                                      & _MASK))))
    z = u64(index) * u64(_GOLDEN) + base
    z = _mix_tf(z)
    return tf.cast(shift(z, u64(11)), tf.float64) / float(1 << 53)


def _mix_tf(z: Any) -> Any:
    import tensorflow as tf

    shift, xor = tf.bitwise.right_shift, tf.bitwise.bitwise_xor
    z = xor(z, shift(z, tf.constant(30, tf.uint64))) * tf.constant(_M1, tf.uint64)
    z = xor(z, shift(z, tf.constant(27, tf.uint64))) * tf.constant(_M2, tf.uint64)
    return xor(z, shift(z, tf.constant(31, tf.uint64)))


def fraction_bounds(validation: float, test: float) -> dict[str, tuple[float, float]]:
    """The share of [0, 1) each split takes: test first, then validation, then train
    (the order in-memory splits cut a permutation in).

    Example:
        >>> fraction_bounds(validation=0.2, test=0.1)["validation"]
        (0.1, 0.30000000000000004)
    """
    return {"test": (0.0, test), "validation": (test, test + validation),
            "train": (test + validation, 1.0)}


def whole_or(selection: tuple, n: int) -> tuple | None:
    """None when a selection of rows (``("hash", lo, hi, seed)`` or ``("position", first,
    end)``) keeps all ``n`` rows, so the pipeline reads without a filter; else itself.

    Example:
        >>> whole_or(("hash", 0.0, 1.0, 7), 100) is None, whole_or(("position", 10, 100), 100)
        (True, ('position', 10, 100))
    """
    if selection[0] == "hash":
        return None if selection[1] <= 0.0 and selection[2] >= 1.0 else selection
    return None if selection[1] <= 0 and selection[2] >= n else selection


def epoch_order(n: int, shuffle: bool, seed: int) -> Any:
    """A dataset of the row indices ``0..n-1``: a fresh seeded permutation every epoch
    (:func:`kspec.data.pipeline.pass_orders`), or in order."""
    import tensorflow as tf

    from kspec.data.pipeline import pass_orders

    if not shuffle:
        return tf.data.Dataset.range(n)
    return pass_orders(n, seed).flat_map(tf.data.Dataset.from_tensor_slices)


# -- the streamed split -------------------------------------------------------------------------
class StreamSplit:
    """One split read from disk as it is used; the streamed counterpart of ``Split``.

    Subclasses implement :meth:`_elements` (a batched ``tf.data.Dataset`` of dicts with
    ``x`` (by input name), ``y`` (one tensor, or one per output; absent when unlabelled),
    optionally ``groups`` and, when asked, ``key`` (each row's name for messages)) and
    :meth:`carve` (the fraction splits).

    Attributes:
        source: names the data in messages (``data/shapes (train split)``, ``tfds:mnist``).
        origin: the same without the split (``data/shapes``).
        length: the number of rows (counted when the source was read).
        inputs: ``{input_name: (shape of one row, dtype name)}``.
        transforms: functions on batch dicts applied after reading (derived targets,
            packed group ids), in order.
    """

    streamed = True

    def __init__(self, source: str, length: int, inputs: dict[str, tuple[tuple, str]],
                 labelled: bool = True) -> None:
        self.source = source
        # The source without a split's name: what a carved split's name is appended to.
        self.origin = source[:source.rfind(" (")] if source.endswith(" split)") else source
        self.length = int(length)
        self.inputs = {k: (tuple(int(d) for d in s), str(t)) for k, (s, t) in inputs.items()}
        self.labelled = labelled
        self.transforms: list[Callable[[dict], dict]] = []
        self.statistics: dict[str, Any] = {}  # fitted preprocessing, by the steps' JSON
        self._heads: dict[int, tuple[Split, list[str]]] = {}

    # -- what subclasses provide -----------------------------------------------------------
    def _elements(self, batch_size: int, *, shuffle: bool, seed: int, keys: bool = False,
                  labels_only: bool = False, drop_remainder: bool = False) -> Any:
        raise NotImplementedError

    def prepare(self, check: Callable[[Split, Any], None]) -> None:
        """Read what must be read before training (row counts, structure) and pass every
        block of rows the source reads anyway to ``check(block, row_names)`` (the checks
        in-memory data gets). Nothing by default."""

    def carve(self, validation: float, test: float, *, shuffle: bool, stratify: bool,
              seed: int) -> dict[str, "StreamSplit"]:
        """``{"train": ..., "validation": ..., "test": ...}`` by fractions of this stream
        (a split whose fraction is 0 is left out)."""
        raise NotImplementedError

    def _carve_rows(self, n: int, validation: float, test: float, *, shuffle: bool,
                    stratify: bool, seed: int, hashed: str, instead: str,
                    count: Callable[["StreamSplit"], int] | None = None
                    ) -> dict[str, "StreamSplit"]:
        """:meth:`carve` for a stream of ``n`` numbered rows: by a hash of each row's key
        with the seed (``shuffle``), else by position (test first, then validation, as in
        memory). Each part is a copy with its ``selection`` (None: every row) and its
        ``length`` (``count(part)``, default: the rows its ``_mask`` keeps).

        ``stratify`` is refused with a SpecError saying what the stream is split by
        (``hashed``, e.g. "a streamed csv source is split by a hash of each row's number")
        and what to write ``instead`` (e.g. "one file per split")."""
        if stratify and (validation or test):
            raise SpecError("data.splits.stratify", f"{hashed}, not by class (class "
                            "proportions then hold approximately)", value=True,
                            valid=f"stratify: false, or {instead}")
        if shuffle:
            ranges = {k: ("hash", lo, hi, seed)
                      for k, (lo, hi) in fraction_bounds(validation, test).items()}
        else:
            k_test, k_val = int(round(n * test)), int(round(n * validation))
            ranges = {"test": ("position", 0, k_test),
                      "validation": ("position", k_test, k_test + k_val),
                      "train": ("position", k_test + k_val, n)}
        out = {}
        for name, selection in ranges.items():
            if name != "train" and not (validation if name == "validation" else test):
                continue
            part = copy.copy(self)
            part.selection = whole_or(selection, n)
            if hasattr(self, "split"):  # the readers that know their split's name
                part.split = name
            part.transforms, part._heads, part.statistics = [], {}, {}
            part.source = f"{self.origin} ({name} split)"
            part.length = count(part) if count else int(part._mask(np.arange(n)).sum())
            out[name] = part
        return out

    def _mask(self, rows: np.ndarray) -> np.ndarray:
        """Which of the numbered ``rows`` this part's ``selection`` keeps, for a stream
        that numbers its rows in one sequence hashed under ``file_key`` (CSV, TFDS)."""
        sel = self.selection
        if sel is None:
            return np.ones(len(rows), bool)
        if sel[0] == "position":
            return (rows >= sel[1]) & (rows < sel[2])
        u = unit_hash(self.file_key, rows, sel[3])
        return (u >= sel[1]) & (u < sel[2])

    # -- the same surface as Split ---------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r}, rows={self.length})"

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: shape for k, (shape, _) in self.inputs.items()}

    @property
    def x(self) -> Any:
        raise DataError(f"{self.source}: the split is streamed from disk and has no "
                        "in-memory arrays; this needs the data in memory (stream: false, "
                        "where the source has it), or take a sample: split.head(rows).x")

    @property
    def y(self) -> Any:
        raise DataError(f"{self.source}: the split is streamed from disk and has no "
                        "in-memory labels (read them with split.labels())")

    def take(self, index: Any) -> Any:
        raise DataError(f"{self.source}: a streamed split cannot be resampled by row "
                        "(ensemble.bootstrap needs the rows in memory); set "
                        "ensemble.bootstrap: false (members still differ by their seeds)")

    def with_transform(self, fn: Callable[[dict], dict]) -> "StreamSplit":
        """A copy of this stream whose batches pass through ``fn`` (a TensorFlow function
        of the batch dict) after the transforms it has."""
        out = copy.copy(self)
        out.transforms = [*self.transforms, fn]
        out._heads = {}
        return out

    # -- pipelines -------------------------------------------------------------------------
    def _finish(self, element: dict) -> tuple:
        for fn in self.transforms:
            element = fn(element)
        x = element["x"]
        x = x if len(x) > 1 else next(iter(x.values()))
        return (x, element["y"]) if "y" in element else (x,)

    def batches(self, batch_size: int, drop_remainder: bool = False) -> int:
        full, rest = divmod(self.length, batch_size)
        return full + (1 if rest and not drop_remainder else 0)

    def dataset(self, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                drop_remainder: bool = False) -> Any:
        """The batched, prefetched ``tf.data.Dataset`` of ``(x, y)`` training and
        evaluation read; shuffled afresh every epoch (seeded) when ``shuffle``."""
        import tensorflow as tf

        ds = self._elements(batch_size, shuffle=shuffle, seed=seed,
                            drop_remainder=drop_remainder)
        ds = ds.map(self._finish, num_parallel_calls=tf.data.AUTOTUNE)
        # Keras learns the steps per epoch (progress bars, steps_per_execution) from it.
        ds = ds.apply(tf.data.experimental.assert_cardinality(
            self.batches(batch_size, drop_remainder)))
        return ds.prefetch(tf.data.AUTOTUNE)

    def chunks(self, rows: int, *, keys: bool = True, labels_only: bool = False,
               transformed: bool = False) -> Iterator[dict]:
        """Batches of NumPy arrays in the source's order (dicts with ``x``, ``y``,
        ``groups``, ``key``), for passes over the data such as the statistics."""
        ds = self._elements(rows, shuffle=False, seed=0, keys=keys, labels_only=labels_only)
        for element in ds.prefetch(2).as_numpy_iterator():
            if "key" in element:
                element["key"] = [k.decode("utf-8", "replace") for k in element["key"]]
            yield self._eager(element) if transformed else element

    def _eager(self, element: dict) -> dict:
        """The transforms applied to a NumPy batch (row names kept as they are)."""
        import tensorflow as tf

        if not self.transforms:
            return element
        keys = element.get("key")
        out = tf.nest.map_structure(tf.convert_to_tensor,
                                    {k: v for k, v in element.items() if k != "key"})
        for fn in self.transforms:
            out = fn(out)
        out = tf.nest.map_structure(lambda t: t.numpy(), out)
        if keys is not None:
            out["key"] = keys
        return out

    def head(self, rows: int = HEAD_ROWS) -> Split:
        """The first ``rows`` rows in the source's order as an in-memory ``Split`` (with
        the stream's transforms applied)."""
        return self.head_with_keys(rows)[0]

    def head_with_keys(self, rows: int = HEAD_ROWS) -> tuple[Split, list[str]]:
        """:meth:`head` and each row's name for messages."""
        if rows not in self._heads:
            element = next(self.chunks(rows), None)
            if element is None:
                raise DataError(f"{self.source}: the split is empty")
            keys = element.get("key", [])
            element = self._eager(element)
            y = element.get("y")
            self._heads[rows] = (Split(dict(element["x"]), y, None, element.get("groups")),
                                 keys)
        return self._heads[rows]

    def labels(self) -> np.ndarray | dict[str, np.ndarray] | None:
        """Every label of the split (after the transforms), read in one pass that skips
        the features where the source can (for ``class_weight: balanced``)."""
        parts: list[Any] = []
        for element in self.chunks(8192, keys=False, labels_only=True, transformed=True):
            parts.append(element.get("y"))
        if not parts or parts[0] is None:
            return None
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)


class RowNames:
    """Names of a block's rows for messages, made only when one is shown
    (``record 17 of data/a.tfrecord``); what ``meta["row_names"]`` of the checks holds."""

    def __init__(self, count: int, name: Callable[[int], str]) -> None:
        self.count, self.name = count, name

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> str:
        return self.name(int(i))


def refuse(path: str, what: str, valid: str) -> SpecError:
    """The error for a feature that needs in-memory data, used on a streamed source."""
    return SpecError(path, f"{what} needs the data in memory; the source is streamed",
                     valid=valid)
