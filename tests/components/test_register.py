"""``kspec.register``: user components by name in specs, saved and loaded in safe mode."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import kspec  # noqa: E402
from kspec import registry  # noqa: E402
from tests.helpers import components as h  # noqa: E402

# A module of user components, written to a file so that a fresh process can import it.
USER_MODULE = textwrap.dedent('''
    import keras
    import kspec
    from keras import ops


    @kspec.register("scaled_dense")
    class ScaledDense(keras.layers.Layer):
        """a dense layer whose output is multiplied by a fixed factor"""

        def __init__(self, units=2, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.factor = units, factor
            self.dense = keras.layers.Dense(units)

        def build(self, input_shape):
            self.dense.build(input_shape)

        def call(self, x):
            return self.dense(x) * self.factor

        def get_config(self):
            return {**super().get_config(), "units": self.units, "factor": self.factor}


    @kspec.register("cube", kind="activation")
    def cube(x):
        """x to the third power"""
        return x * x * x


    @kspec.register("doubled_mse")
    class DoubledMSE(keras.losses.Loss):
        """twice the mean squared error"""

        def call(self, y_true, y_pred):
            return 2.0 * ops.mean(ops.square(y_true - y_pred), axis=-1)


    @kspec.register("max_abs_error")
    class MaxAbsError(keras.metrics.Metric):
        """largest absolute error seen so far"""

        def __init__(self, name="max_abs_error", dtype=None):
            super().__init__(name=name, dtype=dtype)
            self.value = self.add_variable((), "zeros", name="value")

        def update_state(self, y_true, y_pred, sample_weight=None):
            err = ops.max(ops.abs(ops.cast(y_true, self.dtype) - y_pred))
            self.value.assign(ops.maximum(self.value, err))

        def result(self):
            return self.value


    @kspec.register("halves")
    class Halves(keras.initializers.Initializer):
        """every weight 0.5 (for testing)"""

        def __call__(self, shape, dtype=None):
            return ops.full(shape, 0.5, dtype=dtype)


    @kspec.register("sum_penalty")
    class SumPenalty(keras.regularizers.Regularizer):
        """penalty 0.1 * |sum(w)|"""

        def __call__(self, w):
            return 0.1 * ops.abs(ops.sum(w))

        def get_config(self):
            return {}


    SPEC = {
        "name": "user_components",
        "seed": 0,
        "model": {"inputs": [{"name": "x", "shape": [4]}], "layers": [
            {"type": "scaled_dense", "units": 3, "factor": 0.5},
            {"type": "dense", "units": 4, "activation": "cube",
             "kernel_regularizer": "sum_penalty"},
            {"type": "dense", "units": 4, "activation": {"type": "maxout", "pieces": 2}},
            {"type": "dense", "units": 1, "kernel_initializer": "halves"},
        ]},
        "training": {"loss": "doubled_mse", "metrics": ["max_abs_error"], "epochs": 1},
    }
''')


@pytest.fixture(scope="module")
def user_module(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "my_components.py").write_text(USER_MODULE)
    sys.path.insert(0, str(folder))
    import my_components

    yield folder, my_components
    sys.path.remove(str(folder))
    for name, kind in (("scaled_dense", "layers"), ("cube", "activations"),
                       ("doubled_mse", "losses"), ("max_abs_error", "metrics"),
                       ("halves", "initializers"), ("sum_penalty", "regularizers")):
        registry.ALL[kind].unregister(name)


def test_kinds_are_detected_from_the_base_class(user_module):
    expected = {"layers": "scaled_dense", "activations": "cube", "losses": "doubled_mse",
                "metrics": "max_abs_error", "initializers": "halves",
                "regularizers": "sum_penalty"}
    for kind, name in expected.items():
        entry = registry.ALL[kind].get(name)
        assert "user" in entry.tags
        assert entry.description  # from the docstring
    assert keras.saving.get_registered_name(user_module[1].DoubledMSE) == "kspec_user>DoubledMSE"


def test_user_components_train_save_and_load_in_a_fresh_process(user_module, tmp_path):
    folder, mod = user_module
    model, _, logs = h.roundtrip(mod.SPEC, h.X_VEC, h.Y_REG, tmp_path, evaluate=True)
    assert set(logs) == {"loss", "max_abs_error"}
    np.save(tmp_path / "pred.npy", np.asarray(model({"x": h.X_VEC})))
    np.save(tmp_path / "x.npy", h.X_VEC)
    # A new interpreter: only importing the user's module registers the classes again.
    script = textwrap.dedent(f"""
        import sys, numpy as np, keras
        sys.path.insert(0, {str(folder)!r})
        import my_components
        import kspec.components  # kspec's own classes (Maxout here)
        m = keras.saving.load_model({str(tmp_path / 'model.keras')!r}, safe_mode=True)
        x = np.load({str(tmp_path / 'x.npy')!r})
        np.testing.assert_allclose(np.asarray(m({{"x": x}})),
                                   np.load({str(tmp_path / 'pred.npy')!r}), rtol=1e-6)
        print("loaded", type(m.loss).__name__)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={"TF_CPP_MIN_LOG_LEVEL": "3",
                                            "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded DoubledMSE" in done.stdout


def test_spec_errors_list_user_names(user_module):
    with pytest.raises(kspec.SpecError, match=r"did you mean 'doubled_mse'"):
        kspec.load_spec({**user_module[1].SPEC, "training": {"loss": "doubled_mes"}})
    bad = {**user_module[1].SPEC}
    bad["model"] = {"inputs": [{"name": "x", "shape": [4]}],
                    "layers": [{"type": "scaled_dense", "unitz": 3}]}
    with pytest.raises(kspec.SpecError, match=r"model.layers\[0\].unitz: unknown parameter"):
        kspec.load_spec(bad)


def test_builtin_names_are_protected():
    with pytest.raises(ValueError, match="'mse' is a built-in name"):
        @kspec.register("mse")
        class Mine(keras.losses.Loss):
            def call(self, y_true, y_pred):
                return y_pred


def test_functions_need_a_kind_and_classes_a_keras_base():
    with pytest.raises(TypeError, match="pass kind="):
        kspec.register("f")(lambda x: x)
    with pytest.raises(TypeError, match="not a Keras Layer"):
        @kspec.register("plain")
        class Plain:
            pass
    with pytest.raises(TypeError, match="must be a class"):
        kspec.register("g", kind="layer")(lambda x: x)


def test_re_running_a_definition_replaces_it_and_a_different_one_does_not():
    def define():
        @kspec.register("twice", kind="activation")
        def twice(x):
            return 2 * x
        return twice

    try:
        first, second = define(), define()  # a notebook cell run twice
        assert registry.ACTIVATIONS.get("twice").factory() is second
        with pytest.raises(ValueError, match="already registered by you"):
            @kspec.register("twice", kind="activation")
            def other(x):
                return 3 * x
    finally:
        registry.ACTIVATIONS.unregister("twice")
    del first


def test_validating_specs_with_every_component_stays_tensorflow_free():
    # Using kspec.register imports Keras (it registers classes with Keras), but naming
    # components in a spec, validating and linting it never does.
    spec = {"model": {"inputs": [{"name": "x", "shape": [8, 8, 1]}], "layers": [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "kernel_initializer": "sobel_x",
         "trainable": False},
        {"type": "conv2d", "filters": 4, "kernel_size": 3, "activation": {"type": "maxout"}},
        {"type": "flatten"},
        {"type": "dense", "units": 8, "activation": "prelu", "kernel_initializer": "he_normal",
         "kernel_regularizer": "orthogonal"},
        {"type": "dense", "units": 1, "activation": "sigmoid"}]},
        "training": {"loss": {"type": "label_columns", "loss": "bce"},
                     "optimizer": {"type": "adamw", "weight_decay": 0.01, "learning_rate":
                                   {"type": "cosine", "initial_learning_rate": 0.0,
                                    "decay_steps": 100, "warmup_target": 0.01,
                                    "warmup_steps": 10}},
                     "metrics": ["subgroup_accuracy_gap", "statistical_parity"]}}
    code = (f"import sys, kspec; kspec.load_spec({spec!r}); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True,
                         text=True, cwd=h.Path(__file__).resolve().parents[2], timeout=60)
    assert out.stdout.strip() == "False False", out.stderr[-2000:]


