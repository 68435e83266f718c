"""Image folders and TFDS (mock data and a dataset prepared into a local data_dir)."""

from __future__ import annotations

import numpy as np
import pytest

from kspec.data.loading import load_data
from kspec.errors import DataError, SpecError


@pytest.fixture
def image_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(["circle", "square"]):
        (tmp_path / name).mkdir()
        for i in range(6 + label):
            pixels = np.full((10, 12, 3), 40 + 160 * label, "uint8")
            pixels[0, 0] = rng.integers(0, 255, 3)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    (tmp_path / "square" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_folder_reads_classes_resizes_and_splits(make_spec, image_folder):
    spec = make_spec({"source": {"type": "image_folder", "path": str(image_folder),
                                 "image_size": [8, 8], "color_mode": "grayscale"},
                      "splits": {"test": 0.3, "stratify": True}}, units=2)
    data = load_data(spec)
    assert data.meta["class_names"] == ["circle", "square"]
    assert data.input_shapes() == {"features": (8, 8, 1)}
    assert data.train.x["features"].dtype == np.uint8
    assert len(data.train) + len(data.test) == 13
    assert sorted(np.bincount(data.test.y)) == [2, 2]
    # the label matches the pixels: squares are bright
    brightness = data.train.x["features"][:, 4, 4, 0]
    assert ((brightness > 150) == (data.train.y == 1)).all()


def test_image_folder_errors(make_spec, image_folder):
    (image_folder / "square" / "broken.png").write_bytes(b"not a png at all")
    spec = make_spec({"source": {"type": "image_folder", "path": str(image_folder),
                                 "image_size": [8, 8]}}, units=2)
    with pytest.raises(DataError, match=r"cannot decode image .*square/broken\.png"):
        load_data(spec)
    spec = make_spec({"source": {"type": "image_folder", "path": str(image_folder),
                                 "image_size": [8, 8], "classes": ["circle", "sqare"]}})
    with pytest.raises(SpecError) as e:
        load_data(spec)
    assert e.value.path == "data.source.classes[1]"


def test_tfds_with_mock_data(make_spec):
    import tensorflow_datasets as tfds

    spec = make_spec({"source": {"type": "tfds", "name": "mnist",
                                 "split": {"train": "train", "test": "test"}},
                      "splits": {"validation": 0.25},
                      "preprocessing": [{"type": "min_max", "per": "global"}]},
                     inputs=[{"name": "digit", "shape": [28, 28, 1]}], units=10)
    with tfds.testing.mock_data(num_examples=40):
        data = load_data(spec)
    assert (len(data.train), len(data.validation), len(data.test)) == (30, 10, 40)
    assert data.input_shapes() == {"digit": (28, 28, 1)} and data.source == "tfds:mnist"
    assert data.train.y.max() < 10
    assert data.meta["class_names"] == [str(i) for i in range(10)]


def _build_tiny_tfds(data_dir):
    """A two-feature dataset prepared into ``data_dir`` by a builder defined here."""
    import tensorflow_datasets as tfds

    from kspec.data.tfds import tfds_compat

    tfds_compat()  # tensorflow/datasets#11212: preparing needs importlib_resources

    class KspecTinyShapes(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
                "pixels": tfds.features.Tensor(shape=(4, 4, 1), dtype=np.float32),
                "size": tfds.features.Tensor(shape=(2,), dtype=np.float32),
                "label": tfds.features.ClassLabel(num_classes=3),
            }))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(60, 0), "test": self._generate_examples(20, 1)}

        def _generate_examples(self, n, seed):
            rng = np.random.default_rng(seed)
            for i in range(n):
                yield i, {"pixels": rng.random((4, 4, 1)).astype("float32") + i % 3,
                          "size": np.array([i, -i], "float32"), "label": i % 3}

    builder = KspecTinyShapes(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder.name


def test_tfds_from_a_local_data_dir_maps_features_to_inputs(make_spec, tmp_path):
    name = _build_tiny_tfds(tmp_path)
    inputs = [{"name": "image", "shape": [4, 4, 1]}, {"name": "meta", "shape": [2]}]
    source = {"type": "tfds", "name": name, "data_dir": str(tmp_path),
              "split": {"train": "train[:75%]", "validation": "train[75%:]", "test": "test"},
              "inputs": {"image": "pixels", "meta": "size"}}
    spec = make_spec({"source": source, "preprocessing": [{"type": "zscore",
                                                           "inputs": ["meta"]}]},
                     inputs=inputs, units=3)
    data = load_data(spec)
    assert (len(data.train), len(data.validation), len(data.test)) == (45, 15, 20)
    assert data.input_shapes() == {"image": (4, 4, 1), "meta": (2,)}
    seen = np.concatenate([data.train.x["meta"][:, 0], data.validation.x["meta"][:, 0]])
    assert sorted(seen.tolist()) == list(range(60))  # train[:75%] + train[75%:], disjoint
    np.testing.assert_array_equal(data.train.y, data.train.x["meta"][:, 0].astype(int) % 3)

    import kspec

    run = kspec.fit(spec, out=tmp_path / "runs", epochs=1)
    assert set(run.metrics) == {"train", "validation", "test"}
    assert [la.name for la in run.model.layers if "zscore" in la.name] == ["meta_zscore_0"]

    bad = dict(source, inputs={"image": "pixles", "meta": "size"})
    with pytest.raises(SpecError) as e:
        load_data(make_spec({"source": bad}, inputs=inputs, units=3))
    assert e.value.path == "data.source.inputs.image" and "did you mean 'pixels'" in str(e.value)


def test_tfds_not_prepared_never_downloads(make_spec, tmp_path):
    spec = make_spec({"source": {"type": "tfds", "name": "mnist", "data_dir": str(tmp_path)}},
                     units=10)
    with pytest.raises(SpecError) as e:
        load_data(spec)
    assert e.value.path == "data.source.data_dir" and "not prepared" in str(e.value)
    spec = make_spec({"source": {"type": "tfds", "name": "mnsit", "data_dir": str(tmp_path)}})
    with pytest.raises(SpecError) as e:
        load_data(spec)
    assert e.value.path == "data.source.name"


def test_bundled_image_folder_matches_the_bundled_digits(make_spec):
    from kspec.data.datasets import load_bundled

    spec = make_spec({"source": {"type": "image_folder", "path": "bundled:digit_images",
                                 "image_size": [8, 8], "color_mode": "grayscale"},
                      "splits": {"shuffle": False}}, units=10)
    data = load_data(spec)
    assert len(data.train) == 400 and np.bincount(data.train.y).tolist() == [40] * 10
    digits = load_bundled("digits")
    first_zero = digits["x"][np.flatnonzero(digits["y"] == 0)[0]]
    np.testing.assert_array_equal(data.train.x["features"][0],
                                  np.round(first_zero.astype(float) * 255 / 16).astype("uint8"))
