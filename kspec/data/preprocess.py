"""Layers that run on each input before the model's own layers.

Preprocessing statistics are fitted on the training split only (each step on the output of
the step before) and stored as layer weights, so saved and exported models take raw inputs.
Augmentation layers follow; they are random only when the model runs in training mode.

Example:
    >>> from kspec import load_spec
    >>> from kspec.data.loading import load_data
    >>> spec = load_spec("specs/augmented_digits.yaml")
    >>> data = load_data(spec)
    >>> [layer.name for layer in input_layers(spec, data)["image"]][:3]
    ['image_min_max_0', 'image_channel_mean_0', 'image_rotate_0']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from kspec.compiler.origins import remember
from kspec.data.split import Data
from kspec.errors import SpecError
from kspec.registry import AUGMENTATIONS, PREPROCESSING
from kspec.spec import Spec

log = logging.getLogger("kspec.data")

# A dense d x d covariance beyond this many features costs more memory and time than any
# model kspec trains on CPU; images that large should use per-channel statistics instead.
MAX_WHITEN_FEATURES = 8192
# Statistics are accumulated over row blocks of this many values (float64: 128 MB).
CHUNK_VALUES = 1 << 24


@dataclass
class Fitted:
    """One fitted step: its Keras layer and NumPy forward/inverse maps (for chaining).

    ``propagate`` maps the :class:`~kspec.data.moments.Moments` of the step's input to
    those of its output, so the next step of a streamed source fits without another pass.
    """

    make_layer: Callable[[str], Any]
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    out_shape: tuple[int, ...]
    propagate: Callable[[Any], Any] | None = None


def _chunks(x: np.ndarray):
    """Row blocks of at most ~16M values: float64 temporaries stay near 128 MB, however
    many training images there are."""
    rows = max(1, CHUNK_VALUES // max(1, int(np.prod(x.shape[1:]))))
    for start in range(0, len(x), rows):
        yield x[start:start + rows]


def _mean_std(x: np.ndarray, axes: tuple[int, ...], std: bool = True):
    """Mean (and population std) over the leading ``axes``, in float64, over row blocks.

    The reduced axes always lead, so every block is viewed as ``(rows, k)`` and summed
    along one contiguous axis, which is several times faster than a multi-axis reduction.
    """
    k = int(np.prod(x.shape[len(axes):]))
    count = x.size // k
    total = np.zeros(k)
    for c in _chunks(x):
        total += c.reshape(-1, k).sum(axis=0, dtype="float64")
    mean = total / count
    if not std:
        return mean, None
    sq = np.zeros(k)
    for c in _chunks(x):
        dev = c.reshape(-1, k).astype("float64")
        dev -= mean
        dev *= dev
        sq += dev.sum(axis=0)
    return mean, np.sqrt(sq / count)


def _blockwise(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
               example_out: tuple[int, ...]) -> np.ndarray:
    """``fn`` applied to row blocks, written into one float32 array (no float64 copy)."""
    out = np.empty((len(x), *example_out), "float32")
    start = 0
    for block in _chunks(x):
        out[start:start + len(block)] = fn(block)
        start += len(block)
    return out


def _reduce_axes(per: str, ndim: int) -> tuple[int, ...]:
    if per == "feature":
        return (0,)
    if per == "channel":
        return tuple(range(ndim - 1))
    return tuple(range(ndim))


def _stat_shape(per: str, example_shape: tuple[int, ...]) -> tuple[int, ...]:
    return {"feature": example_shape, "channel": example_shape[-1:], "global": ()}[per]


def _rescale(offset, scale, shift: float, shape: tuple[int, ...]) -> Fitted:
    offset = np.asarray(offset, "float64").reshape(shape)
    scale = np.asarray(scale, "float64").reshape(shape)
    off32, scale32 = offset.astype("float32"), scale.astype("float32")

    def affine(block):  # in place on a float32 copy: what the layer computes
        out = block.astype("float32")
        out -= off32
        out *= scale32
        out += np.float32(shift)
        return out

    def undo(block):
        out = block.astype("float32")
        out -= np.float32(shift)
        out /= scale32
        out += off32
        return out

    def make(name: str):
        from kspec.data.keras_layers import Rescale

        layer = Rescale(stat_shape=shape, shift=shift, name=name)
        layer.set_statistics(offset, scale)
        return layer

    return Fitted(make, lambda x: _blockwise(affine, x, x.shape[1:]),
                  lambda y: _blockwise(undo, y, y.shape[1:]), None,
                  lambda m: m.affine(offset, scale, shift))


# -- implementations of the entries of registry.PREPROCESSING: fit(step, x, where) -> Fitted --
def fit_channel_mean(step: Any, x: np.ndarray, where: str) -> Fitted:
    """Subtract the training split's mean of every channel."""
    axes, shape = _reduce_axes("channel", x.ndim), _stat_shape("channel", x.shape[1:])
    mean, _ = _mean_std(x, axes, std=False)
    return _rescale(mean, np.ones_like(mean), 0.0, shape)


