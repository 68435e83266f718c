"""Job (a) of bench_process.py written by hand in Keras, as a user would: the bundled digits,
a seeded 80/20 split, z-score fitted on the training rows, [Dense(128) > BN > ReLU >
Dropout(0.2)] x 2 > softmax, Adam, 20 epochs, batch 64; evaluate on the test rows; save.

    python benchmarks/hand/mlp_digits.py DIGITS_NPZ OUT_DIR
"""

import sys
from pathlib import Path

import keras
import numpy as np

data = np.load(sys.argv[1])
x = data["x"].reshape(len(data["x"]), -1).astype("float32")
y = data["y"]
rng = np.random.default_rng(42)
order = rng.permutation(len(x))
n_test = round(len(x) * 0.2)
test, train = order[:n_test], order[n_test:]
mean, std = x[train].mean(axis=0), x[train].std(axis=0)
std[std == 0] = 1.0
x = (x - mean) / std

keras.utils.set_random_seed(42)
model = keras.Sequential([keras.Input((64,))])
for _ in range(2):
    model.add(keras.layers.Dense(128))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.Activation("relu"))
    model.add(keras.layers.Dropout(0.2))
model.add(keras.layers.Dense(10, activation="softmax"))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[train], y[train], epochs=20, batch_size=64)
loss, accuracy = model.evaluate(x[test], y[test])
print(f"test accuracy {accuracy:.4f}")
model.save(Path(sys.argv[2]) / "model.keras")
