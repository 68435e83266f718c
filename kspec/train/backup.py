"""The resume state of a run: one file per finished epoch, written in one atomic step.

Keras's ``BackupAndRestore`` writes its HDF5 weights file in place, so a kill at the end of
an epoch can leave a file that no later resume opens, and the CSV logger ran before it, so
the history and the backup could disagree by an epoch. kspec keeps its own state::

    RUN/backup/model/epoch-000005.npz        (backup/member{k}/ for ensemble members)

After every epoch one ``.npz`` file is written (temporary file, fsync, rename) holding:

- every variable of the model (weights, fitted statistics, and the seed states of dropout
  and augmentation layers, which ``save_weights`` leaves out) and of its optimizer (step
  count, moments, learning rate);
- the number of epochs done, the training phase, whether a callback stopped training;
- the history rows so far: ``history.csv`` is rewritten from them once the file is in
  place, so the two always agree (a resume repairs a CSV one epoch behind);
- the state of early stopping, learning-rate reduction and the checkpoint callback.

The input pipeline draws each epoch's order from ``(seed, epoch)``
(:func:`kspec.data.pipeline.to_dataset` with an epoch variable), so a resumed run trains on
the same batches as an uninterrupted one and ends with the same weights. The two newest
files are kept; a resume uses the newest one that reads whole, says on one line when it had
to fall back to an older one (or start again), and never shows a traceback.

Example:
    >>> recorder = Recorder(RunDir("runs/quickstart-20261124-110738"))   # doctest: +SKIP
    >>> start, skip = recorder.restore(model, phase=0, first=0, last=20)  # doctest: +SKIP
    >>> start   # epochs already done: training continues from here      # doctest: +SKIP
    7
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from kspec.atomic import (
    atomic_write,
    atomic_write_text,
    disk_error,
    ensure_free,
    fsync_dir,
    model_file_bytes,
    variables,
)
from kspec.errors import DataError, first_line
from kspec.rundir import RunDir

FORMAT = 1
KEEP = 2  # the newest file and the one before it (in case the newest is damaged later)
_NAME = re.compile(r"^epoch-(\d{6})\.npz$")
# The attributes that make a callback's decisions after a resume those of an uninterrupted
# run (Keras 3.15's names); early stopping's best weights are saved as arrays.
_CALLBACK_STATE = {"EarlyStopping": ("wait", "stopped_epoch", "best", "best_epoch"),
                   "ReduceLROnPlateau": ("wait", "cooldown_counter", "best"),
                   "ModelCheckpoint": ("best",)}


class BackupUnreadable(Exception):
    """One backup file cannot be used (damaged, foreign, or for another model)."""


@dataclass
class State:
    """One backup: what :meth:`Recorder.restore` needs to continue training."""

    path: Path
    epoch: int  # epochs done: training continues with this (0-based) epoch
    phase: int
    stopped: bool
    history: list[dict[str, Any]]
    callbacks: list[dict[str, Any]]
    arrays: list[np.ndarray] = field(repr=False)
    callback_arrays: dict[str, np.ndarray] = field(repr=False)
    n_model: int = 0


def _numpy(v: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(v))


class Recorder:
    """Writes one model's backups and history in a run directory, and restores them.

    One recorder serves every phase of one model (``tag``: an ensemble member) in one
    :func:`kspec.train.loop.train` call.

    Args:
        run: the run directory.
        tag: the model's name in the run (``member0``), or "" for the model.
        backup: write backups (``training.callbacks.backup_and_restore``); without them the
            history is still written after every epoch, and a resume starts again.
        prior: history rows of epochs trained before this run (a continued run).
    """

    def __init__(self, run: RunDir, tag: str = "", *, backup: bool = True,
                 prior: Sequence[dict[str, Any]] = ()) -> None:
        self.run, self.tag, self.backup = run, tag, backup
        self.prior = [dict(r) for r in prior]
        self.rows = [dict(r) for r in prior]
        self.folder = run.backup_dir(tag)
        self._state: State | None = None
        self._opened = False
        self._pending: State | None = None  # callback state to apply at train begin

    # -- resuming -----------------------------------------------------------------------
    def restore(self, model: Any, phase: int, first: int, last: int) -> tuple[int, bool]:
        """Load the newest readable backup into ``model`` when it belongs to this phase.

        Args:
            model: the compiled model, set up for ``phase`` (trainable layers, optimizer).
            phase: the phase about to train; ``first``/``last``: its epochs.

        Returns:
            ``(start, skip)``: the epoch to start from, and whether the whole phase was
            already trained (a later phase's backup exists; its weights will be loaded).
        """
        if not self._opened:
            self._opened = True
            self._state = self._newest() if self.backup else None
            self.rows = list(self._state.history) if self._state else list(self.prior)
            self._repair_files()
        state = self._state
        if state is None or state.phase < phase:
            return first, False
        if state.phase > phase:
            return last, True
        self._load_variables(model, state)
        self._pending, self._state = state, None
        return (last if state.stopped else min(max(state.epoch, first), last)), False

    def _newest(self) -> State | None:
        files = sorted((p for p in self.folder.glob("epoch-*.npz") if _NAME.match(p.name)),
                       reverse=True)
        for i, path in enumerate(files):
            try:
                state = read_state(path)
            except BackupUnreadable as e:
                older = next((p.name for p in files[i + 1:]), None)
                then = (f"resuming from the older {older}" if older else
                        "no older backup: training starts again from its first epoch")
                _say(f"warning: {path} cannot be read ({e}); {then}")
                with contextlib.suppress(OSError):  # it would only be tried again
                    path.unlink(missing_ok=True)
                continue
            return state
        if not files and any(self.run.backup_root.glob("*/latest.weights.h5")):
            _say(f"warning: {self.run.backup_root} holds a backup of an older kspec (Keras's "
                 "BackupAndRestore), which this one does not read; training starts again from "
                 "its first epoch")
        return None

    def _repair_files(self) -> None:
        """Make history.csv (and diagnostics.csv) agree with the state resumed from."""
        history = self.run.history_csv(self.tag)
        if self.rows:
            self.run.write_history(self.rows, self.tag)
        elif history.is_file():
            history.unlink()
        done = 1 + max((r["epoch"] for r in self.rows), default=-1)
        # Diagnostics rows are numbered by epochs done (0: before training); a run that
        # starts again records its epoch 0 again.
        _trim_csv(self.run.diagnostics_csv(self.tag),
                  lambda row: done > 0 and int(row["epoch"]) <= done)

    def _load_variables(self, model: Any, state: State) -> None:
        from kspec.train.scale import build_optimizer

        build_optimizer(model)
        model_vars, opt_vars = variables(model)
        targets = model_vars + opt_vars
        mismatch = len(targets) != len(state.arrays) or state.n_model != len(model_vars) or any(
            tuple(v.shape) != a.shape for v, a in zip(targets, state.arrays))
        if mismatch:
            raise DataError(f"{state.path}: this backup is of another model ({len(state.arrays)}"
                            f" variables; the model has {len(targets)}); remove "
                            f"{self.run.backup_root} to train the run from its first epoch")
        for v, a in zip(targets, state.arrays):
            v.assign(a)

    def apply_callback_state(self, stateful: Sequence[Any]) -> None:
        """Give early stopping & co. the state they had when the backup was written."""
        state, self._pending = self._pending, None
        if state is None:
            return
        for entry in state.callbacks:
            index = entry["index"]
            if index >= len(stateful) or type(stateful[index]).__name__ != entry["class"]:
                continue
            cb = stateful[index]
            for name, value in entry["attrs"].items():
                setattr(cb, name, value)
            if entry.get("weights") is not None:
                cb.best_weights = [state.callback_arrays[f"c{index}_{j}"]
                                   for j in range(entry["weights"])]

    # -- recording ----------------------------------------------------------------------
    def epoch_end(self, model: Any, phase: int, epoch: int, logs: dict[str, Any],
                  stateful: Sequence[Any]) -> None:
        """Record a finished epoch: the backup first, then the history from the same rows.

        An epoch whose loss is NaN/inf is not recorded (training stops with an error, and a
        resume starts from the last good epoch).
        """
        row: dict[str, Any] = {"epoch": int(epoch)}
        for key, value in (logs or {}).items():
            try:
                row[key] = float(value)
            except (TypeError, ValueError):
                continue
        loss = row.get("loss")
        if loss is not None and not math.isfinite(loss):
            return
        self.rows = [r for r in self.rows if r["epoch"] < epoch] + [row]
        if self.backup:
            self._write(model, phase, epoch + 1, bool(getattr(model, "stop_training", False)),
                        stateful)
        self.run.write_history(self.rows, self.tag)

    def _write(self, model: Any, phase: int, done: int, stopped: bool,
               stateful: Sequence[Any]) -> None:
        model_vars, opt_vars = variables(model)
        arrays = {f"v{i}": _numpy(v) for i, v in enumerate(model_vars + opt_vars)}
        entries = []
        for i, cb in enumerate(stateful):
            attrs = {a: _plain(getattr(cb, a, None)) for a in _CALLBACK_STATE[_kind(cb)]}
            weights = getattr(cb, "best_weights", None)
            if weights is not None:
                arrays.update({f"c{i}_{j}": np.asarray(w) for j, w in enumerate(weights)})
            entries.append({"index": i, "class": type(cb).__name__, "attrs": attrs,
                            "weights": None if weights is None else len(weights)})
        state = {"format": FORMAT, "epoch": done, "phase": phase, "stopped": stopped,
                 "n_model": len(model_vars), "n_variables": len(model_vars) + len(opt_vars),
                 "history": self.rows, "callbacks": entries}
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"epoch-{done:06d}.npz"
        size = sum(a.nbytes for a in arrays.values())
        ensure_free(self.folder, int(size * 1.05) + 64 * 1024, path)
        text = np.array(json.dumps(state))
        atomic_write(path, lambda f: np.savez(f, state=text, **arrays))
        for old in sorted(self.folder.glob("epoch-*.npz"), reverse=True)[KEEP:]:
            old.unlink(missing_ok=True)

    def history(self, first: int, last: int) -> dict[str, list[float]]:
        """The recorded epochs ``first <= epoch < last`` as Keras's ``History.history``."""
        rows = [r for r in self.rows if first <= r["epoch"] < last]
        keys = sorted({k for r in rows for k in r if k != "epoch"})
        return {k: [float(r.get(k, math.nan)) for r in rows] for k in keys}

    def callback(self, phase: int, stateful: Sequence[Any]) -> Any:
        """The Keras callback that records every epoch of ``phase`` (see :meth:`epoch_end`).

        Args:
            stateful: the callbacks before it in the list whose state is backed up
                (:func:`stateful_callbacks`).
        """
        return _callback_class()(self, phase, list(stateful))


def stateful_callbacks(callbacks: Sequence[Any]) -> list[Any]:
    """The callbacks whose state a backup keeps (early stopping, LR reduction, checkpoint)."""
    return [cb for cb in callbacks if _kind(cb) is not None]


def _kind(cb: Any) -> str | None:
    for cls in type(cb).__mro__:
        if cls.__name__ in _CALLBACK_STATE and cls.__module__.startswith("keras"):
            return cls.__name__
    return None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_state(path: Path) -> State:
    """One backup file, checked whole (zip CRCs, every array read).

    Raises:
        BackupUnreadable: it is damaged, truncated or not a kspec backup.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["state"]))
            if meta.get("format") != FORMAT:
                raise BackupUnreadable(f"format {meta.get('format')!r}, expected {FORMAT}")
            arrays = [np.array(z[f"v{i}"]) for i in range(int(meta["n_variables"]))]
            extra = {k: np.array(z[k]) for k in z.files if k.startswith("c")}
        return State(path=path, epoch=int(meta["epoch"]), phase=int(meta["phase"]),
                     stopped=bool(meta["stopped"]), history=list(meta["history"]),
                     callbacks=list(meta["callbacks"]), arrays=arrays, callback_arrays=extra,
                     n_model=int(meta["n_model"]))
    except BackupUnreadable:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise BackupUnreadable(f"{type(e).__name__}: {first_line(e)}") from e


def _trim_csv(path: Path, keep) -> None:
    """Rewrite a per-epoch CSV without the rows ``keep`` refuses (and a half-written last
    line a kill may have left); nothing happens when every row stays."""
    if not path.is_file():
        return
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames or []
        rows = list(reader)
    kept = []
    for row in rows:
        try:
            whole = None not in row.values() and None not in row and keep(row)
        except (TypeError, ValueError):
            whole = False
        if whole:
            kept.append(row)
    if len(kept) == len(rows):
        return
    out = io.StringIO()
    w = csv.DictWriter(out, fields, lineterminator="\r\n")
    w.writeheader()
    w.writerows(kept)
    atomic_write_text(path, out.getvalue())


def checkpoint_callback(path: Path, *, monitor: str, save_best_only: bool, mode: str) -> Any:
    """Keras's ``ModelCheckpoint`` that writes a temporary file and renames it into place,
    so a kill while it saves keeps the previous checkpoint whole."""
    import keras

    class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
        def __init__(self) -> None:
            self.final = Path(path)
            self.tmp = self.final.with_name(f".{self.final.stem}.tmp{os.getpid()}"
                                            f"{self.final.suffix}")
            super().__init__(str(self.tmp), monitor=monitor, save_best_only=save_best_only,
                             mode=mode)

        def on_epoch_end(self, epoch, logs=None):
            ensure_free(self.final.parent, model_file_bytes(self.model), self.final)
            try:
                super().on_epoch_end(epoch, logs)
                if self.tmp.is_file():
                    with open(self.tmp, "rb") as f:
                        os.fsync(f.fileno())
                    os.replace(self.tmp, self.final)
                    fsync_dir(self.final.parent)
            except Exception as e:
                self.tmp.unlink(missing_ok=True)
                err = disk_error(e, self.final)
                if err is None:
                    raise
                raise err from e

    return AtomicCheckpoint()


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


_CLASS: list[type] = []


def _callback_class() -> type:
    if _CLASS:
        return _CLASS[0]
    import keras

    class RunRecord(keras.callbacks.Callback):
        """After every epoch: the backup, then history.csv (see :class:`Recorder`)."""

        def __init__(self, recorder: Recorder, phase: int, stateful: list) -> None:
            super().__init__()
            self.recorder, self.phase, self.stateful = recorder, phase, stateful

        def on_train_begin(self, logs=None):
            # After the callbacks before it reset themselves for this fit.
            self.recorder.apply_callback_state(self.stateful)

        def on_epoch_end(self, epoch, logs=None):
            self.recorder.epoch_end(self.model, self.phase, epoch, logs or {}, self.stateful)

    _CLASS.append(RunRecord)
    return RunRecord
