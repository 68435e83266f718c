"""Streamed sources: hashed fraction splits, streaming statistics equal to in-memory ones,
and bad files refused before training with the file, record and feature."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.data.loading import load_data
from kspec.data.moments import Moments
from kspec.data.stream import text_key, unit_hash, unit_hash_tf
from kspec.errors import DataError, SpecError
from tests.data.stream_helpers import example, image_folder, records

IMAGE = [{"name": "image", "shape": [8, 8, 1]}]


def _folder_source(path, **extra):
    return {"type": "image_folder", "path": str(path), "image_size": [8, 8],
            "color_mode": "grayscale", "stream": True, **extra}


def _record_source(path, **extra):
    return {"type": "tfrecord", "path": str(path / "*.tfrecord"), "label": "label",
            "features": {"image": {"encoding": "png", "shape": [8, 8, 1]}}, **extra}


def test_unit_hash_is_the_same_in_numpy_and_tensorflow_and_uniform():
    import tensorflow as tf

    key = text_key("part-0.tfrecord")
    index = np.arange(20_000)
    u = unit_hash(key, index, seed=7)
    np.testing.assert_array_equal(u, unit_hash_tf(key, tf.constant(index), 7).numpy())
    np.testing.assert_array_equal(
        u, unit_hash_tf(tf.constant(np.full(len(index), key, "uint64")), index, 7).numpy())
    assert 0.0 <= u.min() and u.max() < 1.0
    assert abs(np.mean(u < 0.25) - 0.25) < 0.01  # a fraction takes its share
    assert not np.array_equal(u, unit_hash(key, index, seed=8))


def test_moments_merge_blocks_exactly_and_stably():
    rng = np.random.default_rng(0)
    x = rng.normal(1e6, 1e-2, size=(3000, 2, 3))  # a large mean: E[x^2]-E[x]^2 would cancel
    m = Moments((2, 3), covariance=True)
    for block in np.array_split(x, [1, 7, 500, 2999]):
        m.update(block)
    n, mean, var, lo, hi = m.reduce("channel")
    flat = x.reshape(-1, 3)
    assert n == 6000
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, flat.var(0), rtol=1e-6)
    np.testing.assert_array_equal(lo, flat.min(0))
    np.testing.assert_allclose(m.covariance(), np.cov(x.reshape(3000, 6).T, bias=True),
                               rtol=1e-6, atol=1e-12)
    shifted = m.affine(offset=mean, scale=2.0, shift=1.0)
    np.testing.assert_allclose(shifted.reduce("global")[1], [1.0], atol=1e-9)


STEPS = [{"type": "min_max", "per": "global"}, {"type": "channel_mean"},
         {"type": "zscore", "per": "feature"}, {"type": "whiten", "method": "zca",
                                                "epsilon": 0.01},
         {"type": "min_max", "range": [-1, 1]}]


def test_streamed_statistics_equal_those_of_the_same_data_in_memory(make_spec, tmp_path):
    from kspec.data.preprocess import fit_preprocessing, fit_streamed

    folder = image_folder(tmp_path / "imgs", per_class=30)
    spec = make_spec({"source": _folder_source(folder), "splits": {"validation": 0.2},
                      "preprocessing": STEPS}, inputs=IMAGE)
    data = load_data(spec)
    streamed = fit_streamed(spec, data.train)
    rows = np.concatenate([c["x"]["image"] for c in data.train.chunks(7)])  # the same rows
    assert len(rows) == len(data.train) == 72
    in_memory = fit_preprocessing(spec, {"image": rows})
    for i, (a, b) in enumerate(zip(streamed["image"], in_memory["image"])):
        for wa, wb in zip(a.make_layer(f"a{i}").get_weights(),
                          b.make_layer(f"b{i}").get_weights()):
            np.testing.assert_allclose(wa, wb, rtol=2e-4, atol=2e-5, err_msg=STEPS[i]["type"])
    assert fit_streamed(spec, data.train) is streamed  # kept: members and trials reuse it


def test_fraction_splits_are_hashed_deterministic_and_disjoint(make_spec, tmp_path):
    folder = records(tmp_path / "rec", files=3, per_file=40)
    spec = make_spec({"source": _record_source(folder), "splits": {"validation": 0.25,
                                                                    "test": 0.25}},
                     inputs=IMAGE, seed=3)

    def keys(data):
        return {name: sorted(k for c in split.chunks(16) for k in c["key"])
                for name, split in data.splits().items()}

    first, again = keys(load_data(spec)), keys(load_data(spec))
    assert first == again
    everything = [k for ks in first.values() for k in ks]
    assert len(everything) == len(set(everything)) == 120
    assert 20 <= len(first["test"]) <= 40 and 20 <= len(first["validation"]) <= 40
    other = keys(load_data(make_spec({"source": _record_source(folder),
                                      "splits": {"validation": 0.25, "test": 0.25}},
                                     inputs=IMAGE, seed=4)))
    assert other["test"] != first["test"]
    # counted lengths are what the pipelines yield
    data = load_data(spec)
    assert sum(len(b[1]) for b in data.train.dataset(16)) == len(data.train)


def test_image_folder_fractions_are_exact_and_stratified(make_spec, tmp_path):
    folder = image_folder(tmp_path / "imgs", per_class=10)
    spec = make_spec({"source": _folder_source(folder),
                      "splits": {"test": 0.2, "stratify": True}}, inputs=IMAGE)
    data = load_data(spec)
    assert (len(data.train), len(data.test)) == (24, 6)
    assert np.bincount(data.test.labels()).tolist() == [2, 2, 2]


@pytest.mark.parametrize("bad,message", [
    ({"label": None}, r"part-1\.tfrecord: record 4 has no feature 'label' .*features\.label"),
    ({"label": np.float32(1.0)}, r"part-1\.tfrecord: record 4: feature 'label' holds float32 "
                                 r"values \(float_list\), but data\.source\.features\.label "
                                 "says int64"),
    ({"stats": np.zeros(3, "float32")}, r"part-1\.tfrecord: record 4: feature 'stats' has 3 "
                                        r"values, but .*features\.stats says shape \[2\]"),
    ({"label": np.int64(7)}, r"label of record 4 of .*part-1\.tfrecord is 7, outside the 3 "
                             "classes"),
])
def test_a_record_that_does_not_match_the_spec_is_named_before_training(
        make_spec, tmp_path, bad, message):
    folder = records(tmp_path / "rec", bad={(1, 4): bad})
    source = _record_source(folder, features={
        "image": {"encoding": "png", "shape": [8, 8, 1]}, "label": {"dtype": "int64"},
        "stats": {"shape": [2]}}, inputs={"image": "image", "meta": "stats"})
    spec = make_spec({"source": source}, inputs=[*IMAGE, {"name": "meta", "shape": [2]}])
    with pytest.raises(DataError, match=message):
        load_data(spec)


def test_unreadable_records_images_and_globs_are_named(make_spec, tmp_path):
    folder = records(tmp_path / "rec", files=2)
    (folder / "part-9.tfrecord").write_bytes(b"this is not a record file at all")
    with pytest.raises(DataError, match=r"part-9\.tfrecord: corrupt or truncated TFRecord"):
        load_data(make_spec({"source": _record_source(folder)}, inputs=IMAGE))
    (folder / "part-9.tfrecord").unlink()
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(folder / "part-5.tfrecord")) as w:
        w.write(example(image=b"not a png", label=np.int64(0)))
    with pytest.raises(DataError, match=r"part-5\.tfrecord: record 0: feature 'image' is not "
                                        "a decodable image"):
        load_data(make_spec({"source": _record_source(folder)}, inputs=IMAGE))
    with pytest.raises(SpecError) as e:
        load_data(make_spec({"source": _record_source(tmp_path / "nothing")}, inputs=IMAGE))
    assert e.value.path == "data.source.path" and "no files match" in str(e.value)

    images = image_folder(tmp_path / "imgs", per_class=3)
    (images / "c1" / "broken.png").write_text("text, not pixels")
    with pytest.raises(DataError, match=r"cannot decode image .*c1/broken\.png \(not a PNG"):
        load_data(make_spec({"source": _folder_source(images)}, inputs=IMAGE))


def test_streamed_sources_refuse_what_needs_memory(make_spec, tmp_path):
    folder = records(tmp_path / "rec")
    with pytest.raises(SpecError) as e:
        load_data(make_spec({"source": _record_source(folder),
                             "splits": {"test": 0.2, "stratify": True}}, inputs=IMAGE))
    assert e.value.path == "data.splits.stratify"
    data = load_data(make_spec({"source": _record_source(folder)}, inputs=IMAGE))
    with pytest.raises(DataError, match="streamed from disk"):
        data.train.x
    with pytest.raises(SpecError) as e:
        make_spec({"source": {"type": "image_folder", "path": "x", "image_size": [8, 8],
                              "cache": "c"}})
    assert e.value.path == "data.source.cache"


def test_tfrecord_groups_are_read_per_record_and_packed(make_spec, tmp_path):
    folder = records(tmp_path / "rec", files=2, per_file=10,
                     bad={(1, 3): {"group": np.int64(5)}})
    metrics = [{"type": "subgroup_accuracy", "group": 0}, {"type": "subgroup_accuracy",
                                                            "group": 1}]
    source = _record_source(folder)
    spec = make_spec({"source": source, "groups": {"column": "group", "bins": [1]}},
                     inputs=IMAGE, layers=[{"type": "flatten"}, {"type": "dense", "units": 1}],
                     training={"loss": {"type": "label_columns", "loss": "mse"},
                               "metrics": metrics})
    data = load_data(spec)
    packed = data.train.head(20).y
    assert packed.shape == (20, 2) and set(packed[:, 1].tolist()) == {0.0, 1.0}
    spec = make_spec({"source": source, "groups": {"column": "group"}}, inputs=IMAGE,
                     layers=[{"type": "flatten"}, {"type": "dense", "units": 1}],
                     training={"loss": {"type": "label_columns", "loss": "mse"},
                               "metrics": metrics})
    with pytest.raises(DataError, match=r"record 3 of .*part-1\.tfrecord is in group 5, but "
                                        r"training\.metrics\[0\] counts num_groups=2"):
        load_data(spec)


def test_a_cache_left_locked_by_an_interrupted_run_is_rebuilt(make_spec, tmp_path):
    import os
    from pathlib import Path

    folder = image_folder(tmp_path / "imgs", per_class=4)
    spec = make_spec({"source": _folder_source(folder, cache=str(tmp_path / "cache"))},
                     inputs=IMAGE)
    train = load_data(spec).train
    prefix = train._cache_file()
    lock, partial = Path(f"{prefix}_0.lockfile"), Path(f"{prefix}_0.data-00000-of-00001.temp")
    lock.write_text("Created at: 1")
    partial.write_bytes(b"half an epoch")
    os.utime(lock, (1, 1))
    first = np.concatenate([b[1] for b in train.dataset(5, shuffle=True, seed=1)])
    again = np.concatenate([b[1] for b in train.dataset(5, shuffle=True, seed=1)])
    assert not lock.exists() and not partial.exists()
    assert sorted(first.tolist()) == sorted(again.tolist()) == [0] * 4 + [1] * 4 + [2] * 4


def test_unshuffled_fractions_cut_by_position_test_first(make_spec, tmp_path):
    """`shuffle: false`: the first records are the test split, then validation, then train,
    as for data in memory; the counts are exact."""
    folder = records(tmp_path / "rec", files=2, per_file=20)
    spec = make_spec({"source": _record_source(folder),
                      "splits": {"validation": 0.25, "test": 0.2, "shuffle": False}},
                     inputs=IMAGE)
    data = load_data(spec)
    keys = {name: [k for c in split.chunks(8) for k in c["key"]]
            for name, split in data.splits().items()}
    assert [len(keys[n]) for n in ("test", "validation", "train")] == [8, 10, 22]
    assert [len(data.splits()[n]) for n in ("test", "validation", "train")] == [8, 10, 22]
    assert len(set(keys["test"] + keys["validation"] + keys["train"])) == 40
