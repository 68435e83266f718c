"""tf.data pipelines for splits: slices, cache, shuffle, batch, prefetch."""

from __future__ import annotations

from kspec.data.sources import Split


def to_dataset(split: Split, batch_size: int, *, shuffle: bool = False, seed: int = 0,
               cache: bool = True):
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y[, sample_weight])``.

    Whole arrays are sliced once; shuffling reshuffles each epoch with a fixed seed.
    """
    import tensorflow as tf

    parts = [split.x] if len(split.x) > 1 else [next(iter(split.x.values()))]
    if split.y is not None:
        parts.append(split.y)
        if split.sample_weight is not None:
            parts.append(split.sample_weight)
    ds = tf.data.Dataset.from_tensor_slices(tuple(parts))
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(min(len(split), 100_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)
