"""TFLite target: convert the checked SavedModel and run it through the TFLite interpreter.

TF 2.21 still ships ``tf.lite.Interpreter`` (with a deprecation warning pointing to the
``ai_edge_litert`` package, which is not installed here); it is used when LiteRT is absent.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

from kspec.exporter.errors import ExportError
from kspec.exporter.signature import SIGNATURE_KEY


def convert(saved_model_dir: str | Path, out_file: str | Path) -> dict[str, Any]:
    """Convert a SavedModel's ``serving_default`` signature to ``out_file`` (``.tflite``).

    Built-in TFLite ops are tried first; if some op has no TFLite kernel, the conversion is
    retried allowing TensorFlow ops (the "flex" delegate, bundled with full TensorFlow but
    not with every mobile runtime), and the returned info says so.
    """
    import tensorflow as tf

    def attempt(select_ops: bool) -> bytes:
        conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir),
                                                        signature_keys=[SIGNATURE_KEY])
        if select_ops:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                              tf.lite.OpsSet.SELECT_TF_OPS]
        return conv.convert()

    try:
        content, flex = attempt(False), False
    except Exception as first:  # ConverterError: an op without a builtin kernel
        try:
            content, flex = attempt(True), True
        except Exception as e:
            raise ExportError(f"TFLite conversion failed: {e}") from first
    Path(out_file).write_bytes(content)
    return {"bytes": len(content), "select_tf_ops": flex}


def _interpreter(model_path: str | Path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # the successor of tf.lite
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=str(model_path))


def runner(model_path: str | Path) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """A function of named inputs -> named outputs backed by the TFLite interpreter.

    Example:
        >>> run = runner("models/digits/3/model.tflite")
        >>> run({"image": x})["output"].shape
        (16, 10)
    """
    interpreter = _interpreter(model_path)
    signature = interpreter.get_signature_runner(SIGNATURE_KEY)
    details = signature.get_input_details()

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {k: np.asarray(inputs[k], dtype=details[k]["dtype"]) for k in details}
        # The signature runner resizes its input tensors to each batch's shape.
        return {k: np.array(v) for k, v in signature(**feed).items()}

    run.input_details = details  # type: ignore[attr-defined]
    return run
