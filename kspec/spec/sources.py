"""Data sources: where a spec's data comes from, one schema per ``type``.

Each schema is registered in ``registry.SOURCES`` with the function that reads it
(``@SOURCES.schema("csv", "kspec.data.tables:read_csv")``), so adding a source is its schema
here plus its reader module in :mod:`kspec.data`; the union of sources, the JSON Schema and
the parametrized tests are generated from the registry. Plain data, no TensorFlow.

Multi-input models map parts of a source onto named model inputs with ``inputs``: column
groups of a CSV / DataFrame, array keys of an NPZ file, feature keys of a TFDS dataset::

    source:
      type: csv
      path: patients.csv
      label: outcome
      inputs: {vitals: [pulse, pressure], labs: [glucose, sodium]}
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Union

from pydantic import AfterValidator, Field, field_validator, model_validator

from kspec.errors import SpecError
from kspec.registry import SOURCES
from kspec.spec.base import (
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
