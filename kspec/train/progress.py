"""Progress bars that end at the epoch's step count, and the epoch clock of the data.

With ``steps_per_execution`` > 1 Keras reports each call into the compiled graph by the last
step it *could* have run (``begin + steps_per_execution - 1``), so an epoch of 10 steps run
8 at a time is reported as step 16: the bar printed ``16/10`` with a negative time estimate
(Keras 3.15, ``EpochIterator._enumerate_iterator`` and ``ProgbarLogger._update_progbar``).
:func:`progress_bar` counts no further than the epoch's steps.

Example:
    >>> model.fit(ds, epochs=3, callbacks=[progress_bar()])   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

_CLASSES: dict[str, type] = {}


def progress_bar() -> Any:
    """Keras's progress bar whose step count never passes the epoch's number of steps.

    Keras uses it instead of its own (a ``ProgbarLogger`` in the callbacks replaces the
    default one); ``verbose`` is taken from ``fit`` as usual.
    """
    if "bar" not in _CLASSES:
        import keras

        class StepProgbar(keras.callbacks.ProgbarLogger):
            def on_train_batch_end(self, batch, logs=None):
                if self.target is not None:
                    batch = min(batch, self.target - 1)
                super().on_train_batch_end(batch, logs)

        _CLASSES["bar"] = StepProgbar
    return _CLASSES["bar"]()


def epoch_clock(variable: Any, first_epoch: int) -> Any:
    """A callback that sets the data's pass counter
    (:func:`kspec.data.pipeline.epoch_variable`) to ``first_epoch`` when training begins,
    after Keras has looked at a first batch to build the metrics and before the first
    epoch's iterator starts. Keras then makes one iterator per epoch, each taking the next
    pass number, so epoch ``e`` always sees the order of pass ``e``."""
    if "clock" not in _CLASSES:
        import keras

        class EpochClock(keras.callbacks.Callback):
            def __init__(self, variable: Any, first_epoch: int) -> None:
                super().__init__()
                self.variable, self.first_epoch = variable, first_epoch

            def on_train_begin(self, logs=None):
                self.variable.assign(self.first_epoch)

        _CLASSES["clock"] = EpochClock
    return _CLASSES["clock"](variable, first_epoch)
