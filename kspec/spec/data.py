"""The data section: where the data comes from and how it is split.

Sources are chosen by ``type``. The Python API can also pass arrays directly
(``kspec.fit(spec, data=(x, y))``), in which case ``source`` may be omitted.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from kspec.errors import SpecError
from kspec.spec.base import RelativeSpecError, Strict


class BundledSource(Strict):
    """A small real dataset that ships with kspec (see `kspec components datasets`)."""

    type: Literal["bundled"]
    name: str


class NpzSource(Strict):
    """A NumPy ``.npz`` file with a features array and a label array."""

    type: Literal["npz"]
    path: str
    x: str = Field("x", description="key of the features array")
    y: str | None = Field("y", description="key of the label array (None: unlabelled)")


class CsvSource(Strict):
    """A CSV file with a header row: one label column and numeric feature columns."""

    type: Literal["csv"]
    path: str
    label: str | None = Field(..., description="label column (None: unlabelled)")
    features: list[str] | None = Field(
        None, description="feature columns; default: every column but the label"
    )
    delimiter: str = ","


Source = Annotated[Union[BundledSource, NpzSource, CsvSource], Field(discriminator="type")]


class Splits(Strict):
    """Fractions of one source held out for validation and test (seeded shuffle)."""

    validation: float = Field(0.0, ge=0.0, lt=1.0)
    test: float = Field(0.0, ge=0.0, lt=1.0)
    shuffle: bool = True
    stratify: bool = Field(False, description="keep class proportions in every split")

    @model_validator(mode="after")
    def _room_for_training(self) -> "Splits":
        if self.validation + self.test >= 1.0:
            raise RelativeSpecError(
                SpecError(
                    "",
                    "validation + test must leave data for training",
                    value={"validation": self.validation, "test": self.test},
                    valid="a sum below 1.0",
                )
            )
        return self


class DataSpec(Strict):
    """Where the data comes from and how it is split."""

    source: Source | None = Field(
        None, description="the data; omit it when arrays are passed to kspec.fit(data=...)"
    )
    splits: Splits = Field(default_factory=Splits)
    cache: bool = Field(True, description="cache the decoded dataset in memory")
