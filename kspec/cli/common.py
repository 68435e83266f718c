"""Helpers shared by sub-commands."""

from __future__ import annotations

import os


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up chatter (C++ logs); set before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def add_set_option(parser) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a value, e.g. --set training.epochs=3 --set model.layers[1].units=128",
    )
