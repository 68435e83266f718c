"""Initializers by name (Keras's names, plus Xavier/LeCun aliases and fixed conv kernels).

Fixed kernels are the classic image filters (identity, Sobel/Prewitt/Scharr edges,
Laplacian, sharpen, box and Gaussian blur) placed into a conv2d kernel by
:class:`kspec.components.initializers.FixedKernel`; freeze the layer to keep them fixed.

Tags used by the linter: ``constant`` (every unit starts equal), ``he`` (for ReLU-like
activations), ``glorot`` (for tanh/sigmoid), ``lecun`` (for selu), ``fixed_kernel`` (a named
image filter for conv2d kernels).
"""

from __future__ import annotations

import math

import numpy as np

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


# -- fixed convolution kernels (NumPy only: the linter checks sizes without Keras) -----------
# 3x3 kernels; larger odd sizes get them embedded in the centre (zero border).
_BASE: dict[str, list[list[float]]] = {
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "prewitt_x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt_y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "scharr_x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr_y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "laplacian": [[0, 1, 0], [1, -4, 1], [0, 1, 0]],
    "laplacian_diagonal": [[1, 1, 1], [1, -8, 1], [1, 1, 1]],
    "edge_detect": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}

DESCRIPTIONS: dict[str, str] = {
    "identity_kernel": "fixed conv kernel: 1 at the centre (output = input; any odd size)",
    "sobel_x": "fixed conv kernel: Sobel horizontal gradient (vertical edges)",
    "sobel_y": "fixed conv kernel: Sobel vertical gradient (horizontal edges)",
    "prewitt_x": "fixed conv kernel: Prewitt horizontal gradient",
    "prewitt_y": "fixed conv kernel: Prewitt vertical gradient",
    "scharr_x": "fixed conv kernel: Scharr horizontal gradient (rotation-accurate Sobel)",
    "scharr_y": "fixed conv kernel: Scharr vertical gradient",
    "laplacian": "fixed conv kernel: 4-neighbour Laplacian (edges in every direction)",
    "laplacian_diagonal": "fixed conv kernel: 8-neighbour Laplacian",
    "edge_detect": "fixed conv kernel: outline detector [-1 ... 8 ... -1]",
    "sharpen": "fixed conv kernel: identity plus negative Laplacian",
    "emboss": "fixed conv kernel: directional relief",
    "box_blur": "fixed conv kernel: mean of the window (any size)",
    "gaussian_blur": "fixed conv kernel: normalized Gaussian (binomial weights, or sigma=)",
}

NAMES = tuple(DESCRIPTIONS)
ALIASES = {"identity_kernel": ("dirac",), "box_blur": ("mean_blur",),
           "edge_detect": ("outline",)}


def check_size(name: str, height: int, width: int) -> str | None:
    """Why ``name`` cannot fill a ``height`` x ``width`` kernel, or None when it can."""
    if name in ("box_blur",):
        return None
    if name == "gaussian_blur" or name == "identity_kernel":
        if height % 2 == 0 or width % 2 == 0:
            return f"{name} needs an odd kernel size (it has a centre); received {height}x{width}"
        return None
    if height < 3 or width < 3 or height % 2 == 0 or width % 2 == 0:
        return (f"{name} is a 3x3 filter; it fits an odd kernel size of at least 3 "
                f"(received {height}x{width})")
    return None


def _binomial(n: int) -> np.ndarray:
    return np.array([math.comb(n - 1, i) for i in range(n)], dtype="float64")


def _gauss_1d(n: int, sigma: float | None) -> np.ndarray:
    if sigma is None:  # binomial weights: the 3x3 case is the classic [1 2 1]/4 per axis
        w = _binomial(n)
    else:
        r = np.arange(n) - (n - 1) / 2
        w = np.exp(-(r**2) / (2.0 * sigma**2))
    return w / w.sum()


def kernel_2d(name: str, height: int, width: int, sigma: float | None = None) -> np.ndarray:
    """The ``height`` x ``width`` filter called ``name``.

    Raises:
        ValueError: unknown name, or a size the filter cannot fill (see :func:`check_size`).

    Example:
        >>> kernel_2d("sobel_x", 3, 3).tolist()
        [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
    """
    if name not in DESCRIPTIONS:
        raise ValueError(f"unknown fixed kernel {name!r}; expected one of {', '.join(NAMES)}")
    problem = check_size(name, height, width)
    if problem:
        raise ValueError(problem)
    if name == "box_blur":
        return np.full((height, width), 1.0 / (height * width))
    if name == "gaussian_blur":
        return np.outer(_gauss_1d(height, sigma), _gauss_1d(width, sigma))
    out = np.zeros((height, width))
    ch, cw = height // 2, width // 2
    if name == "identity_kernel":
        out[ch, cw] = 1.0
        return out
    out[ch - 1:ch + 2, cw - 1:cw + 2] = np.array(_BASE[name], dtype="float64")
    return out


def conv_kernel(name: str, shape: tuple[int, int, int, int], channels: str = "per_channel",
                sigma: float | None = None, scale: float = 1.0) -> np.ndarray:
    """A full conv2d kernel ``(height, width, in, out)`` built from a named filter.

    ``per_channel``: output channel ``o`` filters input channel ``o % in`` (a grey image
    feeds every output; RGB -> 3 outputs filters each colour). ``mean``: every output
    filters the mean of the input channels.
    """
    if len(shape) != 4:
        raise ValueError(f"fixed kernel {name!r} fills conv2d kernels (height, width, in, out); "
                         f"received a weight of shape {tuple(shape)}")
    h, w, cin, cout = (int(d) for d in shape)
    f = kernel_2d(name, h, w, sigma) * scale
    out = np.zeros((h, w, cin, cout))
    if channels == "per_channel":
        for o in range(cout):
            out[:, :, o % cin, o] = f
    elif channels == "mean":
        out[:] = f[:, :, None, None] / cin
    else:
        raise ValueError(f"channels must be 'per_channel' or 'mean'; received {channels!r}")
    return out


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
