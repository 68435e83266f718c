"""Learned uncertainty weighting of several task losses (Kendall, Gal & Cipolla, CVPR 2018).

Each task ``i`` gets a learned log-variance ``s_i``; the total loss is
``sum_i exp(-s_i) * L_i + s_i``. A task with a large, noisy loss learns a large ``s_i``
(a small weight), and the ``+ s_i`` term stops every weight from collapsing to zero.

How to use it (the fit code does this when a spec asks for it)::

    model = build_model(spec)                     # a functional model with named outputs
    weighted = with_uncertainty_weighting(model, {"age": "mse", "kind": "bce"})
    weighted.compile(optimizer="adam", metrics={"kind": ["accuracy"]})
    weighted.fit(x, {"age": y_age, "kind": y_kind})
    weighted.task_weights()                       # {"age": exp(-s_age), "kind": ...}

``compile`` gets no ``loss`` (the wrapper computes it); targets are a dict by output name.
The wrapper saves to ``.keras`` and loads with ``safe_mode=True``; ``weighted.inner`` is the
plain model for export.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import keras
from keras import ops


def uncertainty_weighted_total(losses: Sequence[Any], log_variances: Any):
    """``sum_i exp(-s_i) * L_i + s_i`` for task losses ``L`` and log-variances ``s``.

    Example:
        >>> import numpy as np
        >>> round(float(uncertainty_weighted_total([2.0, 1.0], np.log([2.0, 0.5]))), 4)
        3.0
    """
    s = ops.convert_to_tensor(log_variances)
    stacked = ops.cast(ops.stack([ops.convert_to_tensor(v) for v in losses]), s.dtype)
    return ops.sum(ops.exp(-s) * stacked + s)


@keras.saving.register_keras_serializable(package="kspec")
class UncertaintyWeighting(keras.layers.Layer):
    """Holds one learned log-variance per task and combines task losses with them.

    Args:
        tasks: the task (output) names, in the order losses are given.
        initial_log_variance: starting ``s`` for every task (0: every weight 1).
    """

    def __init__(self, tasks: Sequence[str], initial_log_variance: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if len(tasks) < 2:
            raise ValueError(f"uncertainty weighting combines at least 2 task losses; "
                             f"received tasks={list(tasks)!r}")
        self.tasks = list(tasks)
        self.initial_log_variance = float(initial_log_variance)
        self.log_variances = self.add_weight(
            shape=(len(self.tasks),),
            initializer=keras.initializers.Constant(self.initial_log_variance),
            name="log_variances",
        )

    def call(self, losses):
        return uncertainty_weighted_total(list(losses), self.log_variances)

    def task_weights(self) -> dict[str, float]:
        """The current weight ``exp(-s_i)`` of each task."""
        values = keras.ops.convert_to_numpy(ops.exp(-self.log_variances))
        return {t: float(v) for t, v in zip(self.tasks, values)}

    def get_config(self):
        return {**super().get_config(), "tasks": self.tasks,
                "initial_log_variance": self.initial_log_variance}


@keras.saving.register_keras_serializable(package="kspec")
class UncertaintyWeightedModel(keras.Model):
    """A multi-output model trained on the uncertainty-weighted sum of its task losses.

    Args:
        inner: a functional model whose outputs are named (``inner.output_names``).
        losses: one loss per output name (Keras loss objects, names or configs).
        initial_log_variance: starting log-variance of every task.

    Calling the wrapper returns ``{output_name: prediction}``.
    """

    def __init__(self, inner, losses: Mapping[str, Any], initial_log_variance: float = 0.0,
                 **kwargs):
        kwargs.setdefault("name", f"{inner.name}_uncertainty")
        super().__init__(**kwargs)
        if isinstance(inner, dict):
            inner = keras.saving.deserialize_keras_object(inner)
        names = list(inner.output_names)
        missing = [n for n in names if n not in losses]
        unknown = [n for n in losses if n not in names]
        if missing or unknown:
            raise ValueError(f"uncertainty weighting needs one loss per model output "
                             f"{names}; missing {missing}, unknown {unknown}")
        self.inner = inner
        self.output_keys = names
        self.task_losses = {n: _as_loss(losses[n], n) for n in names}
        # float32 under mixed precision too: it combines float32 losses into the loss.
        self.weighting = UncertaintyWeighting(names, initial_log_variance, name="weighting",
                                              dtype="float32")
        self.built = True  # the inner model is built; nothing else has a shape to learn

    def call(self, inputs, training=None):
        out = self.inner(self._as_inner_inputs(inputs), training=training)
        if isinstance(out, dict):
            return out
        out = out if isinstance(out, (list, tuple)) else [out]
        return dict(zip(self.output_keys, out))

    def _as_inner_inputs(self, inputs):
        """Inputs in the structure the inner functional model was built with (a tensor, a
        list or a dict), so Keras does not warn that the structure differs."""
        names = [t.name for t in self.inner.inputs]
        if isinstance(inputs, dict):
            flat = [inputs[n] for n in names] if all(n in inputs for n in names) else None
        elif isinstance(inputs, (list, tuple)):
            flat = list(inputs)
        else:
            flat = [inputs]
        if flat is None or len(flat) != len(names):
            return inputs
        struct = getattr(self.inner, "_inputs_struct", None)  # how the model was declared
        if isinstance(struct, dict):
            return dict(zip(names, flat))
        if isinstance(struct, (list, tuple)):
            return list(flat)
        return flat[0] if len(flat) == 1 else list(flat)

    def _by_name(self, values):
        if isinstance(values, dict):
            return values
        values = values if isinstance(values, (list, tuple)) else [values]
        return dict(zip(self.output_keys, values))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        y, y_pred = self._by_name(y), self._by_name(y_pred)
        sw = self._by_name(sample_weight) if isinstance(sample_weight, (dict, list, tuple)) \
            else {n: sample_weight for n in self.output_keys}
        per_task = [self.task_losses[n](y[n], y_pred[n], sw.get(n)) for n in self.output_keys]
        total = self.weighting(per_task)
        for extra in self.losses:  # regularization penalties of the inner layers
            total = total + ops.cast(extra, total.dtype)
        return total

    def task_weights(self) -> dict[str, float]:
        """The current learned weight ``exp(-s)`` of each output's loss."""
        return self.weighting.task_weights()

    def get_config(self):
        return {
            "name": self.name,
            "inner": keras.saving.serialize_keras_object(self.inner),
            "losses": {n: keras.losses.serialize(v) for n, v in self.task_losses.items()},
            "initial_log_variance": self.weighting.initial_log_variance,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("inner"),
                                                      custom_objects=custom_objects)
        losses = {n: keras.losses.deserialize(v, custom_objects=custom_objects)
                  for n, v in config.pop("losses").items()}
        return cls(inner, losses, **config)


