"""The data section: where the data comes from (:mod:`kspec.spec.sources`), how it is split,
normalized and augmented (:mod:`kspec.spec.steps`), its groups and categorical columns.

The Python API can also pass arrays or DataFrames directly (``kspec.fit(spec, data=(x,
y))``), in which case ``source`` may be omitted (or be a ``dataframe`` source that names the
label column).

``groups`` names each row's group (a sensitive attribute) for the fairness metrics: a
column, an NPZ array or a feature, optionally cut into ``bins`` or mapped with ``map``::

    groups: {feature: "mean radius", bins: [15.0]}     # 0: below 15, 1: 15 and above

``categorical`` turns text columns of a CSV / DataFrame into model inputs of their own
(raw strings, encoded by a lookup fitted on the training split) that are concatenated onto
a numeric input before the model's layers::

    categorical: {embarked: one_hot, deck: {encoding: embedding, dim: 4}}
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import ConfigDict, Field, model_validator

from kspec.errors import SpecError
from kspec.spec.base import (
    KERAS_NAME,
    PositiveInt,
    RelativeSpecError,
    Strict,
)
from kspec.spec.sources import SPLIT_NAMES, Source  # noqa: F401 - SPLIT_NAMES re-exported
from kspec.spec.steps import AugmentStep, PreprocessStep


class Splits(Strict):
    """Fractions of one source held out for validation and test (seeded shuffle).

    With named splits in the source, a fraction carves a split the source lacks out of
    its training split.
    """

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


class Groups(Strict):
    """Where each row's group (a sensitive attribute) comes from, for the fairness metrics.

    Exactly one of ``column`` (CSV / DataFrame; it need not be a feature), ``array`` (NPZ)
    or ``feature`` (a feature of the one input's 2-D table, by name or index). The values
    must be integer ids 0, 1, ... unless ``bins`` cuts numbers into ranges (``bins: [30,
    60]``: below 30 -> 0, 30 up to 60 -> 1, 60 and above -> 2) or ``map`` gives each value
    its id (``map: {female: 0, male: 1}``).
    """

    column: str | None = Field(None, description="CSV / DataFrame column with the group")
    array: str | None = Field(None, description="NPZ array key with the group")
    feature: str | int | None = Field(
        None, description="feature (name or index) of a 2-D table input with the group")
    bins: list[float] | None = Field(
        None, min_length=1, description="increasing edges; group i holds [bins[i-1], bins[i])")
    map: dict[Union[str, int, float], Annotated[int, Field(ge=0)]] | None = Field(
        None, min_length=1, description="value -> group id, for categories")

    @model_validator(mode="after")
    def _one_place(self) -> "Groups":
        given = [k for k in ("column", "array", "feature") if getattr(self, k) is not None]
        if len(given) != 1:
            raise RelativeSpecError(SpecError(
                f".{given[1]}" if given else "", "groups come from one place: give one of "
                "column, array or feature", value=given or None,
                valid="column: NAME (csv, dataframe), array: KEY (npz) or feature: NAME|INDEX"))
        if self.bins is not None and self.map is not None:
            raise RelativeSpecError(SpecError(".map", "bins cut numbers into ranges and map "
                                              "names categories; give one of them",
                                              value=self.map))
        if self.bins is not None and any(a >= b for a, b in zip(self.bins, self.bins[1:])):
            raise RelativeSpecError(SpecError(".bins", "bin edges must increase strictly",
                                              value=self.bins))
        return self

    def where(self) -> str:
        """``column 'sex'``, ``array 'group'`` or ``feature 'mean radius'``, for messages."""
        for key in ("column", "array", "feature"):
            if getattr(self, key) is not None:
                return f"{key} {getattr(self, key)!r}"
        return "groups"




Encoding = Literal["one_hot", "embedding"]


def _short_form_schema(schema: dict) -> None:
    # Editors should accept `port: one_hot` as well as the full mapping.
    full = dict(schema)
    schema.clear()
    schema["anyOf"] = [full, {"type": "string", "enum": ["one_hot", "embedding"]}]


class Categorical(Strict):
    """How one text column becomes a model input: a vocabulary fitted on the training split.

    The column becomes a string input (named ``input``, default the column) followed by a
    ``StringLookup`` with the training vocabulary and one out-of-vocabulary bucket; its
    encoding is concatenated onto the numeric input ``join`` (default: the only input).
    """

    model_config = ConfigDict(json_schema_extra=_short_form_schema)

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value):
        # `port: one_hot` names the encoding alone.
        return {"encoding": value} if isinstance(value, str) else value

    encoding: Encoding = Field(
        "one_hot", description="one_hot: one column per category (plus the OOV bucket); "
        "embedding: a trained vector of `dim` numbers per category")
    dim: PositiveInt | None = Field(
        None, description="embedding size; default round(1.6 * categories ** 0.56), at most 50")
    max_tokens: PositiveInt | None = Field(
        None, description="keep only the most frequent categories of the training split")
    min_count: PositiveInt = Field(
        1, description="categories seen fewer times in training go to the OOV bucket")
    missing: str | None = Field(
        None, description="the category an empty cell stands for; default: an empty cell is "
        "an error")
    input: str | None = Field(None, description="name of the model input; default the column")
    join: str | None = Field(
        None, description="the model input its encoding is concatenated onto; default the only "
        "input")

    @model_validator(mode="after")
    def _dim_for_embedding(self) -> "Categorical":
        if self.dim is not None and self.encoding != "embedding":
            raise RelativeSpecError(SpecError(".dim", "only an embedding has a dimension",
                                              value=self.dim, valid="encoding: embedding"))
        return self


# -- preprocessing fitted on the training split ---------------------------------------------


class DataSpec(Strict):
    """Where the data comes from, how it is split, normalized and augmented."""

    source: Source | None = Field(
        None, description="the data; omit it when arrays are passed to kspec.fit(data=...)"
    )
    splits: Splits = Field(default_factory=Splits)
    preprocessing: list[PreprocessStep] = Field(
        default_factory=list,
        description="fitted on the training split; become layers of the model")
    augmentation: list[AugmentStep] = Field(
        default_factory=list, description="random layers active in training only")
    fit_test_separately: bool = Field(
        False, description="normalize the test split with statistics fitted on the test split "
        "itself (needs the test distribution in advance; logs a warning)")
    classes: PositiveInt | None = Field(
        None, description="number of classes, to check labels when the model cannot tell")
    cache: bool = Field(True, description="cache evaluation batches in memory")
    groups: Groups | None = Field(
        None, description="each row's group for the fairness metrics: "
        "{column: NAME} | {array: KEY} | {feature: NAME|INDEX}, with optional bins or map")
    categorical: dict[str, Categorical] | None = Field(
        None, description="text columns of a csv / dataframe source -> their encoding: "
        "one_hot | embedding | {encoding, dim, max_tokens, min_count, missing, input, join}")

    def categorical_inputs(self) -> dict[str, str]:
        """``{model_input_name: column}`` of the categorical columns (empty without any)."""
        return {c.input or col: col for col, c in (self.categorical or {}).items()}

    @model_validator(mode="after")
    def _categorical_from_tables(self) -> "DataSpec":
        if not self.categorical:
            return self
        if self.source is not None and not self.source.text_columns:
            raise RelativeSpecError(SpecError(
                ".categorical", f"the {self.source.type} source has no text columns to encode",
                value=sorted(self.categorical), valid="a csv or dataframe source"))
        if getattr(self.source, "stream", False):
            raise RelativeSpecError(SpecError(
                ".categorical", "categorical vocabularies are fitted on the training split in "
                "memory; a streamed csv source cannot encode text columns",
                value=sorted(self.categorical), valid="stream: false"))
        names = self.categorical_inputs()
        for name, column in names.items():
            if not re.match(KERAS_NAME, name):
                where = "input" if self.categorical[column].input else ""
                raise RelativeSpecError(SpecError(
                    f".categorical.{column}" + (f".{where}" if where else ""),
                    f"{name!r} cannot name a model input (Keras and TensorFlow refuse it)",
                    valid="input: NAME with letters, digits, '_', '.' or '-'"))
        if len(names) != len(self.categorical):
            raise RelativeSpecError(SpecError(".categorical", "two categorical columns would "
                                              "become the same model input",
                                              value=sorted(self.categorical)))
        return self

    @model_validator(mode="after")
    def _groups_fit_the_source(self) -> "DataSpec":
        if self.groups is None or self.source is None:
            return self
        kind = self.source.type
        served = self.source.groups_from
        key = next(k for k in ("column", "array", "feature") if getattr(self.groups, k)
                   is not None)
        if key not in served:
            reason = (f"the {kind} source cannot provide groups" if not served else
                      f"the {kind} source has no {key}s to take groups from")
            raise RelativeSpecError(SpecError(
                f".groups.{key}", reason, value=getattr(self.groups, key),
                valid=" or ".join(f"{k}: ..." for k in served) if served
                else "a csv, npz, dataframe or bundled table source"))
        return self
