"""``data.groups``: each row's group read from a column, an array or a feature, packed into
the targets after splitting, and reported by the fairness metrics of every split."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import kspec
from kspec import SpecError, load_spec
from kspec.data.loading import load_data
from kspec.errors import DataError

FAIR = [{"type": "subgroup_accuracy", "group": 0, "num_groups": 3},
        {"type": "subgroup_accuracy", "group": 2, "num_groups": 3},
        {"type": "subgroup_accuracy_gap", "num_groups": 3},
        {"type": "statistical_parity", "num_groups": 3, "num_classes": 3}]


def _raw(source, groups, *, shape=(4,), units=3, metrics=None, splits=None, **training):
    loss = "sparse_categorical_crossentropy" if units > 1 else "binary_crossentropy"
    head = {"type": "dense", "units": units, "activation": "softmax" if units > 1 else "sigmoid"}
    data = {"source": source, "splits": splits or {"validation": 0.25, "test": 0.25,
                                                   "stratify": True}}
    if groups is not None:
        data["groups"] = groups
    return {"name": "g", "seed": 1, "data": data,
            "model": {"inputs": [{"name": "x", "shape": list(shape)}], "layers": [head]},
            "training": {"loss": {"type": "label_columns", "loss": loss},
                         "metrics": FAIR if metrics is None else metrics, "batch_size": 16,
                         "epochs": 1, "verbose": 0, **training}}


@pytest.fixture(scope="module")
def people(tmp_path_factory):
    """120 rows: features a (the row number), b, age (the group source, also a feature) and
    a text column ``sex`` that is not a feature; three classes in ``kind``."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": np.arange(120.0), "b": rng.normal(size=120).round(3)})
    frame["age"] = rng.integers(18, 90, size=120)
    frame["sex"] = np.where(np.arange(120) % 4 == 0, "F", "M")
    frame["kind"] = np.arange(120) % 3
    path = tmp_path_factory.mktemp("groups") / "people.csv"
    frame.to_csv(path, index=False)
    return path, frame


def _csv(path, **kw):
    return {"type": "csv", "path": str(path), "label": "kind", **kw}


def test_column_that_is_also_a_feature_is_binned_and_follows_its_rows(people):
    path, frame = people
    spec = load_spec(_raw(_csv(path, features=["a", "b", "age"]),
                          {"column": "age", "bins": [30, 60]}, shape=(3,)))
    data = load_data(spec)
    assert data.meta["group_names"] == ["age < 30", "30 <= age < 60", "age >= 60"]
    for name, split in data.splits().items():
        age = split.x["x"][:, 2]
        assert split.y.shape == (len(split), 2), name          # label, then group
        np.testing.assert_array_equal(split.y[:, 1], np.digitize(age, [30, 60]))
        np.testing.assert_array_equal(split.groups, split.y[:, 1])
        # Labels and groups follow their rows: feature a is the row number in the file.
        rows = frame.iloc[split.x["x"][:, 0].astype(int)]
        np.testing.assert_array_equal(split.y[:, 0], rows["kind"])
        np.testing.assert_array_equal(split.groups, np.digitize(rows["age"], [30, 60]))
    # Stratified on the label, not on the packed group column: 30 of each class in train.
    assert np.bincount(data.train.y[:, 0].astype(int)).tolist() == [20, 20, 20]


def test_column_that_is_not_a_feature_is_mapped_and_left_out_of_the_features(people):
    path, frame = people
    spec = load_spec(_raw(_csv(path), {"column": "sex", "map": {"F": 0, "M": 1}}, shape=(3,),
                          metrics=["subgroup_accuracy_gap"]))
    data = load_data(spec)
    assert data.meta["feature_names"] == ["a", "b", "age"]
    assert data.meta["group_names"] == ["F", "M"]
    whole = np.concatenate([s.y for s in data.splits().values()])
    assert np.bincount(whole[:, 1].astype(int)).tolist() == [30, 90]


def test_feature_by_name_with_bins_on_a_bundled_table():
    spec = load_spec(_raw({"type": "bundled", "name": "breast_cancer"},
                          {"feature": "mean radius", "bins": [15.0]}, shape=(30,), units=1,
                          metrics=["statistical_parity"]))
    data = load_data(spec)
    for split in data.splits().values():
        np.testing.assert_array_equal(split.y[:, 1], split.x["x"][:, 0] >= 15.0)
        assert set(np.unique(split.y[:, 0])) == {0.0, 1.0}


def test_npz_array_and_feature_by_index(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 4)).astype("float32")
    x[:, 3] = np.arange(40) % 2
    path = tmp_path / "arrays.npz"
    np.savez(path, x=x, y=np.arange(40) % 3, grp=(np.arange(40) % 3 == 0).astype("int64"))
    src = {"type": "npz", "path": str(path)}
    parity = [{"type": "statistical_parity", "num_classes": 3}]
    by_array = load_data(load_spec(_raw(src, {"array": "grp"}, metrics=parity)))
    for split in by_array.splits().values():
        np.testing.assert_array_equal(split.y[:, 1], split.y[:, 0] == 0)  # grp = (y == 0)
    by_index = load_data(load_spec(_raw(src, {"feature": 3}, metrics=parity)))
    for split in by_index.splits().values():
        np.testing.assert_array_equal(split.y[:, 1], split.x["x"][:, 3])


