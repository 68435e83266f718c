"""Write ``smiles.npz``: synthetic "faces" for the fairness lesson (not real data).

2,000 rows of 8 measurements and a label, smiling (1) or not (0), drawn deterministically
(seed 13) so that the (label x gender) cells hold the shares of the course's smile-by-gender
table:

=============  ==============  ============
               female (0)      male (1)
=============  ==============  ============
smiling (1)    0.47            0.02
not smiling    0.45            0.06
=============  ==============  ============

Men are 8% of the rows and rarely smile in the data. Features: ``mouth_curve`` and
``eye_crinkle`` carry the smile (more weakly for men, whose smiles are drawn subtler),
``jaw_width`` and ``brow_ridge`` carry gender, ``gender`` is the group itself (0 female, 1
male; a model can use it as a shortcut), and three measurements are noise. A classifier
trained on this data is accurate overall and on each gender, yet misses most smiling men:
the lesson of cutting the subgroup table by (label x group) cells.

Run ``python -m kspec.datasets.make_smiles`` to write the file again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROWS = 2000
SEED = 13
# (smile, gender) -> share of the rows
CELLS = {(1, 0): 0.47, (1, 1): 0.02, (0, 0): 0.45, (0, 1): 0.06}
FEATURES = ["mouth_curve", "eye_crinkle", "jaw_width", "brow_ridge", "gender", "face_length",
            "skin_tone", "head_tilt"]


def make_smiles(rows: int = ROWS, seed: int = SEED) -> dict[str, np.ndarray]:
    """The arrays of ``smiles.npz``: ``x`` (rows, 8), ``y``, names of features and classes."""
    rng = np.random.default_rng(seed)
    counts = {cell: int(round(share * rows)) for cell, share in CELLS.items()}
    smile = np.concatenate([np.full(n, s) for (s, _), n in counts.items()])
    gender = np.concatenate([np.full(n, g) for (_, g), n in counts.items()])
    n = len(smile)
    strength = np.where(gender == 1, 0.6, 1.6)  # men's smiles are subtler in this data
    x = np.stack([
        smile * strength + rng.normal(0, 0.7, n),             # mouth_curve
        smile * strength * 0.6 + rng.normal(0, 0.8, n),       # eye_crinkle
        gender * 1.5 + rng.normal(0, 0.6, n),                 # jaw_width
        gender * 1.0 + rng.normal(0, 0.7, n),                 # brow_ridge
        gender.astype("float64"),                             # gender (the group)
        rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 1, n),
    ], axis=1).astype("float32")
    order = rng.permutation(n)
    return {"x": x[order], "y": smile[order].astype("int64"),
            "feature_names": np.array(FEATURES), "class_names":
            np.array(["not smiling", "smiling"])}


if __name__ == "__main__":
    target = Path(__file__).with_name("smiles.npz")
    np.savez_compressed(target, **make_smiles())
    print(f"wrote {target}")
