"""Optimizers and learning-rate schedules by name.

Every optimizer accepts gradient clipping (``clipnorm``, ``clipvalue``, ``global_clipnorm``)
and ``weight_decay`` (decoupled in ``adamw``).

An optimizer's ``learning_rate`` is a number or a schedule:
``{type: adam, learning_rate: {type: cosine, initial_learning_rate: 0.01, decay_steps: 1000}}``.
"""

from __future__ import annotations

from typing import Any

from kspec.registry import OPTIMIZERS, SCHEDULES

_COMMON = ("learning_rate", "clipnorm", "clipvalue", "global_clipnorm", "weight_decay",
           "use_ema", "ema_momentum", "gradient_accumulation_steps", "loss_scale_factor")


def _learning_rate(value: Any) -> Any:
    if isinstance(value, dict):
        return SCHEDULES.build(value, "training.optimizer.learning_rate")
    return value


def _optimizer(cls_name: str):
    def factory(**params):
        import keras

        if "learning_rate" in params:
            params["learning_rate"] = _learning_rate(params["learning_rate"])
        return getattr(keras.optimizers, cls_name)(**params)

    return factory


def _reg(name, cls_name, doc, params=(), aliases=()):
    OPTIMIZERS.register(name, _optimizer(cls_name), description=doc,
                        params=(*_COMMON, *params), aliases=aliases)


_reg("sgd", "SGD", "stochastic gradient descent, optional momentum and Nesterov",
     ("momentum", "nesterov"))
_reg("adam", "Adam", "adaptive moments (Kingma & Ba)", ("beta_1", "beta_2", "epsilon", "amsgrad"))
_reg("adamw", "AdamW", "Adam with decoupled weight decay", ("beta_1", "beta_2", "epsilon",
                                                            "amsgrad"))
_reg("rmsprop", "RMSprop", "divide by a running RMS of gradients",
     ("rho", "momentum", "epsilon", "centered"))
_reg("adagrad", "Adagrad", "per-parameter rates from accumulated squared gradients",
     ("initial_accumulator_value", "epsilon"))
_reg("adadelta", "Adadelta", "Adagrad with a moving window", ("rho", "epsilon"))
_reg("adamax", "Adamax", "Adam with the infinity norm", ("beta_1", "beta_2", "epsilon"))
_reg("nadam", "Nadam", "Adam with Nesterov momentum", ("beta_1", "beta_2", "epsilon"))
_reg("lion", "Lion", "sign-momentum optimizer (Chen et al. 2023)", ("beta_1", "beta_2"))
_reg("ftrl", "Ftrl", "follow-the-regularized-leader (sparse linear models)",
     ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
      "l2_regularization_strength", "l2_shrinkage_regularization_strength", "beta"))


def _schedule(cls_name: str):
    def factory(**params):
        import keras

        return getattr(keras.optimizers.schedules, cls_name)(**params)

    return factory


@SCHEDULES.register("constant")
def constant(learning_rate: float):
    """a fixed learning rate (same as a plain number)"""
    return learning_rate


SCHEDULES.register(
    "step", _schedule("PiecewiseConstantDecay"), aliases=("piecewise",),
    params=("boundaries", "values"),
    description="piecewise constant: values[i] until step boundaries[i]",
)
SCHEDULES.register(
    "exponential", _schedule("ExponentialDecay"),
    params=("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    description="initial * decay_rate^(step/decay_steps)",
)
SCHEDULES.register(
    "cosine", _schedule("CosineDecay"),
    params=("initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"),
    description="cosine decay to alpha*initial, optional linear warm-up to warmup_target",
)
SCHEDULES.register(
    "cosine_restarts", _schedule("CosineDecayRestarts"),
    params=("first_decay_steps", "initial_learning_rate", "t_mul", "m_mul", "alpha"),
    description="cosine decay restarted every period (SGDR), periods growing by t_mul",
)
SCHEDULES.register(
    "inverse_time", _schedule("InverseTimeDecay"),
    params=("initial_learning_rate", "decay_steps", "decay_rate", "staircase"),
    description="initial / (1 + decay_rate * step/decay_steps)",
)
SCHEDULES.register(
    "polynomial", _schedule("PolynomialDecay"),
    params=("initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle"),
    description="polynomial decay to end_learning_rate",
)
