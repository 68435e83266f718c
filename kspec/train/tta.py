"""Test-time augmentation: predict on fixed views of each image and average.

Schemes:

- ``flip``: the image and its horizontal mirror (2 views);
- ``five_crop``: the four corners and the centre (5 views);
- ``ten_crop``: the five crops and their horizontal mirrors (10 views, as in AlexNet).

When the data's images are larger than the model's input, crops are taken at the model's
input size; otherwise each crop covers ``crop_fraction`` of the height and width and is
resized back to the input size. Inputs that are not images (rank other than 4) are passed
unchanged to every view.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

SCHEMES = ("flip", "five_crop", "ten_crop")


def _crop_boxes(h: int, w: int, ch: int, cw: int) -> list[tuple[int, int]]:
    """Top-left corners of the four corner crops and the centre crop."""
    return [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), ((h - ch) // 2, (w - cw) // 2)]


def views(images: np.ndarray, scheme: str = "ten_crop", crop_fraction: float = 0.875,
          size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """The fixed views of a batch of images ``(N, H, W, C)``.

    Args:
        images: the batch.
        scheme: ``flip``, ``five_crop`` or ``ten_crop``.
        crop_fraction: side of a crop as a fraction of the image (when ``size`` is None or
            equal to the image size).
        size: the model's input ``(height, width)``; crops of that size when the images are
            larger.

    Example:
        >>> len(views(np.zeros((2, 8, 8, 1)), "ten_crop"))
        10
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown TTA scheme {scheme!r}; expected one of {SCHEMES}")
    images = np.asarray(images)
    n, h, w = images.shape[:3]
    if scheme == "flip":
        return [images, images[:, :, ::-1]]
    out_h, out_w = size if size is not None else (h, w)
    if (out_h, out_w) != (h, w):
        if out_h > h or out_w > w:
            raise ValueError(f"images of {h}x{w} are smaller than the model input "
                             f"{out_h}x{out_w}")
        ch, cw, resize = out_h, out_w, False
    else:
        ch, cw = max(1, round(h * crop_fraction)), max(1, round(w * crop_fraction))
        resize = (ch, cw) != (h, w)
    crops = []
    for top, left in _crop_boxes(h, w, ch, cw):
        crop = images[:, top:top + ch, left:left + cw]
        if resize:
            import tensorflow as tf

            crop = tf.image.resize(crop.astype("float32"), (h, w), method="bilinear").numpy()
            crop = crop.astype(images.dtype) if images.dtype.kind == "f" else crop
        crops.append(crop)
    if scheme == "ten_crop":
        crops += [c[:, :, ::-1] for c in crops]
    return crops


def _input_views(model: Any, x: Mapping[str, np.ndarray], scheme: str,
                 crop_fraction: float) -> list[dict[str, np.ndarray]]:
    names = [t.name for t in model.inputs]
    shapes = {t.name: tuple(t.shape[1:]) for t in model.inputs}
    per_input = {}
    count = None
    for name in names:
        arr = np.asarray(x[name])
        if arr.ndim == 4:
            size = shapes[name][:2] if None not in shapes[name][:2] else None
            per_input[name] = views(arr, scheme, crop_fraction, size)
            count = len(per_input[name])
    if count is None:
        raise ValueError(f"test-time augmentation needs an image input (N, H, W, C); the model "
                         f"inputs are {shapes}")
    return [{n: per_input[n][v] if n in per_input else np.asarray(x[n]) for n in names}
            for v in range(count)]


def _as_inputs(model: Any, x: Any) -> dict[str, np.ndarray]:
    if isinstance(x, Mapping):
        return dict(x)
    if len(model.inputs) != 1:
        raise ValueError("this model has several inputs; pass x as a dict keyed by input name")
    return {model.inputs[0].name: x}


def predict_tta(model: Any, x: Any, scheme: str = "ten_crop", crop_fraction: float = 0.875,
                batch_size: int = 256) -> Any:
    """Predictions averaged over the fixed views of each input image.

    Args:
        model: a Keras model taking images ``(N, H, W, C)`` (and possibly other inputs).
        x: the images, or a dict of inputs by name.
        scheme: ``flip``, ``five_crop`` or ``ten_crop``.
        crop_fraction: crop side as a fraction of the image side (see :func:`views`).
        batch_size: prediction batch size.

    Returns:
        The mean prediction (one array, or a list for several outputs).

    Example:
        >>> probs = kspec.predict_tta(run.model, x_test, scheme="flip")  # doctest: +SKIP
    """
    inputs = _as_inputs(model, x)
    total = None
    all_views = _input_views(model, inputs, scheme, crop_fraction)
    for view in all_views:
        args = view if len(view) > 1 else next(iter(view.values()))
        pred = model.predict(args, batch_size=batch_size, verbose=0)
        pred = [np.asarray(p) for p in pred] if isinstance(pred, (list, tuple)) else \
            [np.asarray(pred)]
        total = pred if total is None else [a + b for a, b in zip(total, pred)]
    mean = [t / len(all_views) for t in total]
    return mean[0] if len(mean) == 1 else mean


def evaluate_tta(model: Any, split: Any, spec: Any, scheme: str = "ten_crop",
                 crop_fraction: float = 0.875) -> dict[str, float]:
    """The spec's loss and metrics on TTA-averaged predictions of ``split``.

    The averaged predictions are scored by an identity model compiled like the spec's
    model, so metric names and values mean exactly what they mean in ``model.evaluate``.
    """
    import keras

    from kspec.train.compile import compile_model

    if getattr(split, "streamed", False):  # kspec.data.stream: read block by block
        pred, y = _stream_tta(model, split, scheme, crop_fraction, spec.training.batch_size)
    else:
        pred = predict_tta(model, split.x, scheme, crop_fraction, spec.training.batch_size)
        y = split.y
    preds = pred if isinstance(pred, list) else [pred]
    names = list(model.output_names)
    ins = [keras.Input(shape=p.shape[1:], name=f"{n}_prediction") for n, p in zip(names, preds)]
    outs = [keras.layers.Identity(name=n)(i) for n, i in zip(names, ins)]
    scorer = keras.Model(ins, outs[0] if len(outs) == 1 else outs, name="tta_scorer")
    compile_model(scorer, spec)
    x = preds[0] if len(preds) == 1 else {f"{n}_prediction": p for n, p in zip(names, preds)}
    values = scorer.evaluate(x, y, batch_size=spec.training.batch_size, verbose=0,
                             return_dict=True)
    return {k: float(v) for k, v in values.items()}


def _stream_tta(model: Any, split: Any, scheme: str, crop_fraction: float,
                batch_size: int, rows: int = 4096) -> tuple[Any, Any]:
    """TTA predictions and labels of a streamed split, read ``rows`` at a time (only the
    predictions and labels are kept in memory, never the inputs)."""
    preds: list[list[np.ndarray]] = []
    labels: list[Any] = []
    for element in split.chunks(rows, keys=False, transformed=True):
        pred = predict_tta(model, element["x"], scheme, crop_fraction, batch_size)
        preds.append(pred if isinstance(pred, list) else [pred])
        labels.append(element["y"])
    mean = [np.concatenate(parts) for parts in zip(*preds)]
    y = ({k: np.concatenate([b[k] for b in labels]) for k in labels[0]}
         if isinstance(labels[0], dict) else np.concatenate(labels))
    return (mean[0] if len(mean) == 1 else mean), y
