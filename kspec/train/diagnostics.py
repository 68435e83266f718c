"""Per-layer statistics of a model on a probe batch, and the callback that records them.

One forward and one backward pass on a fixed probe (rows of the training split) give, for
every layer with weights and every activation layer:

- ``mean`` and ``std`` of the layer's output (its activations);
- ``dead``: for ReLU-family activations, the fraction of units (channels, for
  convolutions) that are never positive on the probe;
- ``saturated``: for sigmoid/tanh-like activations, the fraction of output values in
  saturation (sigmoid below 0.01 or above 0.99, tanh beyond +-0.99);
- ``grad_norm``: the L2 norm of the gradient of the loss with respect to the layer's
  trainable weights (kernel and bias together);
- ``weight_norm``: the L2 norm of those weights;
- ``update_ratio`` (while training only): the norm of one optimizer step's change to the
  weights divided by the weight norm;
- ``identical``: every unit of the layer has the same weights (zero or constant
  initialization: they get the same gradient and can never differ).

The pass runs in training mode (dropout active, batch norm on batch statistics), as the
optimizer sees the model; the model's non-trainable state (batch-norm moving statistics,
random-layer seeds) and its metrics are restored afterwards, so probing never changes
training. ``kspec.diagnose`` builds its findings on these numbers.

Example:
    >>> probe = Probe(model)                                   # doctest: +SKIP
    >>> [(s["layer"], s["grad_norm"]) for s in probe(x, y)]    # doctest: +SKIP
    [('dense_0', 0.41), ('output', 0.93)]
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from kspec.spec import Spec

RELU_FAMILY = frozenset({"relu", "relu6", "leaky_relu", "prelu", "elu", "selu", "gelu",
                         "silu", "swish", "mish"})
SIGMOID_LIKE = frozenset({"sigmoid", "hard_sigmoid", "hard_silu"})
TANH_LIKE = frozenset({"tanh", "softsign"})
SATURATION = 0.01  # sigmoid within 0.01 of 0 or 1, tanh within 0.01 of -1 or 1
COLUMNS = ["epoch", "layer", "type", "activation", "units", "mean", "std", "dead",
           "saturated", "grad_norm", "weight_norm", "update_ratio", "identical"]
_LAYER_CLASSES = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "PReLU": "prelu", "ELU": "elu",
                  "Softmax": "softmax", "Maxout": "maxout"}


def activation_name(layer: Any) -> str | None:
    """The activation a layer applies (``relu``, ``tanh``, ...), or None for layers that
    apply none (batch norm, embeddings)."""
    import keras

    name = _LAYER_CLASSES.get(type(layer).__name__)
    if name is not None:
        return name
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    try:
        found = keras.activations.serialize(act)
    except (ValueError, TypeError):
        found = getattr(act, "__name__", None)
    if isinstance(found, dict):  # a serialized object: its class name
        found = found.get("config", {}).get("name") or found.get("class_name")
    return str(found) if found else None


def probed_layers(model: Any) -> list[Any]:
    """The layers that get a row: every layer with weights, and every activation layer.

    Input layers and kspec's fitted preprocessing and augmentation layers are left out; a
    nested model (a transfer base) is one row; a layer used at several places has no
    single output and is left out.
    """
    import keras

    out = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or type(layer).__module__.startswith(
                "kspec.data"):
            continue
        if not (layer.weights or activation_name(layer) is not None):
            continue
        try:
            layer_output(layer)  # raises for layers used at several places
        except (AttributeError, ValueError):
            continue
        out.append(layer)
    return out


def layer_output(layer: Any) -> Any:
    """The symbolic output of ``layer`` where it is called in its model.

    A nested model's own ``output`` property is the output of *its* graph (keras's
    Functional overrides it), which a probe built on the outer model cannot reach; the
    output of its first call, as for any other layer, is what the probe needs.
    """
    import keras

    return keras.Operation.output.fget(layer)


def _numpy(value: Any) -> np.ndarray:
    """A variable's or tensor's values as a NumPy array."""
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def _norm(arrays) -> float:
    return float(math.sqrt(sum(float(np.sum(np.square(_numpy(a).astype("float64"))))
                               for a in arrays)))


def _identical_units(layer: Any) -> bool:
    """Every output unit has the same incoming weights (and bias): symmetry never breaks."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) < 2 or kernel.shape[-1] < 2:
        return False
    w = _numpy(kernel).reshape(-1, kernel.shape[-1])
    same = bool(np.all(w == w[:, :1]))
    bias = getattr(layer, "bias", None)
    if same and bias is not None:
        b = _numpy(bias)
        same = bool(np.all(b == b[0]))
    return same


