"""Small real datasets that ship with kspec, so that every example runs offline.

They are scikit-learn's bundled copies of classic UCI datasets (BSD-3 licensed), saved as
``.npz`` under ``kspec/datasets``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from kspec.errors import SpecError
from kspec.registry import DATASETS


def _npz(name: str):
    def load() -> dict[str, np.ndarray]:
        with resources.files("kspec.datasets").joinpath(f"{name}.npz").open("rb") as f:
            with np.load(f, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}

    return load


for _name, _desc in {
    "digits": "1,797 handwritten digits, 8x8x1 grey images (0-16), 10 classes",
    "iris": "150 iris flowers, 4 measurements, 3 species",
    "diabetes": "442 patients, 10 features, disease progression after one year (regression)",
    "breast_cancer": "569 tumours, 30 features, malignant (0) or benign (1)",
}.items():
    DATASETS.register(_name, _npz(_name), description=_desc, params=())


def load_bundled(name: str, path: str = "data.source.name") -> dict[str, np.ndarray]:
    """Arrays of a bundled dataset: ``x``, ``y`` and optional names."""
    return DATASETS.get(name, path).factory()


def read_bundled(src: Any, input_names: list[str], where: str, groups: Any = None,
                 categorical: Any = None):
    """The ``bundled`` source: one pool of rows (split later) and the names it knows."""
    from kspec.data.split import Split

    if len(input_names) != 1:
        raise SpecError(where, f"bundled data feeds one input; the model has {input_names}")
    arrays = load_bundled(src.name, f"{where}.name")
    meta = {k: v.tolist() for k, v in arrays.items() if k.endswith("_names")}
    return {"all": Split({input_names[0]: arrays["x"]}, arrays["y"])}, f"bundled:{src.name}", meta