def fit_min_max(step: Any, x: np.ndarray, where: str) -> Fitted:
    """Scale into ``step.range`` with the training split's minimum and maximum."""
    axes, shape = _reduce_axes(step.per, x.ndim), _stat_shape(step.per, x.shape[1:])
    lo, hi = step.range
    mn = x.min(axis=axes).astype("float64")
    span = x.max(axis=axes).astype("float64") - mn
    # A constant feature maps to the low end instead of dividing by zero.
    scale = np.where(span > 0, (hi - lo) / np.where(span > 0, span, 1.0), 1.0)
    return _rescale(mn, scale, lo, shape)


def fit_zscore(step: Any, x: np.ndarray, where: str) -> Fitted:
    """Subtract the training mean and divide by the training standard deviation."""
    axes, shape = _reduce_axes(step.per, x.ndim), _stat_shape(step.per, x.shape[1:])
    mean, std = _mean_std(x, axes)
    # Constant features are only centred: 1/epsilon would blow up unseen values.
    scale = np.where(std > step.epsilon, 1.0 / np.maximum(std, step.epsilon), 1.0)
    return _rescale(mean, scale, 0.0, shape)


def fit_whiten(step: Any, x: np.ndarray, where: str) -> Fitted:
    """Whitening of all features jointly (PCA or ZCA), fitted on the training split."""
    n, example = len(x), x.shape[1:]
    d = int(np.prod(example))
    if d > MAX_WHITEN_FEATURES:
        raise SpecError(where, f"whitening needs a {d} x {d} covariance matrix; at most "
                        f"{MAX_WHITEN_FEATURES} features are supported",
                        valid="zscore or channel_mean with per: channel for large images")
    if step.components is not None and step.components > d:
        raise SpecError(f"{where}.components", f"the input has only {d} features",
                        value=step.components)
    flat = x.reshape(n, d)
    mean = _mean_std(flat, (0,), std=False)[0]
    cov = np.zeros((d, d))
    for block in _chunks(flat):
        centred = block - mean
        cov += centred.T @ centred
    cov /= n
    return _whitening(step, mean, cov, n, tuple(example), where)


