"""Weight regularizers by name (for kernel_, bias_ and activity_regularizer).

Decoupled weight decay is an optimizer setting instead: ``{type: adamw, weight_decay: 0.01}``.
"""

from __future__ import annotations

from kspec.registry import REGULARIZERS


@REGULARIZERS.register("l1", aliases=("lasso",))
def l1(l1: float = 0.01):
    """L1 penalty l1*sum(|w|) (sparse weights)"""
    import keras

    return keras.regularizers.L1(l1=l1)


@REGULARIZERS.register("l2", aliases=("weight_decay", "ridge"))
def l2(l2: float = 0.01):
    """L2 penalty l2*sum(w^2) (weight decay)"""
    import keras

    return keras.regularizers.L2(l2=l2)


@REGULARIZERS.register("l1_l2", aliases=("elastic_net",))
def l1_l2(l1: float = 0.01, l2: float = 0.01):
    """L1 and L2 penalties together"""
    import keras

    return keras.regularizers.L1L2(l1=l1, l2=l2)


@REGULARIZERS.register("orthogonal", tags=("kernel_only",))
def orthogonal(factor: float = 0.01, mode: str = "rows"):
    """penalty factor*|W W^T - I| pushing the rows (or columns) of a 2-D kernel apart"""
    import keras

    if mode not in ("rows", "columns"):
        raise ValueError(f"mode must be 'rows' or 'columns'; received {mode!r}")
    return keras.regularizers.OrthogonalRegularizer(factor=factor, mode=mode)
