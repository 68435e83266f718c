"""Activations by name. Plain names build to Keras's own string (serializes by name);
parametrized or learned activations build to a layer applied after the weights.

Tags used by the linter: ``relu_like`` (pair with He initializers), ``saturating``
(sigmoid/tanh: pair with Glorot), ``probability`` (outputs usable as probabilities),
``layer`` (built as a layer after the weights), ``positive`` (outputs > 0).
"""

from __future__ import annotations

from kspec.registry import ACTIVATIONS

_PLAIN = {
    "sigmoid": ("logistic function 1/(1+e^-x); outputs in (0, 1)", ("logistic",),
                ("saturating", "probability", "positive")),
    "tanh": ("hyperbolic tangent; zero-centred outputs in (-1, 1)", (), ("saturating",)),
    "relu": ("rectified linear unit max(0, x)", (), ("relu_like",)),
    "relu6": ("ReLU capped at 6", (), ("relu_like",)),
    "softmax": ("normalized exponentials over the last axis (class probabilities)", (),
                ("probability", "positive")),
    "log_softmax": ("logarithm of softmax", (), ()),
    "elu": ("exponential linear unit: x for x>0, e^x-1 otherwise", (), ("relu_like",)),
    "selu": ("scaled ELU (self-normalizing networks; pair with lecun_normal)", (),
             ("self_normalizing",)),
    "gelu": ("Gaussian error linear unit x*Phi(x)", (), ("relu_like",)),
    "swish": ("x*sigmoid(x) (also called SiLU)", ("silu",), ("relu_like",)),
    "softplus": ("log(1+e^x), a smooth ReLU", (), ("relu_like", "positive")),
    "softsign": ("x/(1+|x|)", (), ("saturating",)),
    "linear": ("identity: no non-linearity", ("identity", "none"), ()),
    "hard_sigmoid": ("piecewise-linear approximation of sigmoid", (),
                     ("saturating", "probability", "positive")),
    "exponential": ("e^x", (), ("positive",)),
    "mish": ("x*tanh(softplus(x))", (), ("relu_like",)),
}


def _plain(name: str):
    def factory() -> str:
        return name

    return factory


for _name, (_doc, _aliases, _tags) in _PLAIN.items():
    ACTIVATIONS.register(_name, _plain(_name), description=_doc, aliases=_aliases, tags=_tags)


@ACTIVATIONS.register("leaky_relu", aliases=("lrelu",), tags=("relu_like", "layer"))
def leaky_relu(negative_slope: float = 0.2):
    """leaky ReLU: x for x>0, negative_slope*x otherwise"""
    import keras

    return keras.layers.LeakyReLU(negative_slope=negative_slope)


@ACTIVATIONS.register("prelu", aliases=("parametric_relu",), tags=("relu_like", "layer"))
def prelu(alpha: float = 0.25, shared_axes: list[int] | None = None):
    """parametric ReLU: leaky ReLU whose slope is learned per unit (He et al. 2015)

    ``alpha`` is the starting slope (0.25 in the paper); ``shared_axes`` shares one slope
    along those axes (``[1, 2]`` after a conv2d: one slope per channel).
    """
    import keras

    return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(alpha),
                              shared_axes=shared_axes)


@ACTIVATIONS.register("maxout", tags=("layer",))
def maxout(pieces: int = 2):
    """maximum over groups of `pieces` units: units=12, pieces=3 gives 4 outputs

    The layer before it computes ``outputs * pieces`` linear features (Goodfellow et al.
    2013); the linter checks that its units/filters divide by ``pieces``.
    """
    from kspec.components.activations import Maxout

    return Maxout(pieces=pieces)
