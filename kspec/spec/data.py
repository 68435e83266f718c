"""The data section: where the data comes from, how it is split, normalized and augmented.

Sources are chosen by ``type``. The Python API can also pass arrays or DataFrames directly
(``kspec.fit(spec, data=(x, y))``), in which case ``source`` may be omitted (or be a
``dataframe`` source that names the label column).

Multi-input models map parts of a source onto named model inputs with ``inputs``: column
groups of a CSV / DataFrame, array keys of an NPZ file, feature keys of a TFDS dataset::

    source:
      type: csv
      path: patients.csv
      label: outcome
      inputs: {vitals: [pulse, pressure], labs: [glucose, sodium]}

Every preprocessing and augmentation step applies to the inputs listed in its ``inputs``
(default: every input).

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
from typing import Annotated, ClassVar, Literal, Union

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from kspec.errors import SpecError
from kspec.registry import AUGMENTATIONS, PREPROCESSING, SOURCES
from kspec.spec.base import (
    KERAS_NAME,
    PositiveInt,
    RelativeSpecError,
    Strict,
    _checker,
    registry_union,
)

SPLIT_NAMES = ("train", "validation", "test")

# A path, or one path per named split: {train: a.csv, test: b.csv}.
PathOrSplits = Union[str, dict[str, str]]
# A label column / key, or one per model output: {class: species, size: length}.
Label = Union[str, dict[str, str]]


def _check_split_names(value):
    if isinstance(value, dict):
        for key in value:
            if key not in SPLIT_NAMES:
                raise RelativeSpecError(SpecError(f".{key}", f"unknown split {key!r}",
                                                  valid=list(SPLIT_NAMES)))
        if "train" not in value:
            raise RelativeSpecError(SpecError("", "named splits need a 'train' entry",
                                              value=sorted(value), valid=list(SPLIT_NAMES)))
    return value


class _Source(Strict):
    """Base of every source schema; each is registered in ``registry.SOURCES`` with the
    function that reads it (``read(src, input_names, path, groups, categorical)``)."""

    # Which `data.groups` keys the source can serve (`feature` needs a 2-D feature table).
    groups_from: ClassVar[tuple[str, ...]] = ()
    # Whether the source has text columns that `data.categorical` can encode.
    text_columns: ClassVar[bool] = False
    # Fields that hold paths (one path, or one per named split) and whether each names a
    # file or a folder: relative paths in a spec file are read from the file's folder and
    # `kspec validate` warns about missing ones (kspec.spec.paths).
    path_fields: ClassVar[dict[str, str]] = {}

    @field_validator("path", "split", check_fields=False)
    @classmethod
    def _named_splits(cls, value):
        return _check_split_names(value)


@SOURCES.schema("bundled", "kspec.data.datasets:read_bundled")
class BundledSource(_Source):
    """A small real dataset that ships with kspec (see `kspec components datasets`)."""

    example: ClassVar[dict] = {"type": "bundled", "name": "digits"}

    groups_from = ("feature",)

    type: Literal["bundled"]
    name: Annotated[str, AfterValidator(_checker("datasets"))]


@SOURCES.schema("npz", "kspec.data.tables:read_npz")
class NpzSource(_Source):
    """A NumPy ``.npz`` file (or one per split) with feature arrays and a label array."""

    example: ClassVar[dict] = {"type": "npz", "path": "data/train.npz"}

    groups_from = ("array", "feature")
    path_fields = {"path": "file"}

    type: Literal["npz"]
    path: PathOrSplits
    x: str = Field("x", description="key of the features array (single-input models)")
    y: Label | None = Field("y", description="key of the label array (None: unlabelled)")
    inputs: dict[str, str] | None = Field(
        None, description="model input name -> array key, for multi-input models")


@SOURCES.schema("csv", "kspec.data.tables:read_csv")
class CsvSource(_Source):
    """A CSV file (or one per split) with a header row: label and numeric feature columns."""

    example: ClassVar[dict] = {"type": "csv", "path": "data/patients.csv", "label": "outcome"}

    groups_from = ("column", "feature")
    text_columns = True
    path_fields = {"path": "file"}

    type: Literal["csv"]
    path: PathOrSplits
    label: Label | None = Field(..., description="label column (None: unlabelled)")
    features: list[str] | None = Field(
        None, description="feature columns; default: every column but the label")
    inputs: dict[str, list[str]] | None = Field(
        None, description="model input name -> its columns, for multi-input models")
    delimiter: str = ","
    encoding: str = Field("utf-8", description="text encoding of the file (latin-1, cp1252, "
                          "...)")
    stream: bool = Field(False, description="read the file in chunks as it is used, never "
                         "all in memory (kspec.data.stream_tables)")
    chunk_rows: PositiveInt = Field(10_000, description="stream only: rows read at a time")
    shuffle_buffer: PositiveInt = Field(10_000, description="stream only: rows mixed by the "
                                        "shuffle buffer")


@SOURCES.schema("dataframe", "kspec.data.tables:read_dataframe")
class DataFrameSource(_Source):
    """A pandas DataFrame passed to ``kspec.fit(spec, data=df)``; names its columns."""

    example: ClassVar[dict] = {"type": "dataframe", "label": "outcome"}

    groups_from = ("column", "feature")
    text_columns = True

    type: Literal["dataframe"]
    label: Label | None = Field(..., description="label column (None: unlabelled)")
    features: list[str] | None = None
    inputs: dict[str, list[str]] | None = None


@SOURCES.schema("image_folder", "kspec.data.images:read_image_folder")
class ImageFolderSource(_Source):
    """One sub-folder per class of image files (PNG, JPEG, BMP, GIF).

    ``path: bundled:digit_images`` reads the small image folder shipped with kspec
    (400 grey 8x8 digits, 40 per class).
    """

    example: ClassVar[dict] = {"type": "image_folder", "path": "bundled:digit_images",
                               "image_size": [8, 8], "color_mode": "grayscale"}

    path_fields = {"path": "folder", "cache": "output"}

    type: Literal["image_folder"]
    path: PathOrSplits
    image_size: list[PositiveInt] = Field(..., min_length=2, max_length=2,
                                          description="[height, width]; images are resized")
    color_mode: Literal["grayscale", "rgb"] = "rgb"
    classes: list[str] | None = Field(
        None, description="class folder names in label order; default: sorted folder names")
    stream: bool = Field(False, description="decode the images from disk as they are used, "
                         "never all in memory (kspec.data.stream_images)")
    cache: str | None = Field(
        None, description="stream only: a folder where the decoded images of each split are "
        "cached after the first epoch")

    @model_validator(mode="after")
    def _cache_needs_stream(self) -> "ImageFolderSource":
        if self.cache is not None and not self.stream:
            raise RelativeSpecError(SpecError(".cache", "caching decoded images to disk is for "
                                              "a streamed folder", value=self.cache,
                                              valid="stream: true, or no cache"))
        return self


@SOURCES.schema("tfds", "kspec.data.tfds:read_tfds")
class TfdsSource(_Source):
    """A TensorFlow Datasets dataset by name, read from a local ``data_dir``."""

    example: ClassVar[dict] = (
        {"type": "tfds", "name": "mnist", "data_dir": "~/tensorflow_datasets"})

    path_fields = {"data_dir": "folder"}

    type: Literal["tfds"]
    name: str = Field(..., description="e.g. 'mnist' or 'mnist:3.0.1'")
    data_dir: str | None = Field(None, description="where the prepared dataset lives")
    download: bool = Field(False, description="allow tfds to download and prepare it")
    split: PathOrSplits = Field(
        "train", description="a TFDS split string, or one per split: "
                             "{train: 'train[:90%]', validation: 'train[90%:]', test: test}")
    inputs: dict[str, str] | None = Field(
        None, description="model input name -> feature key; default: the one input <- 'image'")
    label: Label | None = Field("label", description="label feature key (None: unlabelled)")
    stream: bool = Field(False, description="read the split as a tf.data pipeline as it is "
                         "used, never all in memory (kspec.data.stream_tfds)")
    shuffle_buffer: PositiveInt = Field(1024, description="stream only: examples mixed by "
                                        "the shuffle buffer")


class TfrecordFeature(Strict):
    """How one feature of the records is read: numbers of a fixed shape (``dtype``,
    ``shape``), or an encoded image (``encoding``) decoded to ``shape`` [height, width,
    channels] (resized when its size differs)."""

    dtype: Literal["float32", "int64", "string"] | None = Field(
        None, description="the tf.train.Feature list: float32 (float_list, the default), "
        "int64 (int64_list) or string (bytes_list, the default of an encoded image)")
    shape: list[PositiveInt] = Field(default_factory=list,
                                     description="shape of one example's value; [] a scalar")
    encoding: Literal["image", "png", "jpeg"] | None = Field(
        None, description="the bytes are an encoded image (image: any of PNG, JPEG, GIF, BMP)")

    @model_validator(mode="after")
    def _image_shape(self) -> "TfrecordFeature":
        if self.encoding is None:
            return self
        if len(self.shape) != 3 or self.shape[2] not in (1, 3):
            raise RelativeSpecError(SpecError(".shape", "an encoded image is decoded to "
                                              "[height, width, channels] with 1 or 3 channels",
                                              value=self.shape, valid="[28, 28, 1]"))
        if self.dtype not in (None, "string"):
            raise RelativeSpecError(SpecError(".dtype", "an encoded image is stored as bytes",
                                              value=self.dtype, valid="string, or no dtype"))
        return self

    def stored(self) -> str:
        """The dtype of the values in the records: ``float32``, ``int64`` or ``string``."""
        return "string" if self.encoding else self.dtype or "float32"


@SOURCES.schema("tfrecord", "kspec.data.tfrecord:read_tfrecord")
class TfrecordSource(_Source):
    """TFRecord files of ``tf.train.Example`` records, streamed from disk.

    ``features`` describes every key the model reads (a label key not described is an int64
    scalar); ``path`` is a file or glob pattern, or one per split.
    """

    example: ClassVar[dict] = {
        "type": "tfrecord", "path": "data/train-*.tfrecord", "label": "label",
        "features": {"image": {"encoding": "png", "shape": [28, 28, 1]},
                     "label": {"dtype": "int64"}}}

    groups_from = ("column",)
    path_fields = {"path": "files"}

    type: Literal["tfrecord"]
    path: PathOrSplits = Field(..., description="a file or glob pattern, or one per split")
    features: dict[str, TfrecordFeature] = Field(..., min_length=1)
    label: Label | None = Field(..., description="label key (None: unlabelled)")
    inputs: dict[str, str] | None = Field(
        None, description="model input name -> feature key; default: the input's own name, or "
        "the only feature that is not the label")
    compression: Literal["none", "gzip", "zlib"] = "none"
    shuffle_buffer: PositiveInt = Field(1024, description="records mixed by the shuffle "
                                        "buffer (files are also shuffled and interleaved)")


Source = registry_union(SOURCES)


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
