"""Spec -> Keras objects, one concept per module.

The provider modules (activations, initializers, ...) only register names at import time;
Keras is imported inside the factories, so importing them stays instant. The public way to
compile a spec is ``kspec.build(spec)`` (:func:`kspec.compiler.model.build_model`).
"""
