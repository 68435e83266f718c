"""Helpers shared by sub-commands."""

from __future__ import annotations

import os
import sys


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter on the terminal.

    The oneDNN, CUDA-stub and absl lines are written by C++ code during the import, and
    TF_CPP_MIN_LOG_LEVEL alone does not silence them, so the import runs with file
    descriptor 2 pointed at /dev/null. An import that fails still raises normally.
    Set KSPEC_TF_LOGS=1 to see them.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ.get("KSPEC_TF_LOGS"):
        return
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401

        # The CUDA-stub lines appear when GPUs are first looked for. Looking (rather than
        # running an op) leaves the devices unconfigured: training.distribution may still
        # split a CPU-only machine into logical devices (docs/scale.md).
        tensorflow.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def add_set_option(parser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a value, e.g. --set training.epochs=3 --set model.layers[1].units=128",
    )