def test_python_dataframe_source_reads_the_column(people):
    import pandas as pd

    _, frame = people
    raw = _raw({"type": "dataframe", "label": "kind"}, {"column": "sex", "map": {"F": 0, "M": 1}},
               shape=(3,), metrics=["subgroup_accuracy_gap"])
    data = load_data(load_spec(raw), pd.DataFrame(frame))
    assert data.train.y.shape[1] == 2 and data.train.x["x"].shape[1] == 3


def _by_hand(y, prob, num_groups=3, num_classes=3):
    pred, true, group = prob.argmax(-1), y[:, 0].astype(int), y[:, 1].astype(int)
    acc = [np.mean(pred[group == g] == true[group == g]) for g in range(num_groups)
           if (group == g).any()]
    rates = np.array([np.bincount(pred[group == g], minlength=num_classes) / (group == g).sum()
                      for g in range(num_groups) if (group == g).any()])
    tv = 0.5 * np.abs(rates[:, None] - rates[None]).sum(-1)
    return {"group_0_accuracy": np.mean(pred[group == 0] == true[group == 0]),
            "group_2_accuracy": np.mean(pred[group == 2] == true[group == 2]),
            "accuracy_gap": max(acc) - min(acc), "statistical_parity": tv.max()}


def test_fit_reports_the_metrics_of_every_split_as_numpy_computes_them(people, tmp_path):
    path, _ = people
    raw = _raw(_csv(path, features=["a", "b", "age"]), {"column": "age", "bins": [30, 60]},
               shape=(3,))
    raw["data"]["preprocessing"] = [{"type": "zscore"}]
    run = kspec.fit(raw, out=tmp_path, epochs=2)
    assert sorted(run.metrics) == ["test", "train", "validation"]
    for name, split in run.data.splits().items():
        prob = run.model.predict(split.x["x"], verbose=0)
        expected = _by_hand(split.y, prob)
        got = run.metrics[name]
        for key, value in expected.items():
            assert got[key] == pytest.approx(value, abs=1e-5), (name, key)
    assert "val_statistical_parity" in run.history


# -- errors ---------------------------------------------------------------------------------
def _bad_csv(tmp_path, values, kind=None):
    import pandas as pd

    kind = np.arange(8) % 2 if kind is None else kind
    frame = pd.DataFrame({"a": np.arange(8.0), "b": np.ones(8), "kind": kind, "grp": values})
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("values,groups,message", [
    ([0, 1, 0, 1, 0, 1.5, 0, 1], {"column": "grp"},
     "group ids must be integers 0, 1, ...; the group (column 'grp') of row 5 (line 7 of the "
     "file) is 1.5 (1 rows like it); cut numbers with bins: [...] or name categories with "
     "map: {VALUE: ID}"),
    ([0, 1, 0, -1, 0, 1, 0, 1], {"column": "grp"},
     "group ids must be integers 0, 1, ...; the group (column 'grp') of row 3 (line 5 of the "
     "file) is -1 (1 rows like it); cut numbers with bins: [...] or name categories with "
     "map: {VALUE: ID}"),
    (["x", "y", "x", "z", "x", "y", "x", "y"], {"column": "grp", "map": {"x": 0, "y": 1}},
     "the group (column 'grp') of row 3 (line 5 of the file) is 'z', which groups.map does "
     "not name (1 rows unmapped; map keys: ['x', 'y'])"),
    ([0, 1, None, 1, 0, 1, 0, 1], {"column": "grp"},
     "the group (column 'grp') of row 2 (line 4 of the file) is missing (1 rows without a "
     "group)"),
    (["x", "y", "x", "y", "x", "y", "x", "y"], {"column": "grp", "bins": [1.0]},
     "bins need numbers, but the group (column 'grp') of row 0 (line 2 of the file) is 'x'; "
     "use map for categories"),
    ([0, 1, 0, 1, 0, 2, 0, 1], {"column": "grp"},
     "row 5 (line 7 of the file) is in group 2, but training.metrics[0] counts num_groups=2 "
     "(ids 0..1); set num_groups: 3 on every group metric"),
])
def test_bad_group_values_name_the_source_column_and_row(tmp_path, values, groups, message):
    path = _bad_csv(tmp_path, values)
    spec = load_spec(_raw(_csv(path, features=["a", "b"]), groups, shape=(2,), units=1,
                          metrics=["statistical_parity"], splits={"shuffle": False}))
    with pytest.raises(DataError) as info:
        load_data(spec)
    assert str(info.value) == f"{path}: {message}"


