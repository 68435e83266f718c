"""Parameter counts from shapes, checked before Keras allocates any weight.

Keras creates a layer's weights the moment the layer is called, so ``units: 2147483647``
would ask TensorFlow for gigabytes before any error could name the layer. The compiler
counts each built-in layer's parameters from its input shape first and refuses the layer
that takes the model past ``model.max_params`` (default 100 million), naming it and the
total. User-registered layers and transfer bases are not counted (their sizes are theirs).

Example:
    >>> from kspec.spec.model import Dense
    >>> layer_params(Dense(type="dense", units=10), (None, 64))
    650
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from kspec.errors import SpecError


@dataclass
class _Budget:
    limit: int
    total: int = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "kspec_param_budget", default=None)


@contextlib.contextmanager
def param_budget(limit: int) -> Iterator[None]:
    """Count the parameters of the layers built inside this block against ``limit``."""
    token = _BUDGET.set(_Budget(limit))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _dims(value: Any, rank: int) -> list[int]:
    return list(value) if isinstance(value, (list, tuple)) else [value] * rank


def layer_params(spec: Any, shape: Sequence[int | None]) -> int:
    """Parameters a built-in layer creates on an input of ``shape`` (batch first or not:
    only the last axes are read); 0 for layers without weights or of unknown kinds."""
    kind = getattr(spec, "type", None)
    last = shape[-1] if shape and shape[-1] is not None else 1
    if kind == "dense":
        return spec.units * last + spec.units * spec.use_bias
    if kind in ("conv1d", "conv2d"):
        kernel = math.prod(_dims(spec.kernel_size, 1 if kind == "conv1d" else 2))
        return kernel * last * spec.filters + spec.filters * spec.use_bias
    if kind == "embedding":
        return spec.input_dim * spec.output_dim
    if kind == "batch_norm":
        try:
            channels = shape[spec.axis]
        except IndexError:
            return 0
        return 4 * (channels or 1)
    return 0


def charge(params: int, path: str) -> None:
    """Add a layer's parameters to the model's count; refuse it past the limit."""
    budget = _BUDGET.get()
    if budget is None or params <= 0:
        return
    budget.total += params
    if budget.total > budget.limit:
        total = "" if budget.total == params else f" and takes the model to {budget.total:,}"
        raise SpecError(path, f"this layer has {params:,} parameters{total}, more than "
                        f"model.max_params ({budget.limit:,})",
                        valid="smaller layers, or a larger model.max_params")
