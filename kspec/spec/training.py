"""The training section: optimizer, loss, metrics, epochs, callbacks, phases, targets, TTA.

Also the top-level ``ensemble`` section (K members of one spec, averaged into one model).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from kspec import registry
from kspec.errors import SpecError
from kspec.spec.base import (
    MAX_SEED,
    LossRef,
    MetricRef,
    OptimizerRef,
    PositiveInt,
    RelativeSpecError,
    Strict,
)


class EarlyStopping(Strict):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs."""

    monitor: str = "val_loss"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0.0)
    mode: Literal["auto", "min", "max"] = "auto"
    restore_best_weights: bool = True
    start_from_epoch: int = Field(0, ge=0)


class Checkpoint(Strict):
    """Save the model (in the run directory) every epoch or when ``monitor`` improves."""

    monitor: str = "val_loss"
    save_best_only: bool = True
    mode: Literal["auto", "min", "max"] = "auto"


class ReduceLROnPlateau(Strict):
    """Multiply the learning rate by ``factor`` when ``monitor`` stalls."""

    monitor: str = "val_loss"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0)
    min_lr: float = Field(0.0, ge=0.0)


class TensorBoard(Strict):
    """TensorBoard logs in ``RUN/tensorboard`` (``tensorboard: true`` takes these defaults).

    The keys are ``keras.callbacks.TensorBoard``'s; with ``training.diagnostics`` on, the
    per-layer statistics are written there too (``RUN/tensorboard/diagnostics``).
    """

    histogram_freq: int = Field(
        0, ge=0, description="epochs between weight histograms (0: none)")
    update_freq: Literal["epoch", "batch"] | PositiveInt = Field(
        "epoch", description="write losses and metrics every epoch, every batch, or every N "
        "batches")
    profile_batch: int | list[int] = Field(
        0, description="batch to profile, or [first, last] batches (0: no profiling)")
    write_graph: bool = Field(True, description="write the model graph")
    write_images: bool = Field(False, description="write weights as images")
    write_steps_per_second: bool = Field(False, description="log training steps per second")

    @field_validator("profile_batch")
    @classmethod
    def _batches(cls, v: Any) -> Any:
        ok = (v >= 0 if isinstance(v, int) else
              len(v) == 2 and 0 < v[0] <= v[1])
        if not ok:
            raise ValueError("profile_batch is a batch number (0: off) or [first, last] with "
                             f"0 < first <= last; received {v!r}")
        return v


def _on_or_options(options: type) -> Any:
    """``true`` / ``false``, or a mapping of ``options``; only the matching form's errors
    are reported (a mapping with a typo is not also told it "should be a boolean")."""
    return Annotated[
        Union[Annotated[bool, Tag("switch")], Annotated[options, Tag("options")]],
        Discriminator(lambda v: "switch" if isinstance(v, bool) else "options"),
    ]


class Callbacks(Strict):
    """Callbacks; history is always written as CSV in the run directory."""

    early_stopping: EarlyStopping | None = None
    checkpoint: Checkpoint | None = None
    reduce_lr_on_plateau: ReduceLROnPlateau | None = None
    tensorboard: _on_or_options(TensorBoard) = Field(
        False, description="true, or the TensorBoard callback's options")
    backup_and_restore: bool = Field(
        True, description="resume from the last finished epoch after a crash"
    )


def _check_schedule(value: Any) -> Any:
    """An optimizer's ``learning_rate`` may itself be a schedule reference."""
    if isinstance(value, dict) and isinstance(value.get("learning_rate"), dict):
        registry.load_builtins()
        try:
            registry.SCHEDULES.check(value["learning_rate"], "")
        except SpecError as e:
            raise RelativeSpecError(e.under(".learning_rate")) from None
    return value


class LastN(Strict):
    """Train the head and the last ``last`` layers (that have weights) of the base."""

    last: PositiveInt


class NamePattern(Strict):
    """Train the head and the base layers whose names match a regular expression."""

    pattern: str | list[str]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: Any) -> Any:
        for p in [v] if isinstance(v, str) else v:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"{p!r} is not a regular expression: {e}") from None
        return v


def _trainable_form(value: Any) -> str:
    """Which form of ``trainable`` was written, so that only its problems are reported."""
    if isinstance(value, dict):
        return "pattern" if "pattern" in value and "last" not in value else "last"
    if isinstance(value, (LastN, NamePattern)):
        return "last" if isinstance(value, LastN) else "pattern"
    return "name"


class Phase(Strict):
    """One stage of training: what is trainable, with which optimizer, for how many epochs.

    ``trainable``: ``all`` (everything), ``head`` (nothing of the base), ``{last: N}`` (the
    head and the last N base layers with weights) or ``{pattern: REGEX}`` (the head and the
    base layers whose names match). Batch-norm layers of the base stay in inference mode.
    """

    name: str | None = None
    trainable: Annotated[
        Union[Annotated[Literal["all", "head"], Tag("name")], Annotated[LastN, Tag("last")],
              Annotated[NamePattern, Tag("pattern")]],
        Discriminator(_trainable_form),
    ] = "all"
    epochs: PositiveInt | None = Field(None, description="default: training.epochs")
    optimizer: OptimizerRef | None = Field(None, description="default: training.optimizer")

    @field_validator("optimizer")
    @classmethod
    def _schedule(cls, v: Any) -> Any:
        return v if v is None else _check_schedule(v)