class Probe:
    """Per-layer statistics of ``model`` on probe batches (see the module's docstring).

    Args:
        model: a compiled Keras model (its loss defines the gradients).
        histograms: keep each layer's activations and gradients (``last_values``) for
            TensorBoard histograms.
    """

    def __init__(self, model: Any, histograms: bool = False):
        import keras

        self.model = model
        self.inner = getattr(model, "inner", model)  # learned uncertainty weighting
        self.layers = probed_layers(self.inner)
        self.histograms = histograms
        self.last_values: dict[str, dict[str, np.ndarray]] = {}
        self.outputs = set(getattr(self.inner, "output_names", []) or [])
        plain = self.inner is model
        self._n_out = len(self.inner.outputs) if plain else 0
        outs = [layer_output(layer) for layer in self.layers]
        if plain:
            outs += list(self.inner.outputs)
        self.net = keras.Model(self.inner.inputs, outs, name=f"{self.inner.name}_probe")

    def _forward(self, x, y):
        import tensorflow as tf

        variables = [layer.trainable_weights for layer in self.layers]
        with tf.GradientTape() as tape:
            outs = self.net(x, training=True)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            acts = outs[:len(self.layers)]
            if self._n_out:
                preds = outs[len(self.layers):]
                y_pred = preds[0] if len(preds) == 1 else preds
            else:
                y_pred = self.model(x, training=True)
            loss = self.model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
        flat = [v for vs in variables for v in vs]
        grads = tape.gradient(loss, flat) if flat else []
        by_layer, i = [], 0
        for vs in variables:
            by_layer.append(grads[i:i + len(vs)])
            i += len(vs)
        return acts, by_layer, float(loss)

    def __call__(self, x: Any, y: Any) -> list[dict[str, Any]]:
        """One row per probed layer (the keys of :data:`COLUMNS` but ``epoch`` and
        ``update_ratio``)."""
        state = list(self.model.non_trainable_variables) + list(self.model.metrics_variables)
        saved = [v.numpy() for v in state]
        try:
            acts, grads, self.loss = self._forward(x, y)
        finally:
            for v, value in zip(state, saved):
                v.assign(value)
        rows = []
        self.last_values = {}
        for layer, a, g in zip(self.layers, acts, grads):
            rows.append(self._row(layer, _numpy(a), g))
            if self.histograms:
                self.last_values[layer.name] = {
                    "activations": _numpy(a).ravel(),
                    "gradients": np.concatenate([np.ravel(v) for v in g if v is not None])
                    if any(v is not None for v in g) else np.zeros(0)}
        return rows

    def _row(self, layer: Any, a: np.ndarray, grads: list) -> dict[str, Any]:
        act = activation_name(layer)
        a64 = a.astype("float64", copy=False)
        units = int(a.shape[-1]) if a.ndim > 1 else 1
        row: dict[str, Any] = {
            "layer": layer.name, "type": type(layer).__name__, "activation": act or "",
            "units": units, "mean": float(a64.mean()) if a.size else math.nan,
            "std": float(a64.std()) if a.size else math.nan, "dead": math.nan,
            "saturated": math.nan, "grad_norm": math.nan, "weight_norm": math.nan,
            "identical": _identical_units(layer),
        }
        if act in RELU_FAMILY and a.size:
            positive = np.any(a.reshape(-1, units) > 0, axis=0)
            row["dead"] = float(1.0 - positive.mean())
        elif act in SIGMOID_LIKE and a.size:
            row["saturated"] = float(np.mean((a < SATURATION) | (a > 1 - SATURATION)))
        elif act in TANH_LIKE and a.size:
            row["saturated"] = float(np.mean(np.abs(a) > 1 - SATURATION))
        weights = layer.trainable_weights
        if weights:
            row["weight_norm"] = _norm(weights)
            present = [g for g in grads if g is not None]
            row["grad_norm"] = _norm(present) if present else 0.0
        return row


