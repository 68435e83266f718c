"""Initializers by name (Keras's names, plus Xavier/LeCun aliases and fixed conv kernels).

Fixed kernels are the classic image filters (identity, Sobel/Prewitt/Scharr edges,
Laplacian, sharpen, box and Gaussian blur; :mod:`kspec.kernels`) placed into a conv2d kernel
by :class:`kspec.components.initializers.FixedKernel`; freeze the layer to keep them fixed.

Tags used by the linter: ``constant`` (every unit starts equal), ``he`` (for ReLU-like
activations), ``glorot`` (for tanh/sigmoid), ``lecun`` (for selu), ``fixed_kernel`` (a named
image filter for conv2d kernels).
"""

from __future__ import annotations

from kspec.kernels import ALIASES, DESCRIPTIONS, NAMES
from kspec.registry import INITIALIZERS


def _keras(cls_name: str):
    def factory(**params):
        import keras

        return getattr(keras.initializers, cls_name)(**params)

    return factory


def _reg(name, cls_name, doc, params, aliases=(), tags=()):
    INITIALIZERS.register(
        name, _keras(cls_name), description=doc, params=params, aliases=aliases, tags=tags
    )


_SEED = ("seed",)
_reg("zeros", "Zeros", "all zeros (every unit gets the same gradient: flagged on hidden layers)",
     (), aliases=("zero",), tags=("constant",))
_reg("ones", "Ones", "all ones (constant: flagged on hidden layers)", (), tags=("constant",))
_reg("constant", "Constant", "a constant value (flagged on hidden layers)", ("value",),
     tags=("constant",))
_reg("random_uniform", "RandomUniform", "uniform in [minval, maxval]; pick the scale",
     ("minval", "maxval", *_SEED), aliases=("uniform",))
_reg("random_normal", "RandomNormal", "normal with mean and stddev; pick the scale",
     ("mean", "stddev", *_SEED), aliases=("normal",))
_reg("truncated_normal", "TruncatedNormal", "normal truncated at two standard deviations",
     ("mean", "stddev", *_SEED))
_reg("glorot_uniform", "GlorotUniform", "Xavier/Glorot uniform: variance 2/(fan_in+fan_out)",
     _SEED, aliases=("xavier_uniform",), tags=("glorot",))
_reg("glorot_normal", "GlorotNormal", "Xavier/Glorot normal: variance 2/(fan_in+fan_out)",
     _SEED, aliases=("xavier_normal",), tags=("glorot",))
_reg("he_uniform", "HeUniform", "He/Kaiming uniform: variance 2/fan_in (ReLU family)", _SEED,
     aliases=("kaiming_uniform",), tags=("he",))
_reg("he_normal", "HeNormal", "He/Kaiming normal: variance 2/fan_in (ReLU family)", _SEED,
     aliases=("kaiming_normal",), tags=("he",))
_reg("lecun_uniform", "LecunUniform", "LeCun uniform: variance 1/fan_in", _SEED,
     tags=("lecun",))
_reg("lecun_normal", "LecunNormal", "LeCun normal: variance 1/fan_in (pairs with selu)", _SEED,
     tags=("lecun",))
_reg("orthogonal", "Orthogonal", "random orthogonal matrix times gain", ("gain", *_SEED))
_reg("identity", "Identity", "identity matrix times gain (square 2-D kernels)", ("gain",),
     aliases=("eye",), tags=("dense_only",))
_reg("variance_scaling", "VarianceScaling",
     "scale/fan with mode fan_in|fan_out|fan_avg and distribution truncated_normal|"
     "untruncated_normal|uniform", ("scale", "mode", "distribution", *_SEED))


def _fixed(name: str):
    def factory(channels: str = "per_channel", scale: float = 1.0, **extra):
        from kspec.components.initializers import FixedKernel

        if channels not in ("per_channel", "mean"):
            raise ValueError(f"channels must be 'per_channel' or 'mean'; received {channels!r}")
        return FixedKernel(name, channels=channels, scale=scale, sigma=extra.get("sigma"))

    return factory


for _name in NAMES:
    INITIALIZERS.register(
        _name, _fixed(_name), description=DESCRIPTIONS[_name],
        aliases=ALIASES.get(_name, ()), tags=("fixed_kernel",),
        params=("channels", "scale", "sigma") if _name == "gaussian_blur"
        else ("channels", "scale"),
    )