class Target(Strict):
    """How an output's target is derived from the data's single label array.

    At most one of ``label_map`` (integer label i becomes ``label_map[i]``), ``threshold``
    (1 where label > threshold, else 0) or ``column`` (one column of a 2-D label array).
    With none of them the label is used as it is.
    """

    label_map: list[float] | None = None
    threshold: float | None = None
    column: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _at_most_one(self) -> "Target":
        given = [k for k in ("label_map", "threshold", "column") if getattr(self, k) is not None]
        if len(given) > 1:
            raise RelativeSpecError(SpecError(
                f".{given[1]}", f"a target has one of label_map, threshold or column, not "
                f"{' and '.join(given)}"))
        return self


class TTASpec(Strict):
    """Evaluate and predict on fixed views of each input image, averaged.

    Schemes: ``flip`` (image + horizontal flip), ``five_crop`` (four corners + centre),
    ``ten_crop`` (five crops + their horizontal flips). Crops cover ``crop_fraction`` of each
    side and are resized back to the input size (or, when the data is larger than the model
    input, taken at the model's input size).
    """

    scheme: Literal["flip", "five_crop", "ten_crop"] = "ten_crop"
    crop_fraction: float = Field(0.875, gt=0.0, le=1.0)
    splits: list[Literal["train", "validation", "test"]] = Field(
        default_factory=lambda: ["test"], description="splits to evaluate with TTA")


class Diagnostics(Strict):
    """Per-layer statistics recorded while training (``diagnostics.csv`` in the run).

    On a fixed probe (the first ``probe_batches`` x ``batch_size`` rows of the training
    split) kspec records, per layer: activation mean and std, the fraction of dead
    ReLU-family units and of saturated sigmoid/tanh values, the gradient norm of the
    layer's weights with respect to the loss, the weight norm and the update-to-weight
    ratio. See docs/diagnostics.md.
    """

    every: PositiveInt = Field(
        1, description="epochs between records (the state at initialization is recorded too)")
    probe_batches: PositiveInt = Field(2, description="batches in the probe")
    batch_size: PositiveInt | None = Field(
        None, description="rows per probe batch; default training.batch_size")
    histograms: bool = Field(
        True, description="with callbacks.tensorboard: activation and gradient histograms")


# Keras 3's model.fit fails in its first step under tf.distribute.MultiWorkerMirroredStrategy
# (keras-team/keras#20585, open; reproduced with Keras 3.15.1 and TensorFlow 2.21 on two
# workers on 127.0.0.1: "Attempt to convert a value (PerReplica...) to a Tensor" in
# `_maybe_symbolic_build`, then a metric reduction fails in the train step).
MULTI_WORKER_REFUSAL = (
    "Keras 3 cannot train with model.fit under tf.distribute.MultiWorkerMirroredStrategy "
    "(keras-team/keras#20585: the first training step fails); use strategy: mirrored for "
    "several devices of one machine, or `kspec tune --devices N` to spread a search over "
    "devices (docs/scale.md)")
_DEVICE = r"^/?(device:)?(cpu|gpu|CPU|GPU):\d+$"


class Distribution(Strict):
    """Train over several devices with a ``tf.distribute`` strategy (docs/scale.md).

    ``mirrored`` keeps a copy of the model on every device and splits each batch between
    them (``training.batch_size`` is the global batch; each device gets
    ``batch_size / devices`` rows); ``one_device`` places everything on one chosen device.
    ``devices`` is a list of names (``GPU:0``, ``CPU:1``) or a count: the first N GPUs, or
    the first N (logical) CPU devices when there is no GPU.
    """

    strategy: Literal["one_device", "mirrored", "multi_worker"] = Field(
        "mirrored", description="one_device | mirrored | multi_worker (refused: Keras 3 "
        "cannot fit under it, keras-team/keras#20585)")
    devices: PositiveInt | list[str] | None = Field(
        None, description="device names (GPU:0, CPU:1) or a count; default: every GPU "
        "(mirrored) or the first GPU, else the CPU (one_device)")

    @field_validator("devices")
    @classmethod
    def _names(cls, v: Any) -> Any:
        for i, name in enumerate(v if isinstance(v, list) else []):
            if not re.match(_DEVICE, name):
                raise RelativeSpecError(SpecError(
                    f"[{i}]", "not a device name", value=name,
                    valid="GPU:N or CPU:N (also /gpu:N, /device:GPU:N)"))
        return v

    @model_validator(mode="after")
    def _runs(self) -> "Distribution":
        if self.strategy == "multi_worker":
            raise RelativeSpecError(SpecError(".strategy", MULTI_WORKER_REFUSAL,
                                              value="multi_worker"))
        names = self.device_names()
        if names is not None and len(set(names)) != len(names):
            raise RelativeSpecError(SpecError(".devices", "a device is listed twice",
                                              value=self.devices))
        count = self.devices if isinstance(self.devices, int) else len(self.devices or [])
        if self.strategy == "one_device" and count > 1:
            raise RelativeSpecError(SpecError(
                ".devices", f"one_device trains on one device; {count} were given",
                value=self.devices, valid="one device, or strategy: mirrored"))
        if self.devices == []:
            raise RelativeSpecError(SpecError(".devices", "the list of devices is empty",
                                              value=[], valid="e.g. [GPU:0, GPU:1] or 2"))
        return self

    def device_names(self) -> list[str] | None:
        """The listed devices as ``KIND:N`` (``GPU:0``), or None for a count or none."""
        if not isinstance(self.devices, list):
            return None
        return [d.rsplit("/", 1)[-1].replace("device:", "").upper() for d in self.devices]


