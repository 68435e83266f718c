"""Helpers shared by sub-commands."""

from __future__ import annotations

import gc
import os
import sys


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on the terminal, and without paying
    for Python's garbage collector while it does.

    The oneDNN, CUDA-stub and absl lines are written by C++ code during the import, and
    TF_CPP_MIN_LOG_LEVEL alone does not silence them, so the import runs with file
    descriptor 2 pointed at /dev/null. An import that fails still raises normally.
    Set KSPEC_TF_LOGS=1 to see them.

    The import creates ~680,000 Python objects (TensorFlow, Keras, and the scikit-learn and
    SciPy that Keras pulls in); the cyclic collector walked them seven times in full during
    a ``kspec fit``, ~0.5 s of CPU and wall time per command (``bench_process.py``). The
    collector is paused for the import, and what it created is then frozen (``gc.freeze``:
    kept out of later collections; they live as long as the process anyway). The import's
    own garbage, ~3 MB, stays with it. Only the command line does this: ``kspec.fit`` from
    Python leaves the caller's collector alone.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    collecting = gc.isenabled()
    gc.disable()
    try:
        if os.environ.get("KSPEC_TF_LOGS"):
            _import_tensorflow()
            return
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            _import_tensorflow()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    finally:
        gc.freeze()
        if collecting:
            gc.enable()


def _import_tensorflow() -> None:
    import tensorflow

    # The CUDA-stub lines appear when GPUs are first looked for. Looking (rather than
    # running an op) leaves the devices unconfigured: training.distribution may still
    # split a CPU-only machine into logical devices (docs/scale.md).
    tensorflow.config.list_physical_devices("GPU")


def add_set_option(parser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a value, e.g. --set training.epochs=3 --set model.layers[1].units=128",
    )