def _whitening(step: Any, mean: np.ndarray, cov: np.ndarray, n: int,
               example: tuple[int, ...], where: str) -> Fitted:
    """The whitening step for a fitted mean and covariance (of ``n`` rows)."""
    d = len(mean)
    eigval, eigvec = np.linalg.eigh(cov)
    order = np.argsort(eigval)[::-1]
    eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
    if step.method == "pca":
        k = step.components or d
        matrix = eigvec[:, :k] / np.sqrt(eigval[:k] + step.epsilon)
        target = (k,)
    else:
        matrix = (eigvec / np.sqrt(eigval + step.epsilon)) @ eigvec.T
        target = tuple(example)
    if n <= d:
        log.warning("%s: %d training rows for %d features; the covariance is singular and "
                    "epsilon=%g decides the scale of the null directions", where, n, d,
                    step.epsilon)
    back = np.linalg.pinv(matrix)

    def make(name: str):
        from kspec.data.keras_layers import Whitening

        layer = Whitening(features=d, components=matrix.shape[1], target_shape=target,
                          name=name)
        layer.set_statistics(mean, matrix)
        return layer

    def forward(v):
        return _blockwise(lambda b: ((b.reshape(len(b), d) - mean) @ matrix).reshape(
            len(b), *target), v, target)

    def inverse(v):
        return _blockwise(lambda b: (b.reshape(len(b), -1) @ back + mean).reshape(
            len(b), *example), v, tuple(example))

    return Fitted(make, forward, inverse, target, lambda m: m.linear(mean, matrix, target))


# -- the same steps fitted from streamed statistics (kspec.data.moments) -------------------------
# A registered step fits a streamed source when its function has a `from_moments(step,
# moments, where) -> Fitted` attribute; `needs` says which statistics it reads.
def _channel_mean_from(step: Any, m: Any, where: str) -> Fitted:
    _, mean, _, _, _ = m.reduce("channel")
    return _rescale(mean, np.ones_like(mean), 0.0, _stat_shape("channel", m.shape))


def _min_max_from(step: Any, m: Any, where: str) -> Fitted:
    _, _, _, mn, mx = m.reduce(step.per)
    lo, hi = step.range
    span = mx - mn
    scale = np.where(span > 0, (hi - lo) / np.where(span > 0, span, 1.0), 1.0)
    return _rescale(mn, scale, lo, _stat_shape(step.per, m.shape))


def _zscore_from(step: Any, m: Any, where: str) -> Fitted:
    _, mean, var, _, _ = m.reduce(step.per)
    std = np.sqrt(var)
    scale = np.where(std > step.epsilon, 1.0 / np.maximum(std, step.epsilon), 1.0)
    return _rescale(mean, scale, 0.0, _stat_shape(step.per, m.shape))


def _whiten_from(step: Any, m: Any, where: str) -> Fitted:
    d = m.features
    if step.components is not None and step.components > d:
        raise SpecError(f"{where}.components", f"the input has only {d} features",
                        value=step.components)
    return _whitening(step, m.mean.copy(), m.covariance(), m.n, m.shape, where)


_min_max_from.needs = ("min",)  # type: ignore[attr-defined]
_whiten_from.needs = ("covariance",)  # type: ignore[attr-defined]
fit_channel_mean.from_moments = _channel_mean_from  # type: ignore[attr-defined]
fit_min_max.from_moments = _min_max_from  # type: ignore[attr-defined]
fit_zscore.from_moments = _zscore_from  # type: ignore[attr-defined]
fit_whiten.from_moments = _whiten_from  # type: ignore[attr-defined]


def _targets(step: Any, names: list[str], where: str) -> list[str]:
    if step.inputs is None:
        return names
    for j, name in enumerate(step.inputs):
        if name not in names:
            raise SpecError(f"{where}.inputs[{j}]", f"the model has no input {name!r}",
                            valid=names)
    return list(step.inputs)


def fit_preprocessing(spec: Spec, x: dict[str, np.ndarray]) -> dict[str, list[Fitted]]:
    """Fit every step of ``data.preprocessing`` on ``x`` (one array per input name).

    The string inputs of categorical columns are left out: their lookup is their fit.
    """
    text = spec.data.categorical_inputs()
    x = {n: v for n, v in x.items() if n not in text}
    names = list(x)
    out: dict[str, list[Fitted]] = {n: [] for n in names}
    current = {n: np.asarray(v) for n, v in x.items()}
    steps = spec.data.preprocessing
    for i, step in enumerate(steps):
        where = f"data.preprocessing[{i}]"
        for name in _targets(step, names, where):
            arr = current[name]
            if arr.dtype.kind not in "fiub":
                raise SpecError(where, f"input {name!r} holds {arr.dtype} values; "
                                f"{step.type} needs numbers")
            fitted = PREPROCESSING.get(step.type, f"{where}.type").implementation()(
                step, arr, where)
            out[name].append(fitted)
            if any(later.inputs is None or name in later.inputs for later in steps[i + 1:]):
                current[name] = fitted.forward(arr)  # the next step fits on this output
    return out


