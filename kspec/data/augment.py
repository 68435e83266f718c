"""Augmentation steps by name: each builds its (seeded, training-only) Keras layer.

Every function here is the implementation of one entry of ``registry.AUGMENTATIONS``
(registered with its schema in :mod:`kspec.spec.data`) and has the signature
``build(step, *, seed, name, shape, where) -> (layer, output_shape)``: ``shape`` is the
input's shape without the batch (None when unknown), ``where`` the step's spec path for
errors. Entries tagged ``image`` need ``[height, width, channels]`` inputs; the caller checks
that. The layers are random only when the model runs in training mode.
"""

from __future__ import annotations

from typing import Any

from kspec.errors import SpecError

Shape = tuple[int, ...] | None


def gaussian_noise(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    import keras

    return keras.layers.GaussianNoise(step.stddev, seed=seed, name=name), shape


def laplace_noise(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import LaplacianNoise

    return LaplacianNoise(step.scale, seed=seed, name=name), shape


def flip(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomFlip

    return RandomFlip(step.mode, seed=seed, name=name), shape


def rotate(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomRotation

    return RandomRotation(step.factor, fill_mode=step.fill_mode, seed=seed, name=name), shape


def translate(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomTranslation

    layer = RandomTranslation(step.height, step.width, fill_mode=step.fill_mode, seed=seed,
                              name=name)
    return layer, shape


def zoom(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomZoom

    layer = RandomZoom(step.height, step.width, fill_mode=step.fill_mode, seed=seed, name=name)
    return layer, shape


def crop(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomCrop

    if shape is not None and (step.height > shape[0] or step.width > shape[1]):
        raise SpecError(where, f"a {step.height}x{step.width} crop does not fit "
                        f"{shape[0]}x{shape[1]} images")
    out = (step.height, step.width, shape[2]) if shape is not None else None
    return RandomCrop(step.height, step.width, seed=seed, name=name), out


def brightness(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomBrightnessShift

    return RandomBrightnessShift(step.delta, seed=seed, name=name), shape


def contrast(step: Any, *, seed: int, name: str, shape: Shape, where: str):
    from kspec.data.keras_layers import RandomContrastScale

    return RandomContrastScale(step.factor, seed=seed, name=name), shape
