"""Load saved models safely: ``.keras`` files and SavedModels, with one clear error each.

Every place that loads a model (``kspec.load_model``, transfer bases, ``kspec export``,
``kspec predict``) goes through this module, so that:

- kspec's own Keras classes (fitted preprocessing, augmentation, custom layers, losses and
  metrics) are registered before a ``.keras`` file is read (the modules listed in
  ``kspec.registry.KERAS_CLASS_MODULES``);
- ``.keras`` files load with Keras ``safe_mode=True``: no code runs from a file;
- any failure becomes a :class:`ModelFileError` that names the file and says what is wrong
  with it (empty, not a zip archive, truncated, no ``config.json``, an unknown class, a
  SavedModel without ``variables/``, ...), never a raw Keras or TensorFlow traceback.

A SavedModel is a TensorFlow graph and runs as it is (as TF Serving runs it): its ops can
read and write files. Load only SavedModels you trust.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from kspec.errors import DataError, first_line

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_WEIGHT_FILES = ("model.weights.h5", "model.weights.npz")


class ModelFileError(DataError):
    """A model file or folder that cannot be loaded; the message names it and says why.

    A :class:`kspec.DataError` (a bad input file): the ``kspec`` command prints it as one
    line and exits with status 2.
    """


def register_keras_classes() -> None:
    """Register every kspec Keras class with Keras serialization (imports Keras)."""
    from kspec.registry import load_keras_classes

    load_keras_classes()


def custom_objects() -> dict[str, Any]:
    """kspec's Keras classes by their registered names, for ``keras.saving.load_model``.

    Example:
        >>> import keras, kspec
        >>> model = keras.saving.load_model("runs/quickstart-20260101-120000/model.keras",
        ...                                 custom_objects=kspec.custom_objects(),
        ...                                 safe_mode=True)  # doctest: +SKIP
        >>> sorted(kspec.custom_objects())[:2]
        ['kspec>BalancedAccuracy', 'kspec>ContentLoss']
    """
    import keras

    register_keras_classes()
    return {name: obj for name, obj in keras.saving.get_custom_objects().items()
            if name.startswith("kspec>") and getattr(obj, "__module__", "").startswith("kspec.")}


def keras_file(path: str | Path) -> Path:
    """The ``.keras`` file that ``path`` names: the file itself, or ``RUN/model.keras``."""
    path = Path(path).expanduser()
    if path.is_dir():
        from kspec.rundir import RunDir

        if RunDir(path).has_model():
            return RunDir(path).model_file
        raise ModelFileError(f"{path}: a folder without model.keras (expected a .keras file "
                             "or a kspec run directory)")
    if not path.exists():
        raise ModelFileError(f"{path}: file not found")
    return path


def load_model(path: str | Path, *, compile: bool = True):
    """Load a ``.keras`` model (or a run directory's ``model.keras``) in Keras safe mode.

    Registers every kspec class first, so models with fitted preprocessing, augmentation and
    kspec's layers, losses and metrics load in a fresh process. Classes of your own
    (``kspec.register``) load once the module that defines them is imported.

    Args:
        path: a ``.keras`` file, or a run directory holding ``model.keras``.
        compile: restore the loss, metrics and optimizer state too (as Keras does).

    Returns:
        The ``keras.Model``.

    Raises:
        ModelFileError: the file is missing, empty, not a ``.keras`` archive, truncated,
            lacks its config or weights, uses an unknown class or would run code.

    Example:
        >>> import kspec
        >>> model = kspec.load_model("runs/quickstart-20260101-120000")  # doctest: +SKIP
        >>> model.predict(x)  # doctest: +SKIP
    """
    import keras

    from kspec.compiler.precision import dtype_policy

    file = keras_file(path)
    config = check_keras_file(file)
    register_keras_classes()
    try:
        # Keras 3.15 saves each layer's dtype policy but not the model's own, which decides
        # whether compile() wraps the optimizer for loss scaling: a mixed_float16 model
        # would load with a plain optimizer and drop its saved state with a warning.
        with dtype_policy(_mixed_policy(config) or keras.config.dtype_policy().name):
            return keras.saving.load_model(str(file), compile=compile, safe_mode=True)
    except Exception as e:  # noqa: BLE001 - every failure is explained in one line
        raise ModelFileError(f"{file}: {_explain_keras_failure(file, e, config)}") from e


def _mixed_policy(config: Any) -> str | None:
    """``mixed_float16`` / ``mixed_bfloat16`` when a layer of the saved config uses it."""
    if isinstance(config, dict):
        name = config.get("config", {}).get("name") if config.get("class_name") == \
            "DTypePolicy" and isinstance(config.get("config"), dict) else None
        if isinstance(name, str) and name.startswith("mixed_"):
            return name
        values = config.values()
    elif isinstance(config, list):
        values = config
    else:
        return None
    for value in values:
        found = _mixed_policy(value)
        if found:
            return found
    return None


def check_keras_file(file: Path) -> dict[str, Any]:
    """Cheap checks of a ``.keras`` archive before Keras opens it; returns its config.

    Raises:
        ModelFileError: not a file, empty, not a zip archive (or a truncated one), no
            ``config.json`` or one that is not JSON.
    """
    if not file.is_file():
        raise ModelFileError(f"{file}: not a file (expected a .keras model file)")
    size = file.stat().st_size
    if size == 0:
        raise ModelFileError(f"{file}: the file is empty (0 bytes); a .keras model is a zip "
                             "archive")
    with open(file, "rb") as f:
        head = f.read(8)
    if head.startswith(_HDF5_MAGIC):
        raise ModelFileError(f"{file}: an HDF5 file (Keras's legacy .h5 format); kspec loads "
                             ".keras files: re-save the model with model.save('model.keras')")
    try:
        with zipfile.ZipFile(file) as archive:
            names = set(archive.namelist())
            text = archive.read("config.json") if "config.json" in names else None
    except zipfile.BadZipFile as e:
        if head.startswith(_ZIP_MAGIC):
            raise ModelFileError(f"{file}: truncated or corrupt ({size} bytes; the zip archive "
                                 f"is incomplete: {first_line(e)})") from e
        raise ModelFileError(f"{file}: not a .keras model (a .keras file is a zip archive; "
                             f"this one starts with {head[:4]!r})") from e
    except (OSError, EOFError, RuntimeError, ValueError) as e:  # unreadable, bad compression
        raise ModelFileError(f"{file}: the archive cannot be read ({type(e).__name__}: "
                             f"{first_line(e)})") from e
    if text is None:
        raise ModelFileError(f"{file}: a zip archive without config.json, not a Keras model "
                             f"(holds: {sorted(names)[:6]})")
    try:
        config = json.loads(text)
    except ValueError as e:
        raise ModelFileError(f"{file}: config.json is not valid JSON ({first_line(e)})") from e
    if not isinstance(config, dict) or "class_name" not in config:
        raise ModelFileError(f"{file}: config.json does not describe a Keras model (no "
                             "'class_name')")
    return config


def _explain_keras_failure(file: Path, error: Exception, config: dict[str, Any]) -> str:
    """Why ``keras.saving.load_model`` failed, in words, from the archive and the error."""
    text = str(error)
    if "safe_mode" in text or ("lambda" in text.lower() and "deserializ" in text):
        return ("the model contains Python code (a Lambda layer or a lambda function); "
                "kspec loads models in safe mode and never runs code from a file")
    unknown = _unknown_classes(config)
    if unknown:
        cls, name = unknown[0]
        why = ("a kspec class this version of kspec does not have (saved by a newer kspec?)"
               if name.startswith("kspec>") else
               "a class of your own: import the module that registers it (kspec.register or "
               "keras.saving.register_keras_serializable) before loading")
        more = f" ({len(unknown)} unknown classes)" if len(unknown) > 1 else ""
        return f"unknown class {cls!r} (registered as {name!r}): {why}{more}"
    with zipfile.ZipFile(file) as archive:
        names = set(archive.namelist())
        saved = _saved_keras_version(archive)
    if not names & set(_WEIGHT_FILES):
        return "the archive holds no weights (no model.weights.h5): an incomplete model file"
    if isinstance(error, OSError) or "truncated" in text or "h5" in text.lower():
        return (f"the weights (model.weights.h5) are truncated or corrupt "
                f"({type(error).__name__}: {first_line(error)})")
    import keras

    hint = ""
    if saved and saved != keras.__version__:
        hint = f" (saved with Keras {saved}; this is Keras {keras.__version__})"
    return f"cannot load the model: {type(error).__name__}: {first_line(error)}{hint}"


def _saved_keras_version(archive: zipfile.ZipFile) -> str | None:
    try:
        return json.loads(archive.read("metadata.json")).get("keras_version")
    except (KeyError, ValueError, AttributeError):
        return None


def _unknown_classes(config: Any) -> list[tuple[str, str]]:
    """``(class_name, registered_name)`` of every class in ``config`` that Keras does not
    know: not a Keras class and not registered (first seen first)."""
    import keras

    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            module, cls = node.get("module"), node.get("class_name")
            custom = module is None or (isinstance(module, str)
                                        and not module.startswith(("keras", "builtins")))
            if (custom and isinstance(cls, str) and "config" in node and cls != "function"
                    and not cls.startswith("__")):  # __keras_tensor__, __tuple__, ...
                name = node.get("registered_name")
                name = name if isinstance(name, str) else cls
                if (keras.saving.get_registered_object(name) is None
                        and (cls, name) not in found):
                    found.append((cls, name))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


# ----------------------------------------------------------------------------- SavedModels


def check_savedmodel(path: str | Path) -> Path:
    """Cheap structural checks of a SavedModel folder before TensorFlow reads it.

    Raises:
        ModelFileError: no folder, no or an empty ``saved_model.pb``.
    """
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ModelFileError(f"{path}: not a SavedModel folder" if path.exists()
                             else f"{path}: not found")
    pb = path / "saved_model.pb"
    if not pb.is_file():
        raise ModelFileError(f"{path}: not a SavedModel (no saved_model.pb)")
    if pb.stat().st_size == 0:
        raise ModelFileError(f"{pb}: the file is empty (0 bytes): an incomplete SavedModel")
    return path


def load_savedmodel(path: str | Path):
    """``tf.saved_model.load(path)`` with one clear error naming what is broken.

    The graph runs as it is, like TF Serving runs it; load only models you trust.

    Raises:
        ModelFileError: a missing or corrupt ``saved_model.pb``, a missing or truncated
            ``variables/``, or another load failure.

    Example:
        >>> loaded = load_savedmodel("models/quickstart/1")  # doctest: +SKIP
        >>> loaded.signatures["serving_default"]  # doctest: +SKIP
    """
    import tensorflow as tf

    path = check_savedmodel(path)
    try:
        return tf.saved_model.load(str(path))
    except Exception as e:  # noqa: BLE001 - every failure is explained in one line
        raise ModelFileError(explain_savedmodel_failure(path, e)) from e


def savedmodel_layer(path: str | Path, **kwargs: Any):
    """``keras.layers.TFSMLayer(path, **kwargs)`` with the errors of :func:`load_savedmodel`."""
    import keras

    path = check_savedmodel(path)
    try:
        return keras.layers.TFSMLayer(str(path), **kwargs)
    except Exception as e:  # noqa: BLE001 - every failure is explained in one line
        raise ModelFileError(explain_savedmodel_failure(path, e)) from e


def explain_savedmodel_failure(path: Path, error: Exception) -> str:
    """Why a SavedModel did not load, in one line that names the broken file."""
    text = str(error)
    variables = path / "variables"
    if "Cannot parse file" in text or "Error parsing message" in text:
        return (f"{path / 'saved_model.pb'}: corrupt or truncated (not a SavedModel protocol "
                "buffer)")
    if "0 MetaGraphs" in text or ("MetaGraph" in text and "tags" in text):
        return f"{path / 'saved_model.pb'}: holds no MetaGraph (truncated, or not a SavedModel)"
    if not variables.is_dir():
        return (f"{path}: the SavedModel has no variables/ folder (an incomplete copy? it "
                "holds the weights)")
    if not (variables / "variables.index").is_file():
        return (f"{variables}: variables.index is missing (an incomplete copy of the "
                "SavedModel?)")
    if not list(variables.glob("variables.data-*")):
        return f"{variables}: the weight data (variables.data-*) is missing"
    if isinstance(error, (IndexError, FileNotFoundError)) or "Read less bytes" in text \
            or "corrupt" in text.lower() or "truncated" in text.lower():
        return (f"{variables}: the weights are truncated or corrupt ({type(error).__name__}: "
                f"{first_line(error)})")
    return f"{path}: cannot load the SavedModel: {type(error).__name__}: {first_line(error)}"
