"""TF Serving's JSON predict format, to and from NumPy arrays.

Requests come in the row format (``{"instances": [...]}``: one entry per example, an object
per example when the signature has several inputs) or the columnar format
(``{"inputs": ...}``: one tensor per input, or the bare tensor of a single input), as in
``tensorflow_serving/util/json_tensor.cc``. Row requests are answered with
``{"predictions": ...}`` (a list per example; objects when there are several outputs),
columnar ones with ``{"outputs": ...}`` (the bare tensor of a single output, else an
object). Strings travel as JSON strings, binary strings as ``{"b64": "..."}``; outputs whose
name ends in ``_bytes`` are written as ``{"b64": ...}``. ``NaN`` and ``Infinity`` are
accepted and written, as TF Serving does.

Every problem raises :class:`~kspec.serve.errors.ServingError` (HTTP 400) naming the input,
the dtype and shape the signature expects, and what was received.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import orjson

from kspec.serve.errors import invalid

ROW, COLUMNAR = "row", "columnar"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output of a signature.

    Attributes:
        name: the signature key.
        dtype: the TensorFlow dtype name (``float32``, ``int64``, ``string``, ...).
        shape: dimensions with None where any size is allowed; None for unknown rank.
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...] | None

    @property
    def is_string(self) -> bool:
        return self.dtype == "string"

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(object) if self.is_string else np.dtype(self.dtype)

    def describe(self) -> str:
        """``dtype float32 and shape [-1, 8, 8, 1]`` (-1: any size), for error messages."""
        shape = "unknown" if self.shape is None else (
            "[" + ", ".join("-1" if d is None else str(d) for d in self.shape) + "]")
        return f"dtype {self.dtype} and shape {shape}"


@dataclass
class PredictRequest:
    """A parsed predict request.

    Attributes:
        signature_name: as asked (``""`` means the default signature).
        format: ``row`` or ``columnar`` (the response uses the same).
        inputs: one array per signature input, in the signature's dtypes.
        rows: the shared first dimension of the inputs, None when they differ.
    """

    signature_name: str
    format: str
    inputs: dict[str, np.ndarray]
    rows: int | None


def _preview(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, np.ndarray) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (TF Serving's parse errors, HTTP 400)."""
    if not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = orjson.loads(body)  # 4x faster than json on long lists of numbers
    except orjson.JSONDecodeError:
        doc = None  # NaN/Infinity (which orjson refuses) or an error: json says which
    try:
        doc = json.loads(body) if doc is None else doc
    except json.JSONDecodeError as e:
        raise invalid(f"JSON Parse error: {e.msg} at offset: {e.pos}") from None
    except (ValueError, RecursionError) as e:  # bad UTF-8; nesting too deep for the parser
        raise invalid(f"JSON Parse error: {str(e)[:200]}") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {_preview(doc)} Is not object")
    return doc


def parse_predict(doc: dict[str, Any],
                  inputs_of: Callable[[str], dict[str, TensorInfo]]) -> PredictRequest:
    """Read a predict request in either format.

    Args:
        doc: the JSON object of the request.
        inputs_of: the inputs of a signature name (``""``: the default signature); raises
            for an unknown signature.

    Example:
        >>> spec = {"x": TensorInfo("x", "float32", (None, 2))}
        >>> parse_predict({"instances": [[1, 2], [3, 4]]}, lambda s: spec).inputs["x"].shape
        (2, 2)
    """
    signature = doc.get("signature_name", "")
    if not isinstance(signature, str):
        raise invalid(f"JSON Value: {_preview(doc)} not formatted correctly. "
                      "'signature_name' key must be a string value.")
    specs = inputs_of(signature)
    if "instances" in doc and "inputs" in doc:
        raise invalid("Not formatted correctly: expecting only one of 'inputs' or "
                      "'instances' keys to exist")
    if "instances" in doc:
        arrays = _from_instances(doc["instances"], specs)
        fmt = ROW
    elif "inputs" in doc:
        arrays = _from_inputs(doc["inputs"], specs)
        fmt = COLUMNAR
    else:
        raise invalid("Missing 'inputs' or 'instances' key")
    firsts = {a.shape[0] if a.ndim else None for a in arrays.values()}
    rows = firsts.pop() if len(firsts) == 1 else None
    return PredictRequest(signature, fmt, arrays, rows)


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value: Any) -> bool:
    return isinstance(value, dict) and not _is_b64(value)


