"""Tuners by name: each turns its options into a KerasTuner tuner class and its arguments.

Every function here implements one entry of ``registry.TUNERS`` (registered with the schema
of its options in :mod:`kspec.spec.search`) with the signature
``make(options, search, epochs) -> (KerasTuner tuner class, keyword arguments)``; the
arguments every tuner shares (hypermodel, objective, seed, directory, ...) are added by
:func:`kspec.search.hyper.make_tuner`. A new tuner is its options schema plus one function.
"""

from __future__ import annotations

from typing import Any


def random(options: Any, search: Any, epochs: int):
    import keras_tuner as kt

    return kt.RandomSearch, {"max_trials": search.max_trials}


def grid(options: Any, search: Any, epochs: int):
    import keras_tuner as kt

    return kt.GridSearch, {"max_trials": search.max_trials}


def bayesian(options: Any, search: Any, epochs: int):
    import keras_tuner as kt

    return kt.BayesianOptimization, {"max_trials": search.max_trials, "alpha": options.alpha,
                                     "beta": options.beta,
                                     "num_initial_points": options.initial_points}


def hyperband(options: Any, search: Any, epochs: int):
    import keras_tuner as kt

    return kt.Hyperband, {"max_epochs": epochs, "factor": options.factor,
                          "hyperband_iterations": options.iterations}