def test_bare_decorator_names_the_class_in_snake_case():
    @kspec.register
    class HalfLinear(keras.layers.Layer):
        """multiplies by one half"""

        def call(self, x):
            return 0.5 * x

    try:
        entry = registry.LAYERS.get("half_linear")
        assert entry.factory is HalfLinear and entry.description == "multiplies by one half"
    finally:
        registry.LAYERS.unregister("half_linear")


def test_an_activation_layer_is_applied_after_the_weights(tmp_path):
    @kspec.register("soft_clip", kind="activation")
    class SoftClip(keras.layers.Layer):
        """limit * tanh(x / limit): a learned-free soft clipping"""

        def __init__(self, limit=2.0, **kwargs):
            super().__init__(**kwargs)
            self.limit = limit

        def call(self, x):
            return self.limit * keras.ops.tanh(x / self.limit)

        def get_config(self):
            return {**super().get_config(), "limit": self.limit}

    try:
        layers = [{"type": "dense", "units": 4, "name": "hidden",
                   "activation": {"type": "soft_clip", "limit": 0.5}},
                  {"type": "dense", "units": 1}]
        model, loaded, _ = h.roundtrip(h.spec_dict(layers, "mse"), h.X_VEC, h.Y_REG, tmp_path)
        assert isinstance(loaded.get_layer("hidden"), SoftClip)
        assert loaded.get_layer("hidden").limit == 0.5
        assert loaded.get_layer("hidden").output.shape[-1] == 4
        with pytest.raises(kspec.SpecError, match=r"activation.limt: unknown parameter"):
            kspec.load_spec(h.spec_dict([{"type": "dense", "units": 1, "activation":
                                          {"type": "soft_clip", "limt": 1}}], "mse"))
    finally:
        registry.ACTIVATIONS.unregister("soft_clip")
