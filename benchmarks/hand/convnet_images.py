"""Job (b) of bench_process.py written by hand in Keras: generated 28x28 grey images in an
NPZ file, a seeded 90/10 split, conv32-pool-conv64-pool-flatten-dropout-softmax, Adam,
3 epochs, batch 128; evaluate on the test rows; save.

    python benchmarks/hand/convnet_images.py IMAGES_NPZ OUT_DIR
"""

import sys
from pathlib import Path

import keras
import numpy as np

data = np.load(sys.argv[1])
x, y = data["x"], data["y"]
rng = np.random.default_rng(42)
order = rng.permutation(len(x))
n_test = round(len(x) * 0.1)
test, train = order[:n_test], order[n_test:]

keras.utils.set_random_seed(42)
model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Conv2D(32, 3, activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Conv2D(64, 3, activation="relu"),
    keras.layers.MaxPooling2D(2),
    keras.layers.Flatten(),
    keras.layers.Dropout(0.5),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x[train], y[train], epochs=3, batch_size=128)
loss, accuracy = model.evaluate(x[test], y[test])
print(f"test accuracy {accuracy:.4f}")
model.save(Path(sys.argv[2]) / "model.keras")
