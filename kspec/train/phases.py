"""Training in phases: each phase sets what is trainable, its optimizer and its epochs.

Transfer learning in two steps (frozen base, then the last layers unfrozen with a lower
learning rate) is two phases::

    training:
      phases:
        - {name: head, trainable: head, epochs: 5, optimizer: {type: adam, learning_rate: 1e-3}}
        - {name: fine_tune, trainable: {last: 2}, epochs: 5,
           optimizer: {type: adam, learning_rate: 1e-4}}

Changing what is trainable needs a fresh compile, so each phase compiles the model again
with its own optimizer; epochs continue counting across phases in the history.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from kspec.errors import SpecError


def default_phases(spec: Any) -> list[dict[str, Any]]:
    """The phases of a spec as plain records (one implicit phase when none are given)."""
    t = spec.training
    if not t.phases:
        return [{"name": "train", "trainable": None, "epochs": t.epochs, "optimizer": None,
                 "path": "training"}]
    return [{"name": p.name or f"phase_{i}", "trainable": p.trainable,
             "epochs": p.epochs or t.epochs, "optimizer": p.optimizer,
             "path": f"training.phases[{i}]"} for i, p in enumerate(t.phases)]


def _has_weights(layer: Any) -> bool:
    # Weights a phase can train: fitted statistics (normalization, BN moving averages) are
    # non-trainable variables and do not make a layer count.
    return any(getattr(v, "trainable", False) for v in layer.weights)


def _set_all(layer: Any, value: bool) -> None:
    """Set ``trainable`` on a layer and, explicitly, on every layer nested in it.

    Setting it on a nested model that already has that flag does not reach inner layers
    an earlier phase changed, so each one is set.
    """
    layer.trainable = value
    for inner in getattr(layer, "layers", ()):
        if inner is not layer:
            _set_all(inner, value)


def _frozen_bases(spec: Any) -> set[str]:
    """Names of the bases that start frozen (their batch norm stays in inference mode)."""
    m = spec.model
    if m.is_graph:
        return {b.name for b in m.blocks if b.base is not None and not b.base.trainable}
    return {"base"} if m.base is not None and not m.base.trainable else set()


def _walk(layer: Any):
    for inner in getattr(layer, "layers", ()):
        if inner is not layer:
            yield inner
            yield from _walk(inner)


def keep_batch_norm_frozen(model: Any, spec: Any) -> None:
    """Freeze every batch-norm layer inside a base that started frozen.

    A Keras 3 BatchNormalization layer with ``trainable=False`` runs in inference mode, so
    its moving statistics stay those of the pre-training. Calling the base with
    ``training=False`` is not enough in Keras 3: ``fit`` passes ``training=True`` through the
    outer model and overrides it (keras-team/keras#20285).
    """
    import keras

    for name in _frozen_bases(spec):
        for layer in _walk(model.get_layer(name)):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False


def set_trainable(model: Any, spec: Any, selector: Any, path: str,
                  head_state: dict[str, bool]) -> None:
    """Make trainable what ``selector`` names (see :class:`kspec.spec.training.Phase`).

    ``head_state`` holds the trainable flag each top-level layer was built with, so that a
    layer the spec froze (``trainable: false``) stays frozen in every phase.
    """
    bases = spec.model.base_names()
    for layer in model.layers:
        if layer.name in head_state and layer.name not in bases:
            layer.trainable = head_state[layer.name]
    if selector == "all":
        for name in bases:
            _set_all(model.get_layer(name), True)
        keep_batch_norm_frozen(model, spec)
        return
    if not bases:
        if getattr(selector, "pattern", None) is not None:
            names = [layer.name for layer in model.layers]
            _by_pattern(model.layers, selector.pattern, names, path)
            return
        raise SpecError(f"{path}.trainable", "this model has no transfer base to freeze",
                        value=selector if isinstance(selector, str) else selector.model_dump(),
                        valid="'all', a pattern, or add model.base / a block with 'base'")
    for name in bases:
        base = model.get_layer(name)
        if selector == "head":
            _set_all(base, False)
            continue
        inner = list(getattr(base, "layers", [base]))
        _set_all(base, True)  # the selector then freezes the rest
        if getattr(selector, "last", None) is not None:
            # Batch norm of a frozen base stays frozen, so it is not one of the N.
            skip_bn = name in _frozen_bases(spec)
            weighted = [layer for layer in inner if _has_weights(layer) and not (
                skip_bn and type(layer).__name__ == "BatchNormalization")]
            keep = {id(layer) for layer in weighted[-selector.last:]}  # all when N > count
            for layer in inner:
                if layer is not base:
                    layer.trainable = id(layer) in keep
        else:
            names = [layer.name for layer in inner]
            _by_pattern([la for la in inner if la is not base], selector.pattern, names, path)
    keep_batch_norm_frozen(model, spec)


def _by_pattern(layers: list, pattern: str | list[str], names: list[str], path: str) -> None:
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    matched = 0
    for layer in layers:
        on = any(re.search(p, layer.name) for p in patterns)
        if _has_weights(layer):
            layer.trainable = on
            matched += on
    if not matched:
        raise SpecError(f"{path}.trainable.pattern", f"no layer with weights matches {patterns}",
                        valid=names)


def run_phases(model: Any, spec: Any, fit_one: Callable[..., Any],
               compile_fn: Callable[..., Any]) -> tuple[dict[str, list[float]], list[dict]]:
    """Train ``model`` phase by phase.

    Args:
        model: the built, compiled model.
        spec: the validated spec.
        fit_one: ``fit_one(phase_index, initial_epoch, epochs) -> keras History``.
        compile_fn: ``compile_fn(optimizer_ref, optimizer_path)`` recompiles the model.

    Returns:
        The history of all phases joined, and one record per phase (name, epochs, number
        of trainable weights).
    """
    phases = default_phases(spec)
    inner = getattr(model, "inner", model)  # the uncertainty-weighting wrapper's model
    head_state = {layer.name: layer.trainable for layer in inner.layers}
    history: dict[str, list[float]] = {}
    records = []
    done = 0
    for i, phase in enumerate(phases):
        if phase["trainable"] is not None:
            set_trainable(inner, spec, phase["trainable"], phase["path"], head_state)
            opt_path = (f"{phase['path']}.optimizer" if phase["optimizer"] is not None
                        else "training.optimizer")
            compile_fn(phase["optimizer"], opt_path)
        result = fit_one(i, done, done + phase["epochs"])
        ran = len(next(iter(result.history.values()), []))
        for key, values in result.history.items():
            history.setdefault(key, [float("nan")] * done)
            history[key].extend(float(v) for v in values)
        for key in history:  # a metric missing in this phase keeps the columns aligned
            history[key].extend([float("nan")] * (done + ran - len(history[key])))
        records.append({"name": phase["name"], "first_epoch": done + 1, "epochs": ran,
                        "trainable_weights": len(model.trainable_weights)})
        done += ran
    return history, records