def fit_streamed(spec: Spec, split: Any) -> dict[str, list[Fitted]]:
    """:func:`fit_preprocessing` on a streamed training split, in one pass over it.

    The pass accumulates per-feature moments in float64 (and the covariance of the inputs
    a whitening step reads); each step is fitted from them and maps them on to the next
    step (:class:`~kspec.data.moments.Moments`), so a chain of steps reads the data once.
    Only a step that needs a minimum after whitening reads it again. The result is kept on
    the split: ensemble members and search trials do not pass over the data again. The pass
    also checks every training row (NaN/inf, labels) like in-memory data.
    """
    import json

    from kspec.data.stream_stats import statistics_pass

    steps = spec.data.preprocessing
    names = [n for n in split.inputs if n not in spec.data.categorical_inputs()]
    key = json.dumps([s.model_dump() for s in steps], sort_keys=True, default=str)
    if key in split.statistics:
        return split.statistics[key]
    impls = []
    for i, step in enumerate(steps):
        where = f"data.preprocessing[{i}]"
        fn = PREPROCESSING.get(step.type, f"{where}.type").implementation()
        from_moments = getattr(fn, "from_moments", None)
        if from_moments is None:
            raise SpecError(f"{where}.type", f"{step.type} cannot be fitted on a streamed "
                            "source (it has no from_moments)", value=step.type,
                            valid="min_max, zscore, channel_mean, whiten, or stream: false")
        impls.append(from_moments)
    covariance = {n for i, step in enumerate(steps)
                  if "covariance" in getattr(impls[i], "needs", ())
                  for n in _targets(step, names, f"data.preprocessing[{i}]")}
    for name in covariance:
        d = int(np.prod(split.inputs[name][0]))
        if d > MAX_WHITEN_FEATURES:
            raise SpecError("data.preprocessing", f"whitening input {name!r} needs a {d} x {d} "
                            f"covariance matrix; at most {MAX_WHITEN_FEATURES} features are "
                            "supported", valid="zscore or channel_mean with per: channel")
    for name in names:
        if np.dtype(split.inputs[name][1]).kind not in "fiub":
            raise SpecError("data.preprocessing", f"input {name!r} holds "
                            f"{split.inputs[name][1]} values; preprocessing needs numbers")
    moments = statistics_pass(spec, split, names, covariance)
    out: dict[str, list[Fitted]] = {n: [] for n in names}
    for i, step in enumerate(steps):
        where = f"data.preprocessing[{i}]"
        for name in _targets(step, names, where):
            m = moments.get(name)
            needs = getattr(impls[i], "needs", ())
            if m is None or ("min" in needs and m.min is None) or (
                    "covariance" in needs and m.comoment is None):
                # Not derivable from the moments so far (a minimum after whitening): one
                # more pass over this input, through the steps fitted before.
                chain = [f.forward for f in out[name]]
                m = statistics_pass(spec, split, [name], {name}, {name: chain})[name]
            fitted = impls[i](step, m, where)
            out[name].append(fitted)
            moments[name] = fitted.propagate(m) if fitted.propagate is not None else None
    split.statistics[key] = out
    return out