class TrainingSpec(Strict):
    """How to train: optimizer, loss, metrics, batches, epochs and callbacks."""

    optimizer: OptimizerRef = "adam"
    loss: LossRef | dict[str, LossRef] = Field(
        ..., description="one loss, or one per output name"
    )
    loss_weights: dict[str, float] | None = None
    metrics: list[MetricRef] | dict[str, list[MetricRef]] = Field(default_factory=list)
    batch_size: PositiveInt = 32
    epochs: PositiveInt = 10
    steps_per_epoch: PositiveInt | None = Field(
        None, description="cap the number of batches per epoch (quick runs)"
    )
    steps_per_execution: PositiveInt = Field(
        8,
        description="batches run per call into the compiled graph; larger amortizes Python "
        "overhead (measured in benchmarks/bench_fit.py), 1 reports every batch to callbacks",
    )
    shuffle: bool = True
    class_weight: dict[int, float] | Literal["balanced"] | None = None
    callbacks: Callbacks = Field(default_factory=Callbacks)
    verbose: Literal[0, 1, 2, "auto"] = "auto"

    @field_validator("optimizer")
    @classmethod
    def _schedule(cls, v: Any) -> Any:
        return _check_schedule(v)

    @field_validator("jit_compile")
    @classmethod
    def _jit(cls, v: Any) -> Any:
        if v != "auto" and not isinstance(v, bool):
            raise ValueError(f"jit_compile is auto, true or false; received {v!r}")
        return v

    phases: list[Phase] = Field(
        default_factory=list, description="train in stages (transfer learning); default: one "
        "stage of `epochs` with everything trainable")
    targets: dict[str, Target] = Field(
        default_factory=dict, description="per output name: derive its target from the label")
    loss_weighting: Literal["fixed", "uncertainty"] = Field(
        "fixed", description="multi-output: fixed loss_weights, or learned uncertainty "
        "weighting (Kendall & Cipolla)")
    tta: TTASpec | None = None
    diagnostics: _on_or_options(Diagnostics) = Field(
        False, description="record per-layer statistics while training: true, or "
        "{every, probe_batches, batch_size, histograms} (docs/diagnostics.md)")
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = Field(
        "float32", description="Keras dtype policy: float32, or mixed precision (float16 "
        "or bfloat16 compute, float32 weights and outputs; docs/scale.md)")
    jit_compile: Annotated[Any, WithJsonSchema(
        {"anyOf": [{"enum": ["auto"]}, {"type": "boolean"}]})] = Field(
        "auto", description="XLA: auto (Keras decides: off on CPU-only machines, under a "
        "strategy, or with a layer XLA cannot compile), true or false")
    distribution: Distribution | None = Field(
        None, description="train over several devices: {strategy: mirrored | one_device, "
        "devices: [GPU:0, GPU:1] or N} (docs/scale.md)")
    human_error: float | None = Field(
        None, ge=0.0, description="human-level (or target) error for `kspec report`'s "
        "avoidable bias: 1 - accuracy for classifiers, the loss's units otherwise")


class EnsembleSpec(Strict):
    """Train ``members`` copies of the spec (seeds ``seed + k``) and average their outputs.

    With ``bootstrap: true`` each member trains on a bootstrap sample (drawn with
    replacement) of the training split: bagging.
    """

    members: int = Field(3, ge=2, le=64)
    bootstrap: bool = False
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] | None = Field(
        None, description="one seed per member (default: seed+k)")

    @model_validator(mode="after")
    def _seed_count(self) -> "EnsembleSpec":
        if self.seeds is not None and len(self.seeds) != self.members:
            raise RelativeSpecError(SpecError(
                ".seeds", f"{len(self.seeds)} seeds for {self.members} members",
                value=self.seeds, valid=f"a list of {self.members} integers"))
        return self
