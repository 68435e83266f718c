"""Job (c) of bench_process.py written by hand with KerasTuner: the bundled digits, a seeded
split (15% validation, 15% test), a random search of 6 trials over the hidden units and the
learning rate, 5 epochs each; the best model evaluated on the test rows.

    python benchmarks/hand/tune_digits.py DIGITS_NPZ OUT_DIR
"""

import sys

import keras
import keras_tuner as kt
import numpy as np

data = np.load(sys.argv[1])
x = data["x"].reshape(len(data["x"]), -1).astype("float32") / 16.0
y = data["y"]
rng = np.random.default_rng(42)
order = rng.permutation(len(x))
n_test, n_val = round(len(x) * 0.15), round(len(x) * 0.15)
test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]


def build(hp):
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(hp.Choice("units", [32, 64, 128]), activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    lr = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log")
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


tuner = kt.RandomSearch(build, objective="val_accuracy", max_trials=6, seed=42,
                        directory=sys.argv[2], project_name="hand", overwrite=True)
tuner.search(x[train], y[train], validation_data=(x[val], y[val]), epochs=5, batch_size=32)
best = tuner.get_best_models(1)[0]
loss, accuracy = best.evaluate(x[test], y[test])
print(f"best trial's model: test accuracy {accuracy:.4f}")
