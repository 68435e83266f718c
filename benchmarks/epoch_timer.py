"""The Keras callback the training benchmarks time epochs with (imported by the scripts in
this folder, which Python puts on the path when one of them runs)."""

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
