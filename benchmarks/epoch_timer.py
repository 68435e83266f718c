"""The Keras callback the training benchmarks time epochs with, and the steady epoch time
they report (imported by the scripts in this folder, which Python puts on the path when one
of them runs)."""

import statistics
import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """``times``: the wall time of each epoch of the last ``fit``, in seconds."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)


def steady(times: list[float]) -> float:
    """The median epoch time after the first epoch (which traces the model), in seconds."""
    return statistics.median(times[1:] or times)
