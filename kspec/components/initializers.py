"""Fixed convolution kernels (edge detectors, blurs, sharpen, identity) as initializers."""

from __future__ import annotations

import keras
from keras import ops

from kspec.kernels import conv_kernel


@keras.saving.register_keras_serializable(package="kspec")
class FixedKernel(keras.initializers.Initializer):
    """A named image filter placed into a conv2d kernel; freeze the layer to keep it fixed.

    Args:
        kernel: the filter's name (``sobel_x``, ``gaussian_blur``, ... see
            :mod:`kspec.compiler.initializers`).
        channels: ``per_channel`` (output ``o`` filters input channel ``o % in``) or
            ``mean`` (every output filters the mean of the input channels).
        sigma: Gaussian blur only: the standard deviation in pixels (default: binomial
            weights, the classic [1 2 1] x [1 2 1] / 16 for 3x3).
        scale: multiply the filter by this factor.

    Example:
        >>> round(float(FixedKernel("box_blur")((3, 3, 1, 1))[1, 1, 0, 0]), 4)
        0.1111
    """

    def __init__(self, kernel: str = "identity_kernel", channels: str = "per_channel",
                 sigma: float | None = None, scale: float = 1.0):
        self.kernel = kernel
        self.channels = channels
        self.sigma = sigma
        self.scale = scale

    def __call__(self, shape, dtype=None):
        value = conv_kernel(self.kernel, tuple(shape), self.channels, self.sigma, self.scale)
        return ops.convert_to_tensor(value, dtype=dtype or keras.config.floatx())

    def get_config(self):
        return {"kernel": self.kernel, "channels": self.channels, "sigma": self.sigma,
                "scale": self.scale}
