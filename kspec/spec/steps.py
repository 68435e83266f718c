"""Preprocessing steps (fitted on the training split) and augmentation steps (training
only), one schema per ``type``.

Each schema is registered with the function that implements it:
``@PREPROCESSING.schema("zscore", "kspec.data.preprocess:fit_zscore")`` (fits statistics,
returns the layer) and ``@AUGMENTATIONS.schema("flip", "kspec.data.augment:flip")`` (builds
the random layer). Every step applies to the inputs listed in its ``inputs`` (default:
every input). Plain data, no TensorFlow.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from kspec.errors import SpecError
from kspec.registry import AUGMENTATIONS, PREPROCESSING
from kspec.spec.base import PositiveInt, RelativeSpecError, Strict, registry_union

Per = Literal["feature", "channel", "global"]


class _Step(Strict):
    inputs: list[str] | None = Field(None, description="model inputs it applies to; default all")


@PREPROCESSING.schema("min_max", "kspec.data.preprocess:fit_min_max")
class MinMax(_Step):
    """Scale into ``range`` with the training split's minimum and maximum."""

    example: ClassVar[dict] = {"type": "min_max", "range": [0, 1]}

    type: Literal["min_max"]
    range: list[float] = Field([0.0, 1.0], min_length=2, max_length=2)
    per: Per = Field("feature", description="statistics per feature, per channel or global")

    @field_validator("range")
    @classmethod
    def _ordered(cls, value):
        if value[0] >= value[1]:
            raise RelativeSpecError(SpecError("", "range must be [low, high] with low < high",
                                              value=value))
        return value


@PREPROCESSING.schema("zscore", "kspec.data.preprocess:fit_zscore")
class ZScore(_Step):
    """Subtract the training mean and divide by the training standard deviation."""

    example: ClassVar[dict] = {"type": "zscore", "per": "channel"}

    type: Literal["zscore"]
    per: Per = "feature"
    epsilon: float = Field(1e-7, gt=0.0, description="added to the std (constant features)")


@PREPROCESSING.schema("channel_mean", "kspec.data.preprocess:fit_channel_mean")
class ChannelMean(_Step):
    """Subtract the training split's mean of every channel (images)."""

    example: ClassVar[dict] = {"type": "channel_mean"}

    type: Literal["channel_mean"]


@PREPROCESSING.schema("whiten", "kspec.data.preprocess:fit_whiten")
class Whiten(_Step):
    """Whitening of all features jointly: zero mean, identity covariance.

    ``pca`` rotates onto the principal axes (output flattened, optionally truncated to
    ``components``); ``zca`` rotates back, so the output keeps the input's shape.
    """

    example: ClassVar[dict] = {"type": "whiten", "method": "pca", "components": 16}

    type: Literal["whiten"]
    method: Literal["pca", "zca"] = "zca"
    epsilon: float = Field(1e-5, gt=0.0, description="added to the eigenvalues")
    components: PositiveInt | None = Field(None, description="PCA only: keep the top k")

    @model_validator(mode="after")
    def _components_for_pca(self) -> "Whiten":
        if self.components is not None and self.method != "pca":
            raise RelativeSpecError(SpecError(".components", "only PCA whitening can keep "
                                              "fewer components", value=self.components))
        return self


PreprocessStep = registry_union(PREPROCESSING)


# -- augmentation (training only) ------------------------------------------------------------
@AUGMENTATIONS.schema("gaussian_noise", "kspec.data.augment:gaussian_noise")
class GaussianNoise(_Step):
    """Add N(0, stddev^2) noise."""

    example: ClassVar[dict] = {"type": "gaussian_noise", "stddev": 0.1}

    type: Literal["gaussian_noise"]
    stddev: float = Field(..., gt=0.0)


@AUGMENTATIONS.schema("laplace_noise", "kspec.data.augment:laplace_noise")
class LaplaceNoise(_Step):
    """Add Laplace(0, scale) noise (heavier tails than Gaussian)."""

    example: ClassVar[dict] = {"type": "laplace_noise", "scale": 0.1}

    type: Literal["laplace_noise"]
    scale: float = Field(..., gt=0.0)


@AUGMENTATIONS.schema("flip", "kspec.data.augment:flip", tags=("image",))
class Flip(_Step):
    """Random horizontal and/or vertical flips (images, channels last)."""

    example: ClassVar[dict] = {"type": "flip", "mode": "horizontal"}

    type: Literal["flip"]
    mode: Literal["horizontal", "vertical", "horizontal_and_vertical"] = "horizontal"


FillMode = Literal["reflect", "wrap", "constant", "nearest"]


@AUGMENTATIONS.schema("rotate", "kspec.data.augment:rotate", tags=("image",))
class Rotate(_Step):
    """Random rotation by up to ``factor`` * 360 degrees either way."""

    example: ClassVar[dict] = {"type": "rotate", "factor": 0.05}

    type: Literal["rotate"]
    factor: float = Field(..., gt=0.0, le=1.0)
    fill_mode: FillMode = "reflect"


@AUGMENTATIONS.schema("translate", "kspec.data.augment:translate", tags=("image",))
class Translate(_Step):
    """Random shift by up to ``height`` / ``width`` fractions of the image size."""

    example: ClassVar[dict] = {"type": "translate", "height": 0.1, "width": 0.1}

    type: Literal["translate"]
    height: float = Field(..., ge=0.0, le=1.0)
    width: float = Field(..., ge=0.0, le=1.0)
    fill_mode: FillMode = "reflect"


@AUGMENTATIONS.schema("zoom", "kspec.data.augment:zoom", tags=("image",))
class Zoom(_Step):
    """Random zoom in or out by up to ``height`` (and ``width``, default the same) fraction."""

    example: ClassVar[dict] = {"type": "zoom", "height": 0.1}

    type: Literal["zoom"]
    height: float = Field(..., gt=0.0, lt=1.0)
    width: float | None = Field(None, gt=0.0, lt=1.0)
    fill_mode: FillMode = "reflect"


@AUGMENTATIONS.schema("crop", "kspec.data.augment:crop", tags=("image",))
class Crop(_Step):
    """Random ``height`` x ``width`` crop in training; the centre crop otherwise."""

    example: ClassVar[dict] = {"type": "crop", "height": 6, "width": 6}

    type: Literal["crop"]
    height: PositiveInt
    width: PositiveInt


@AUGMENTATIONS.schema("brightness", "kspec.data.augment:brightness")
class Brightness(_Step):
    """Add one random offset in [-delta, delta] to every image."""

    example: ClassVar[dict] = {"type": "brightness", "delta": 0.2}

    type: Literal["brightness"]
    delta: float = Field(..., gt=0.0)


@AUGMENTATIONS.schema("contrast", "kspec.data.augment:contrast")
class Contrast(_Step):
    """Scale every image's deviation from its channel means by a factor in [1-f, 1+f]."""

    example: ClassVar[dict] = {"type": "contrast", "factor": 0.3}

    type: Literal["contrast"]
    factor: float = Field(..., gt=0.0, lt=1.0)


AugmentStep = registry_union(AUGMENTATIONS)
