"""The transfer ``base`` of a model: an earlier run, a saved model or a keras.applications
architecture, optionally cut at a layer and frozen (plain data, no Keras import)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from kspec.errors import SpecError
from kspec.spec.base import RelativeSpecError, Strict

APPLICATIONS = (
    # keras.applications architectures (Keras 3.15); listed here so that validating a spec
    # never imports Keras.
    "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge",
    "DenseNet121", "DenseNet169", "DenseNet201", "EfficientNetB0", "EfficientNetB1",
    "EfficientNetB2", "EfficientNetB3", "EfficientNetB4", "EfficientNetB5", "EfficientNetB6",
    "EfficientNetB7", "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2",
    "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M", "EfficientNetV2S",
    "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large",
    "MobileNetV3Small", "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152",
    "ResNet152V2", "ResNet50", "ResNet50V2", "VGG16", "VGG19", "Xception",
)

class TransferBase(Strict):
    """A pre-trained (or architecture-only) model to start from, optionally cut and frozen.

    Exactly one of ``run``, ``path`` or ``application`` says where it comes from.
    """

    run: str | None = Field(
        None, description="an earlier kspec run: a spec name (the newest finished run of that "
        "name in the output folder) or a run directory"
    )
    path: str | None = Field(
        None, description="a .keras file, a SavedModel directory or a kspec run directory"
    )
    application: str | None = Field(
        None, description="a keras.applications architecture by name, e.g. MobileNetV2"
    )
    weights: str | None = Field(
        None, description="application weights: a local .weights.h5 file, or null for random "
        "weights (never downloaded)"
    )
    include_top: bool = Field(False, description="application: keep the classifier on top")
    pooling: Literal["avg", "max"] | None = Field(
        None, description="application: global pooling of the last feature map"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="application: other constructor keywords (alpha, ...)"
    )
    cut_at: str | None = Field(
        None, description="keep the base up to and including this layer (drop the rest)"
    )
    trainable: bool = Field(
        False, description="train the base from the start (default: frozen feature extractor)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> "TransferBase":
        given = [k for k in ("run", "path", "application") if getattr(self, k) is not None]
        if len(given) != 1:
            raise RelativeSpecError(SpecError(
                "", "a base needs exactly one of 'run', 'path' or 'application'",
                value=given or None, valid="run: SPEC_NAME, path: FILE_OR_DIR or "
                "application: NAME"))
        if self.application is not None:
            if self.application not in APPLICATIONS:
                raise RelativeSpecError(SpecError.unknown_name(
                    ".application", "keras.applications architecture", self.application,
                    APPLICATIONS))
            if self.weights is not None and self.weights.lower() in ("imagenet", "download"):
                raise RelativeSpecError(SpecError(
                    ".weights", "kspec never downloads weights; download them once yourself "
                    "and give the local file path, or use null for random weights",
                    value=self.weights, valid="a local .h5/.weights.h5 file path, or null"))
        else:
            for key in ("weights", "pooling"):
                if getattr(self, key) is not None:
                    raise RelativeSpecError(SpecError(
                        f".{key}", f"{key!r} applies only to an 'application' base",
                        value=getattr(self, key)))
            if self.options or self.include_top:
                key = "options" if self.options else "include_top"
                raise RelativeSpecError(SpecError(
                    f".{key}", f"{key!r} applies only to an 'application' base"))
        return self