def test_label_checks_read_the_label_not_the_group(tmp_path):
    # Group ids 0..2 are no binary labels; the wrapped loss checks only the label column.
    groups = [0, 1, 2, 0, 1, 2, 0, 1]
    parity = [{"type": "statistical_parity", "num_groups": 3}]
    raw = _raw(_csv(_bad_csv(tmp_path, groups), features=["a", "b"]), {"column": "grp"},
               shape=(2,), units=1, metrics=parity, splits={"shuffle": False})
    assert load_data(load_spec(raw)).train.y[:, 1].tolist() == groups
    path = _bad_csv(tmp_path, groups, kind=[0, 1, 0, 1, 2, 1, 0, 1])
    with pytest.raises(DataError) as info:
        load_data(load_spec(raw))
    assert str(info.value) == (f"{path}: the label of row 4 (line 6 of the file) is 2; the "
                               "loss 'binary_crossentropy' expects labels in [0, 1] (1 rows "
                               "outside)")


def test_unknown_column_feature_and_array_are_spec_errors_with_did_you_mean(people, tmp_path):
    path, _ = people
    with pytest.raises(SpecError) as info:
        load_data(load_spec(_raw(_csv(path), {"column": "sexx"}, shape=(3,))))
    assert str(info.value).startswith(f"data.groups.column: {path} has no column 'sexx'; "
                                      "did you mean 'sex'? (expected one of: a, b, age, sex")
    bundled = {"type": "bundled", "name": "breast_cancer"}
    with pytest.raises(SpecError, match=re.escape(
            "data.groups.feature: bundled:breast_cancer has no feature named 'mean radios'; "
            "did you mean 'mean radius'?")):
        load_data(load_spec(_raw(bundled, {"feature": "mean radios"}, shape=(30,), units=1,
                                 metrics=["statistical_parity"])))
    npz = tmp_path / "a.npz"
    np.savez(npz, x=np.zeros((4, 4)), y=np.zeros(4), group=np.zeros(4))
    with pytest.raises(SpecError, match=re.escape(
            f"data.groups.array: {npz} has no array 'groups'; did you mean 'group'?")):
        load_data(load_spec(_raw({"type": "npz", "path": str(npz)}, {"array": "groups"})))


@pytest.mark.parametrize("change,path,message", [
    (lambda r: r["data"].pop("groups"), "training.metrics[0]",
     "'subgroup_accuracy' reads each example's group, but the spec does not say where"),
    (lambda r: r["data"].update(groups={"column": "a", "array": "b"}), "data.groups.array",
     "groups come from one place"),
    (lambda r: r["data"].update(groups={"array": "g"}), "data.groups.array",
     "the csv source has no arrays to take groups from"),
    (lambda r: r["data"].update(source={"type": "image_folder", "path": "p",
                                        "image_size": [8, 8]}),
     "data.groups.column", "the image_folder source cannot provide groups"),
    (lambda r: r["data"].update(groups={"column": "age", "bins": [60, 30]}), "data.groups.bins",
     "bin edges must increase strictly"),
    (lambda r: r["training"].update(loss="sparse_categorical_crossentropy", metrics=[]),
     "training.loss", "'sparse_categorical_crossentropy' would read it as part of the label"),
    (lambda r: r["training"].update(class_weight="balanced"), "training.class_weight",
     "class weights read the class from the targets"),
    (lambda r: r["training"].update(targets={"output": {"threshold": 0.5}}), "data.groups",
     "groups cannot be combined with training.targets"),
])
def test_spec_errors_name_the_place(people, change, path, message):
    raw = _raw(_csv(people[0]), {"column": "age", "bins": [30, 60]}, shape=(3,))
    change(raw)
    with pytest.raises(SpecError) as info:
        load_spec(raw)
    assert info.value.path == path and message in str(info.value)


def test_groups_with_a_multi_output_model_are_refused():
    raw = _raw({"type": "bundled", "name": "iris"}, {"feature": 0, "bins": [5.5]}, metrics=[])
    raw["model"] = {"inputs": [{"name": "x", "shape": [4]}], "blocks": [
        {"name": "a", "inputs": ["x"], "layers": [{"type": "dense", "units": 1}]},
        {"name": "b", "inputs": ["x"], "layers": [{"type": "dense", "units": 1}]}],
        "outputs": [{"name": "a", "block": "a"}, {"name": "b", "block": "b"}]}
    raw["training"]["loss"] = {"a": "mse", "b": "mse"}
    with pytest.raises(SpecError, match="^data.groups: groups are packed into the targets of a "
                                        "model with one output"):
        load_spec(raw)


def test_groups_without_a_group_metric_warn(people):
    raw = _raw(_csv(people[0]), {"column": "sex", "map": {"F": 0, "M": 1}}, shape=(3,),
               metrics=[])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_spec(raw)
    assert any(str(w.message).startswith("data.groups: the column 'sex' is packed into the "
                                         "targets, but no metric reads it") for w in caught)