def probe_arrays(split: Any, rows: int) -> tuple[Any, Any]:
    """``(x, y)`` of the first ``rows`` rows of a split, as the model takes them."""
    x = {k: v[:rows] for k, v in split.x.items()}
    y = split.y
    y = {k: v[:rows] for k, v in y.items()} if isinstance(y, dict) else (
        None if y is None else y[:rows])
    return x, y


# -- the training-time callbacks ------------------------------------------------------------
def tensorboard_callback(option: Any, run: Any) -> Any:
    """``keras.callbacks.TensorBoard`` writing into ``RUN/tensorboard`` with the options of
    ``training.callbacks.tensorboard`` (``true``: the defaults).

    Example:
        >>> tensorboard_callback(TensorBoard(histogram_freq=1), RunDir("run")).histogram_freq
        ...                                                          # doctest: +SKIP
        1
    """
    import keras

    from kspec.spec.training import TensorBoard

    opts = option if isinstance(option, TensorBoard) else TensorBoard()
    profile = opts.profile_batch if isinstance(opts.profile_batch, int) else tuple(
        opts.profile_batch)
    return keras.callbacks.TensorBoard(
        str(run.tensorboard_dir), histogram_freq=opts.histogram_freq,
        write_graph=opts.write_graph, write_images=opts.write_images,
        write_steps_per_second=opts.write_steps_per_second, update_freq=opts.update_freq,
        profile_batch=profile)


def diagnostics_options(spec: Spec) -> Any:
    """``training.diagnostics`` as options, or None when it is off."""
    from kspec.spec.training import Diagnostics

    d = spec.training.diagnostics
    if isinstance(d, Diagnostics):
        return d
    return Diagnostics() if d else None


