"""Fixed convolution kernels by name: the classic image filters, in NumPy.

A base module (like :mod:`kspec.errors`): the initializer registry
(:mod:`kspec.compiler.initializers`) names them, the Keras initializer
(:class:`kspec.components.initializers.FixedKernel`) fills conv2d kernels with them, and the
linter checks kernel sizes with :func:`check_size`, all without importing each other.

Example:
    >>> kernel_2d("sobel_x", 3, 3).tolist()
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
"""

from __future__ import annotations

import math

import numpy as np

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
