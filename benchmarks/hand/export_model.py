"""Job (d) of bench_process.py written by hand: load a trained model, export a SavedModel
for TF Serving (MODELS/NAME/1) and check that the exported signature answers like the
model.

    python benchmarks/hand/export_model.py MODEL_KERAS OUT_DIR
"""

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

model = keras.saving.load_model(sys.argv[1])
target = Path(sys.argv[2]) / "hand" / "1"
model.export(str(target))
served = tf.saved_model.load(str(target)).signatures["serving_default"]
x = np.random.default_rng(0).normal(size=(8, *model.inputs[0].shape[1:])).astype("float32")
got = next(iter(served(tf.constant(x)).values())).numpy()
np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
print(f"exported {target}")