def _from_instances(instances: Any, specs: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid(f"Expecting 'instances' to be a list/array (received: "
                      f"{_preview(instances)})")
    if not instances:
        raise invalid("No values in 'instances' array")
    names = sorted(specs)
    if not _is_named(instances[0]):
        if len(specs) > 1:
            raise invalid(f"instances is a plain list, but the signature has "
                          f"{len(specs)} inputs ({', '.join(names)}): send a list of "
                          "objects with one key per input")
        (name,) = names
        if any(_is_named(item) for item in instances):
            raise invalid("instances mixes objects and plain values: use one or the other")
        return {name: to_array(instances, specs[name], "instances: ")}
    columns: dict[str, list[Any]] = {n: [] for n in names}
    for i, item in enumerate(instances):
        if not _is_named(item):
            raise invalid(f"instances[{i}]: expecting an object with keys {names} like "
                          f"instances[0] (received: {_preview(item)})")
        if item.keys() != specs.keys():
            unknown = sorted(set(item) - set(specs))
            missing = sorted(set(specs) - set(item))
            raise invalid(f"instances[{i}]: keys must be the signature's inputs {names}"
                          + (f"; unknown: {unknown}" if unknown else "")
                          + (f"; missing: {missing}" if missing else ""))
        for n in names:
            columns[n].append(item[n])
    return {n: to_array(columns[n], specs[n], "instances: ") for n in names}


def _from_inputs(inputs: Any, specs: dict[str, TensorInfo]) -> dict[str, np.ndarray]:
    names = sorted(specs)
    if not _is_named(inputs):
        if len(specs) > 1:
            raise invalid(f"inputs is a plain value/list, but the signature has "
                          f"{len(specs)} inputs ({', '.join(names)}): send an object "
                          "with one key per input")
        (name,) = names
        return {name: to_array(inputs, specs[name], "inputs: ")}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise invalid(f"Missing named input: {missing[0]} in 'inputs' object (expects "
                      f"{names}; received: {sorted(inputs)})")
    # TF Serving ignores keys that are not inputs of the signature; so does this.
    return {n: to_array(inputs[n], specs[n], "inputs: ") for n in names}


_KIND = {"b": "booleans", "i": "integers", "u": "integers", "f": "decimal numbers",
         "U": "strings", "S": "strings", "O": "objects, nulls or mixed values"}


def to_array(value: Any, spec: TensorInfo, where: str = "") -> np.ndarray:
    """A JSON value as an array of ``spec``'s dtype, its shape checked against ``spec``.

    Example:
        >>> to_array([[1, 2]], TensorInfo("x", "float32", (None, 2))).dtype
        dtype('float32')
    """
    if spec.is_string:
        array = _strings(value, spec, where)
    else:
        try:
            array = np.asarray(value)
        except (ValueError, TypeError, RecursionError):
            raise invalid(f"{where}input '{spec.name}' expects {spec.describe()}; received "
                          f"nested lists of unequal lengths: {_preview(value)}") from None
        array = _cast(array, spec, where)
    _check_shape(array, spec, where)
    return array


def _cast(array: np.ndarray, spec: TensorInfo, where: str) -> np.ndarray:
    target = spec.numpy_dtype
    kind = array.dtype.kind
    if array.size == 0:
        return array.astype(target)
    if target.kind == "f":
        ok = kind in "iuf"
    elif target.kind in "iu":
        ok = kind in "iu"
    elif target.kind == "b":
        ok = kind == "b"
    else:  # complex and other dtypes JSON cannot express
        raise invalid(f"{where}input '{spec.name}' has dtype {spec.dtype}, which the JSON "
                      "API cannot carry")
    if not ok:
        first = _preview(array.reshape(-1)[:1].tolist()[0], 40)
        raise invalid(f"{where}input '{spec.name}' expects {spec.describe()}; received "
                      f"{_KIND.get(kind, kind)} (first: {first})")
    if target.kind in "iu":
        info = np.iinfo(target)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise invalid(f"{where}input '{spec.name}' expects {spec.describe()}; value "
                          f"{bad} is out of range for {spec.dtype}")
    return array.astype(target, copy=False)


def _strings(value: Any, spec: TensorInfo, where: str) -> np.ndarray:
    flat: list[bytes] = []

    def walk(v: Any, depth: int) -> tuple[int, ...]:
        if isinstance(v, list):
            if depth > 32:
                raise invalid(f"{where}input '{spec.name}': lists nested too deeply")
            shapes = {walk(item, depth + 1) for item in v}
            if len(shapes) > 1:
                raise invalid(f"{where}input '{spec.name}' expects {spec.describe()}; "
                              f"received nested lists of unequal lengths")
            return (len(v), *(shapes.pop() if shapes else ()))
        if isinstance(v, str):
            flat.append(v.encode("utf-8"))
        elif _is_b64(v):
            try:
                flat.append(base64.b64decode(v["b64"], validate=True))
            except binascii.Error:
                raise invalid(f"{where}input '{spec.name}': unable to base64 decode "
                              f"{_preview(v, 40)}") from None
        else:
            raise invalid(f"{where}input '{spec.name}' expects {spec.describe()}; received "
                          f"{_preview(v, 40)} (strings go as JSON strings, binary data as "
                          '{"b64": "..."})')
        return ()

    shape = walk(value, 0)
    array = np.empty(len(flat), dtype=object)
    array[:] = flat
    return array.reshape(shape)


def _check_shape(array: np.ndarray, spec: TensorInfo, where: str) -> None:
    if spec.shape is None:
        return
    expected = spec.shape
    if array.ndim != len(expected) or any(
            e is not None and e != got for e, got in zip(expected, array.shape)):
        got = "[" + ", ".join(str(d) for d in array.shape) + "]"
        raise invalid(f"{where}input '{spec.name}' expects {spec.describe()} (-1: any size); "
                      f"received shape {got}")


# ----------------------------------------------------------------------------- responses


def to_json_values(name: str, array: np.ndarray) -> Any:
    """An output array as nested JSON lists.

    Floats are written with the fewest digits that read back to the same float32 (as TF
    Serving writes them: 0.2, not 0.20000000298023224); strings as text, or ``{"b64": ...}``
    when the output's name ends in ``_bytes``.
    """
    kind = array.dtype.kind
    if kind == "f" and array.dtype.itemsize < 8:
        return array.astype(str).astype(np.float64).tolist()
    if kind in "OS":
        if name.endswith("_bytes"):
            encode = np.frompyfunc(lambda b: {"b64": base64.b64encode(b).decode("ascii")}, 1, 1)
        else:
            encode = np.frompyfunc(lambda b: b.decode("utf-8", "replace")
                                   if isinstance(b, bytes) else str(b), 1, 1)
        return encode(array).tolist() if array.ndim else encode(array)
    return array.tolist()


def predict_response(outputs: dict[str, np.ndarray], fmt: str) -> dict[str, Any]:
    """The JSON object answering a predict request made in format ``fmt``.

    Example:
        >>> predict_response({"y": np.array([[0.5], [1.5]], "float32")}, "row")
        {'predictions': [[0.5], [1.5]]}
    """
    names = sorted(outputs)
    if fmt == COLUMNAR:
        values = {n: to_json_values(n, outputs[n]) for n in names}
        return {"outputs": values[names[0]] if len(names) == 1 else values}
    sizes = {n: (outputs[n].shape[0] if outputs[n].ndim else None) for n in names}
    if None in sizes.values():
        raise invalid(f"Tensor name: {[n for n in names if sizes[n] is None][0]} has no "
                      "shape information; use the columnar format ('inputs')")
    if len(set(sizes.values())) > 1:
        raise invalid(f"outputs have different batch sizes {sizes}; use the columnar "
                      "format ('inputs')")
    values = {n: to_json_values(n, outputs[n]) for n in names}
    if len(names) == 1:
        return {"predictions": values[names[0]]}
    return {"predictions": [dict(zip(names, row)) for row in zip(*(values[n] for n in names))]}