def diagnostics_callbacks(spec: Spec, run: Any, train_split: Any, *,
                          tag: str = "") -> list[Any]:
    """The callbacks that record ``training.diagnostics`` (an empty list when it is off).

    Args:
        spec: the resolved spec.
        run: the run directory (``kspec.rundir.RunDir``); ``diagnostics.csv`` and
            ``diagnostics.png`` go there
            (``diagnostics_TAG.*`` for an ensemble member), and TensorBoard summaries into
            ``tensorboard/diagnostics`` when ``training.callbacks.tensorboard`` is on.
        train_split: the training split; the probe is its first rows.
        tag: names the files of one model among several (ensemble members).

    Example:
        >>> cbs = diagnostics_callbacks(spec, RunDir(run_dir), data.train)  # doctest: +SKIP
        >>> model.fit(..., callbacks=cbs)                           # doctest: +SKIP
    """
    opts = diagnostics_options(spec)
    if opts is None or train_split is None:
        return []
    rows = opts.probe_batches * (opts.batch_size or spec.training.batch_size)
    x, y = probe_arrays(train_split, rows)
    tb = spec.training.callbacks.tensorboard
    tb_dir = run.diagnostics_tensorboard_dir(tag)
    return [_callback_class()(x, y, run.diagnostics_csv(tag), run.diagnostics_png(tag),
                              every=opts.every, tensorboard=tb_dir if tb else None,
                              histograms=opts.histograms, title=spec.name)]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``diagnostics.csv``, numbers as floats (empty cells as NaN).

    Example:
        >>> rows = read_rows(RunDir(run.run_dir).diagnostics_csv())      # doctest: +SKIP
        >>> [r["grad_norm"] for r in rows if r["layer"] == "dense_1"]  # doctest: +SKIP
        [0.594, 0.476, 0.399]
    """
    out = []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            parsed: dict[str, Any] = dict(row)
            for key in ("mean", "std", "dead", "saturated", "grad_norm", "weight_norm",
                        "update_ratio"):
                parsed[key] = float(row[key]) if row.get(key) not in (None, "") else math.nan
            parsed["epoch"] = int(row["epoch"])
            parsed["units"] = int(row["units"])
            parsed["identical"] = row.get("identical") == "True"
            out.append(parsed)
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _callback_class():
    import keras

    class LayerDiagnostics(keras.callbacks.Callback):
        """Record per-layer statistics at initialization and every ``every`` epochs."""

        def __init__(self, x, y, csv_path: Path, png_path: Path, *, every: int = 1,
                     tensorboard: Path | None = None, histograms: bool = True,
                     title: str = ""):
            super().__init__()
            self.x, self.y = x, y
            self.csv_path, self.png_path = Path(csv_path), Path(png_path)
            self.every, self.title = every, title
            self.tensorboard, self.histograms = tensorboard, histograms
            self._probe: Probe | None = None
            self._writer = None
            self._first_epoch = True
            self._before: tuple[int, dict[str, list[np.ndarray]]] | None = None
            self._ratios: dict[str, float] = {}

        # Keras calls batch hooks only of callbacks that define them; this one does its
        # work in the first call of a probed epoch and returns at once after that.
        def on_train_begin(self, logs=None):
            self._probe = Probe(self.model, histograms=bool(self.tensorboard)
                                and self.histograms)
            if self.tensorboard is not None:
                import tensorflow as tf

                self._writer = tf.summary.create_file_writer(str(self.tensorboard))

        def _due(self, epochs_done: int) -> bool:
            return epochs_done % self.every == 0

        def on_epoch_begin(self, epoch, logs=None):
            if self._first_epoch and epoch == 0:
                self._record(0, {})
            self._first_epoch = False
            if self._due(epoch + 1):
                self._before = (int(self.model.optimizer.iterations.numpy()), {
                    layer.name: [_numpy(w).copy() for w in layer.trainable_weights]
                    for layer in self._probe.layers if layer.trainable_weights})

        def on_train_batch_end(self, batch, logs=None):
            if self._before is None:
                return
            start, weights = self._before
            self._before = None
            steps = int(self.model.optimizer.iterations.numpy()) - start
            if steps <= 0:
                return
            layers = {layer.name: layer for layer in self._probe.layers}
            for name, old in weights.items():
                new = layers[name].trainable_weights
                denom = _norm(old)
                change = _norm([_numpy(n) - o for n, o in zip(new, old)])
                # Several steps may run in one call (steps_per_execution): per step.
                self._ratios[name] = change / steps / denom if denom > 0 else math.nan

        def on_epoch_end(self, epoch, logs=None):
            if self._due(epoch + 1):
                self._record(epoch + 1, self._ratios)
            self._ratios = {}

        def on_train_end(self, logs=None):
            if self._writer is not None:
                self._writer.flush()
            if self.csv_path.is_file():
                from kspec.train.plots import plot_diagnostics

                plot_diagnostics(read_rows(self.csv_path), self.png_path, title=self.title)

        def _record(self, epoch: int, ratios: dict[str, float]) -> None:
            rows = self._probe(self.x, self.y)
            new = not self.csv_path.is_file()
            with self.csv_path.open("a", newline="") as f:
                w = csv.DictWriter(f, COLUMNS)
                if new:
                    w.writeheader()
                for row in rows:
                    row = {**row, "epoch": epoch, "update_ratio": ratios.get(row["layer"],
                                                                             math.nan)}
                    w.writerow({k: _cell(v) for k, v in row.items()})
            if self._writer is not None:
                self._summaries(epoch, rows, ratios)

        def _summaries(self, epoch: int, rows: list[dict], ratios: dict[str, float]) -> None:
            import tensorflow as tf

            with self._writer.as_default(step=epoch):
                for row in rows:
                    name = row["layer"]
                    for key in ("std", "mean", "dead", "saturated", "grad_norm", "weight_norm"):
                        if not math.isnan(row[key]):
                            tf.summary.scalar(f"{key}/{name}", row[key])
                    if not math.isnan(ratios.get(name, math.nan)):
                        tf.summary.scalar(f"update_ratio/{name}", ratios[name])
                    for kind, values in self._probe.last_values.get(name, {}).items():
                        if values.size:
                            tf.summary.histogram(f"{kind}/{name}", values)

    return LayerDiagnostics