def _refit_test(spec: Spec, data: Data, fitted: dict[str, list[Fitted]]) -> None:
    """Re-express the test features so the train-fitted layers apply test statistics.

    For every input, ``x' = train^-1(test(x))``: feeding ``x'`` to the model's layers
    (fitted on train) yields exactly the test split normalized with its own statistics.
    """
    if data.raw_test_x is None:
        data.raw_test_x = dict(data.test.x)
    raw = data.raw_test_x
    on_test = fit_preprocessing(spec, raw)
    for name, steps in on_test.items():
        if not steps:
            continue
        y = raw[name]
        for step in steps:
            y = step.forward(y)
        for step in reversed(fitted[name]):
            y = step.inverse(y)
        data.test.x[name] = y
    data.meta["test_statistics"] = "test"


def input_layers(spec: Spec, data: Data | None) -> dict[str, list[Any]]:
    """Per input name, the fitted preprocessing and then the augmentation layers.

    Args:
        spec: the validated spec.
        data: the loaded data; statistics come from ``data.train`` only. May be None when
            the spec has no preprocessing (augmentation needs no data).

    Returns:
        ``{input_name: [keras layers in order]}``; inputs without steps are left out. An
        input that categorical columns join ends with a
        :class:`~kspec.data.categorical.JoinCategorical`, whose ``side_inputs`` are the
        string inputs it adds to the model.
    """
    names = [i.name for i in spec.model.inputs]
    if spec.data.preprocessing and data is None:
        raise SpecError("data.preprocessing", "fitted preprocessing needs the training data")
    shapes = {i.name: tuple(i.shape) if i.shape is not None else None
              for i in spec.model.inputs}
    if data is not None:
        shapes.update(data.input_shapes())
    out: dict[str, list[Any]] = {}
    if spec.data.fit_test_separately and (data is None or data.test is None
                                          or not spec.data.preprocessing):
        raise SpecError("data.fit_test_separately", "needs preprocessing steps and a test "
                        "split", value=True, valid="false, or add data.preprocessing and a "
                        "test split")
    if spec.data.preprocessing:
        if getattr(data.train, "streamed", False):  # one pass over the files on disk
            fitted = fit_streamed(spec, data.train)
        else:
            fitted = fit_preprocessing(spec, data.train.x)
        counts: dict[tuple[str, str], int] = {}
        types = {n: [(i, s.type) for i, s in enumerate(spec.data.preprocessing)
                     if s.inputs is None or n in s.inputs] for n in names}
        for name, steps in fitted.items():
            for (i, kind), step in zip(types[name], steps):
                k = counts[(name, kind)] = counts.get((name, kind), -1) + 1
                layer = remember(step.make_layer(f"{name}_{kind}_{k}"),
                                 f"data.preprocessing[{i}]")
                out.setdefault(name, []).append(layer)
                if step.out_shape is not None:
                    shapes[name] = step.out_shape
        if spec.data.fit_test_separately:
            log.warning("data.fit_test_separately: the test split is normalized with "
                        "statistics fitted on the test split itself; this needs the whole "
                        "test distribution in advance and can flatter the test metrics")
            _refit_test(spec, data, fitted)
    for i, step in enumerate(spec.data.augmentation):
        where = f"data.augmentation[{i}]"
        entry = AUGMENTATIONS.get(step.type, f"{where}.type")
        for j, name in enumerate(_targets(step, names, where)):
            shape = shapes.get(name)
            if "image" in entry.tags and shape is not None and len(shape) != 3:
                raise SpecError(f"{where}.type", f"{step.type} needs images [height, width, "
                                f"channels]; input {name!r} has shape {list(shape)} here",
                                value=step.type)
            seed = spec.seed + 1009 * (i + 1) + j  # distinct, reproducible per step and input
            layer, shapes[name] = entry.implementation()(
                step, seed=seed, name=f"{name}_{step.type}_{i}", shape=shape,
                where=f"{where} (input {name!r})")
            out.setdefault(name, []).append(remember(layer, where))
    # Categorical columns join last: augmentation noise is for numbers, not one-hot codes.
    from kspec.data.categorical import join_layers

    for name, join in join_layers(spec, data).items():
        out.setdefault(name, []).append(join)
    return out
