"""Hyperparameter search: search spaces written in a spec, searched with KerasTuner.

``kspec.tune(spec)`` (:func:`kspec.search.run.tune`) runs a search;
:mod:`kspec.search.hyper` turns spaces into KerasTuner hyperparameters and runs trials through
the one training loop, :mod:`kspec.search.results` writes the trial table, plot and best spec,
and :mod:`kspec.search.distributed` runs chief/worker searches. Parsing and checking spaces
is TensorFlow-free and lives with the spec (:mod:`kspec.spec.spaces`,
:mod:`kspec.validation`).
"""
