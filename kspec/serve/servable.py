"""One model version loaded for serving: a SavedModel's signatures, run without Keras.

The version is loaded with ``tf.saved_model.load`` and called through its concrete
signature functions; its ``signature_def`` map is read from ``saved_model.pb`` so that
``/metadata`` answers exactly what TF Serving would.
"""

from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from kspec.serve.errors import ServingError, invalid
from kspec.serve.exports import SIGNATURE_KEY
from kspec.serve.tensors import TensorInfo

SERVE_TAG = "serve"
# absl status codes (tensorflow/core/protobuf/error_codes.proto), by number.
_CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
          "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
          "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
          "UNAUTHENTICATED"]


class LoadError(Exception):
    """A version that cannot be served; ``code`` is TF Serving's error code for its status."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


@contextmanager
def keras_blocked() -> Iterator[None]:
    """Keep ``import tensorflow`` from importing Keras, which the server never uses.

    TensorFlow's ``__init__`` imports ``keras.src.optimizers`` eagerly when Keras is
    installed (its comment cites b/196254385: registering optimizers for SavedModels that
    hold them; serving signatures do not), which costs about a second and 150 MB. A None
    entry in ``sys.modules`` makes that import fail, which TensorFlow tolerates; the entry
    is removed afterwards, so ``tf.keras`` still works if something asks for it. Does
    nothing when Keras or TensorFlow is already imported.
    """
    block = "keras" not in sys.modules and "tensorflow" not in sys.modules
    if block:
        sys.modules["keras"] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if block and sys.modules.get("keras", 0) is None:
            del sys.modules["keras"]


def import_tensorflow():
    """``import tensorflow``, without Keras (see :func:`keras_blocked`)."""
    with keras_blocked():
        import tensorflow as tf
    return tf


@dataclass
class Signature:
    """A callable signature of a loaded version.

    Attributes:
        name: its key (``serving_default``).
        fn: the concrete function.
        inputs, outputs: ``{key: TensorInfo}``.
    """

    name: str
    fn: Any
    inputs: dict[str, TensorInfo]
    outputs: dict[str, TensorInfo]

    @property
    def batchable(self) -> bool:
        """Whether requests can be concatenated along the first axis and the outputs split
        again: every input and output has a free first dimension."""
        return all(t.shape is not None and len(t.shape) >= 1 and t.shape[0] is None
                   for t in (*self.inputs.values(), *self.outputs.values()))


def _info(name: str, spec: Any) -> TensorInfo:
    shape = None if spec.shape.rank is None else tuple(spec.shape.as_list())
    return TensorInfo(name, spec.dtype.name, shape)


def _error_code(e: Exception) -> str:
    code = getattr(e, "error_code", 2)
    return _CODES[code] if isinstance(code, int) and 0 <= code < len(_CODES) else "UNKNOWN"


def _tf_message(text: str) -> str:
    """The line of a TensorFlow error that says what went wrong, and the op.

    Graph errors start with "Graph execution error:" and "Detected at node N defined at",
    then a (usually unavailable) stack, then the message, then indented ``[[{{node}}]]``
    lines: keep the message and the node.
    """
    node = re.search(r"Detected at node (\S+)", text)
    skip = ("Graph execution error", "Detected at node", "<stack traces", "File ")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith((" ", "\t")) and not line.startswith(skip)]
    message = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", " ".join(lines)) or text.strip()
    return _first_lines(message + (f" (at op {node.group(1)})" if node else ""))


def _first_lines(text: str, limit: int = 400) -> str:
    text = " ".join(line.strip() for line in str(text).strip().splitlines()[:3])
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Servable:
    """A loaded SavedModel version.

    Attributes:
        path: the version directory.
        signatures: ``{key: Signature}`` (the ones TF Serving can call: not the init op).
        signature_def: the ``signature_def`` map as TF Serving's ``/metadata`` prints it.
    """

    def __init__(self, path: Path, loaded: Any, signatures: dict[str, Signature],
                 signature_def: dict[str, Any]) -> None:
        self.path = path
        self._loaded = loaded  # keeps the variables the signatures read alive
        self.signatures = signatures
        self.signature_def = signature_def

    def signature(self, name: str) -> Signature:
        """The signature called by a request's ``signature_name`` (``""``: the default)."""
        key = name or SIGNATURE_KEY
        if key not in self.signatures:
            raise invalid(f'Serving signature name: "{key}" not found in signature def '
                          f"(signatures: {sorted(self.signatures)})")
        return self.signatures[key]

    def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Call a signature on named arrays (blocking: run it in a worker thread)."""
        tf = sys.modules["tensorflow"]
        try:
            feed = {}
            for key, info in signature.inputs.items():
                tensor = tf.convert_to_tensor(inputs[key])
                feed[key] = tensor if tensor.dtype.name == info.dtype else tf.cast(
                    tensor, info.dtype)
            result = signature.fn(**feed)
            return {k: v.numpy() for k, v in result.items()}
        except tf.errors.OpError as e:
            raise ServingError(_error_code(e), _tf_message(e.message)) from None
        except (ValueError, TypeError) as e:
            raise invalid(_first_lines(str(e))) from None

    def check(self) -> None:
        """Call every signature on one row of zeros; raises LoadError when that fails."""
        for sig in self.signatures.values():
            if sig.inputs and any(t.shape is None for t in sig.inputs.values()):
                continue  # unknown rank: no row can be made up for it
            rows = {k: _zeros(t) for k, t in sig.inputs.items()}
            try:
                out = self.run(sig, rows)
            except ServingError as e:
                raise LoadError(f"signature {sig.name!r} fails on a row of zeros: "
                                f"{e.message}", e.code) from None
            missing = sorted(set(sig.outputs) - set(out))
            if missing:
                raise LoadError(f"signature {sig.name!r} did not return outputs {missing}")
            if sig.batchable:
                wrong = {k: list(v.shape) for k, v in out.items() if v.shape[:1] != (1,)}
                if wrong:
                    raise LoadError(f"signature {sig.name!r} returned {wrong} for one row")


def _zeros(info: TensorInfo) -> np.ndarray:
    shape = [1 if d is None else d for d in info.shape or ()]
    if info.is_string:
        return np.full(shape, b"", dtype=object)
    try:
        return np.zeros(shape, dtype=info.numpy_dtype)
    except TypeError:  # bfloat16 and other dtypes NumPy lacks: cast in run()
        return np.zeros(shape, dtype=np.float32)


def read_signature_def(path: Path) -> dict[str, Any]:
    """The ``signature_def`` map of the ``serve`` graph in ``saved_model.pb``, as JSON data
    (protobuf's JSON mapping with field names kept: what TF Serving's /metadata prints)."""
    from google.protobuf import json_format
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    model.ParseFromString((path / "saved_model.pb").read_bytes())
    for graph in model.meta_graphs:
        if SERVE_TAG in graph.meta_info_def.tags:
            return {k: json_format.MessageToDict(v, preserving_proto_field_name=True,
                                                 always_print_fields_with_no_presence=True)
                    for k, v in sorted(graph.signature_def.items())}
    raise LoadError(f"{path}: no meta graph tagged {SERVE_TAG!r}", "NOT_FOUND")


def load(path: str | Path) -> Servable:
    """Load a SavedModel version directory and check it (blocking; seconds for big models).

    Example:
        >>> s = load("models/digits/2")
        >>> sorted(s.signature("").inputs)
        ['image']
    """
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise LoadError(f"{path}: no saved_model.pb (kspec serve serves SavedModels; "
                        "export with --format savedmodel)", "NOT_FOUND")
    tf = import_tensorflow()
    try:
        signature_def = read_signature_def(path)
        loaded = tf.saved_model.load(str(path), tags=[SERVE_TAG])
    except LoadError:
        raise
    except Exception as e:  # a corrupt or foreign SavedModel: report it, keep serving
        raise LoadError(f"{path}: cannot load the SavedModel: "
                        f"{_first_lines(str(e)) or type(e).__name__}", _error_code(e)) from None
    signatures = {}
    for key, fn in loaded.signatures.items():
        _, kwargs = fn.structured_input_signature
        signatures[key] = Signature(
            key, fn, {k: _info(k, s) for k, s in sorted(kwargs.items())},
            {k: _info(k, s) for k, s in sorted(fn.structured_outputs.items())})
    if not signatures:
        raise LoadError(f"{path}: the SavedModel has no signatures to serve", "NOT_FOUND")
    servable = Servable(path, loaded, signatures, signature_def)
    servable.check()
    return servable
