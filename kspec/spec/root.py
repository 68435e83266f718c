"""The whole spec."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kspec.spec.base import MAX_SEED, Strict
from kspec.spec.data import DataSpec
from kspec.spec.model import ModelSpec
from kspec.spec.search import SearchSpec
from kspec.spec.training import EnsembleSpec, TrainingSpec

FORMAT_VERSION = 1
NAME = r"^[A-Za-z0-9_.-]{1,100}$"  # a spec's name names its run folders


class Spec(Strict):
    """A kspec model spec: data, model and training, as plain data."""

    kspec: Literal[1] = Field(FORMAT_VERSION, description="spec format version")
    name: str = Field("model", pattern=NAME, description="used in run names")
    description: str = ""
    seed: int = Field(42, ge=0, le=MAX_SEED,
                      description="seeds weights, splits, shuffling and augmentation")
    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec
    training: TrainingSpec
    ensemble: EnsembleSpec | None = Field(None, description="train K members, average them")
    search: SearchSpec | None = Field(None, description="hyperparameter search (kspec tune)")

    def to_dict(self) -> dict:
        """Plain data (JSON types), defaults included: the resolved spec."""
        return self.model_dump(mode="json", exclude_none=False)
