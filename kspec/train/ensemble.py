"""Ensembles and bagging: K members of one spec averaged into a single Keras model.

Each member is the spec's model built with its own seed (``seed + k`` unless
``ensemble.seeds`` says otherwise) and, with ``bootstrap: true``, trained on a bootstrap
sample of the training split. The members become nested models of one functional model
whose outputs are the element-wise mean of the members' outputs (probabilities for
classifiers, values for regressors), so it saves, loads and exports like any other model.
Members are trained by :func:`kspec.train.loop.train_ensemble`; this module holds the parts
that do not train: seeds, bootstrap samples, the combined model, the mean history.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from kspec.spec import Spec


def member_seeds(spec: Spec) -> list[int]:
    """The seed of every member."""
    e = spec.ensemble
    return list(e.seeds) if e.seeds is not None else [spec.seed + k for k in range(e.members)]


def bootstrap(split: Any, seed: int) -> Any:
    """A sample of ``len(split)`` rows drawn with replacement (bagging)."""
    rng = np.random.default_rng(seed)
    return split.take(rng.integers(0, len(split), size=len(split)))


def combine(members: Sequence[Any], name: str = "ensemble"):
    """One model whose outputs average the members' outputs, output by output.

    Args:
        members: built models with the same inputs and outputs (names and shapes).
        name: the combined model's name.

    Example:
        >>> model = combine([model_a, model_b])  # doctest: +SKIP
        >>> model.output_names == model_a.output_names  # doctest: +SKIP
        True
    """
    import keras

    from kspec.compiler.precision import output_dtype

    first = members[0]
    dtype = output_dtype()  # the mean of float32 outputs stays float32 under mixed precision
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name.split(":")[0])
              for t in first.inputs]
    for k, m in enumerate(members):
        m.name = f"member_{k}"
    args = inputs[0] if len(inputs) == 1 else inputs
    results = [m(args) for m in members]
    names = list(first.output_names)
    if len(names) == 1:
        outputs = keras.layers.Average(name=names[0], dtype=dtype)(
            [r[0] if isinstance(r, (list, tuple)) else r for r in results])
    else:
        outputs = [keras.layers.Average(name=out, dtype=dtype)([r[j] for r in results])
                   for j, out in enumerate(names)]
    return keras.Model(inputs, outputs, name=name)


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Epoch-wise mean over members (up to the shortest member, if early stopping differed)."""
    keys = set.intersection(*(set(h) for h in histories)) if histories else set()
    out = {}
    for key in sorted(keys):
        n = min(len(h[key]) for h in histories)
        out[key] = [float(np.mean([h[key][i] for h in histories])) for i in range(n)]
    return out


def members_table(members: list[dict], metrics: dict[str, dict[str, float]]) -> list[str]:
    """Lines comparing each member, their mean and the ensemble (for ``Run.summary``)."""
    split = next((s for s in ("test", "validation", "train") if s in metrics), None)
    if split is None:
        return []
    names = sorted(metrics[split])
    lines = [f"{split} metrics by member", f"{'model':<16}" + "".join(f"{n:>16}" for n in names)]
    for m in members:
        row = m["metrics"].get(split, {})
        lines.append(f"{'member ' + str(m['member']):<16}" +
                     "".join(f"{row.get(n, float('nan')):>16.4f}" for n in names))
    mean = {n: float(np.mean([m["metrics"][split][n] for m in members])) for n in names}
    lines.append(f"{'member mean':<16}" + "".join(f"{mean[n]:>16.4f}" for n in names))
    lines.append(f"{'ensemble':<16}" + "".join(f"{metrics[split][n]:>16.4f}" for n in names))
    return lines