def _as_loss(ref: Any, output: str):
    """A ``keras.losses.Loss`` object from a Loss, a Keras config or a kspec loss reference
    (``"mse"``, ``{type: huber, delta: 2}``): the per-task value must come back reduced."""
    if isinstance(ref, keras.losses.Loss):
        return ref
    if isinstance(ref, dict) and "class_name" in ref:
        return keras.losses.deserialize(ref)
    if isinstance(ref, (str, dict)):
        from kspec.registry import LOSSES, load_builtins

        load_builtins()
        loss = LOSSES.build(ref, f"training.loss.{output}")
        if isinstance(loss, keras.losses.Loss):
            return loss
    raise ValueError(f"uncertainty weighting needs a keras.losses.Loss for output {output!r}; "
                     f"received {ref!r}")


def with_uncertainty_weighting(model, losses: Mapping[str, Any],
                               initial_log_variance: float = 0.0) -> UncertaintyWeightedModel:
    """Wrap a multi-output ``model`` so that it trains on uncertainty-weighted task losses.

    Args:
        model: a functional model with named outputs.
        losses: ``{output_name: loss}``, one per output (Keras loss objects or names).
        initial_log_variance: starting ``s`` of every task.

    Returns:
        An uncompiled :class:`UncertaintyWeightedModel`; compile it without ``loss``.

    Example:
        >>> inp = keras.Input((3,), name="x")
        >>> model = keras.Model(inp, [keras.layers.Dense(1, name="a")(inp),
        ...                           keras.layers.Dense(1, name="b")(inp)])
        >>> weighted = with_uncertainty_weighting(model, {"a": "mse", "b": "mae"})
        >>> weighted.task_weights()
        {'a': 1.0, 'b': 1.0}
    """
    return UncertaintyWeightedModel(model, losses, initial_log_variance)


def from_spec(model, spec) -> UncertaintyWeightedModel:
    """Wrap ``model`` as ``training.loss_weighting: uncertainty`` asks, with spec paths on
    errors. The caller compiles the result with the optimizer and metrics and no loss.

    Raises:
        SpecError: fewer than two outputs, fixed ``loss_weights`` given as well, or an
            unknown loss.

    Example:
        >>> weighted = from_spec(build_model(spec), spec)  # doctest: +SKIP
        >>> weighted.compile(optimizer=..., metrics=...)    # doctest: +SKIP
    """
    from kspec.errors import SpecError
    from kspec.registry import LOSSES, load_builtins

    load_builtins()
    t = spec.training
    outputs = list(model.output_names)
    if len(outputs) < 2:
        raise SpecError("training.loss_weighting", "uncertainty weighting balances the losses "
                        f"of several outputs; this model has one ({outputs[0]!r})",
                        value="uncertainty", valid="fixed, or a model with two or more outputs")
    if t.loss_weights:
        raise SpecError("training.loss_weights", "fixed loss_weights cannot be combined with "
                        "loss_weighting: uncertainty (the weights are learned)",
                        value=t.loss_weights)
    if isinstance(t.loss, dict) and "type" not in t.loss:
        refs = {n: (t.loss.get(n), f"training.loss.{n}") for n in outputs}
        missing = [n for n, (ref, _) in refs.items() if ref is None]
        if missing:
            raise SpecError("training.loss", f"no loss for output(s) {missing}", valid=outputs)
    else:
        refs = {n: (t.loss, "training.loss") for n in outputs}
    losses = {n: LOSSES.build(ref, path) for n, (ref, path) in refs.items()}
    return UncertaintyWeightedModel(model, losses)
