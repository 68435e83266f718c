"""tf.data pipelines for in-memory splits: whole batches gathered at once, prefetched.

Slicing arrays into single examples and batching them again (``from_tensor_slices`` ->
``batch``) runs the tf.data machinery once per example. kspec shuffles *indices* instead,
batches them, and gathers each batch with one vectorized ``tf.gather`` in a parallel map,
the way Keras's own NumPy adapter does; measured in ``benchmarks/bench_pipeline.py``.

The functions given to tf.data here are plain TensorFlow ops with no Python control flow on
tensors, so they are traced as written (``do_not_convert``): AutoGraph's source
transformation of them cost about 0.1 s of every ``kspec fit`` process
(``benchmarks/bench_process.py``).
"""

from __future__ import annotations

from kspec.data.split import Split


def _parts(split: Split):
    x = split.x if len(split.x) > 1 else next(iter(split.x.values()))
    if split.y is None:
        return (x,)
    if split.sample_weight is not None:
        return (x, split.y, split.sample_weight)
    return (x, split.y)


def _batches_of(order, n: int, batch_size: int, drop_remainder: bool):
    """Index vectors of one epoch: a reshape, not a per-element ``batch``."""
    import tensorflow as tf

    full = n // batch_size
    ds = tf.data.Dataset.from_tensor_slices(
        tf.reshape(order[: full * batch_size], (full, batch_size)))
    if n % batch_size and not drop_remainder:
        ds = ds.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:]))
    return ds


def epoch_variable():
    """The pass counter of a shuffled pipeline (see :func:`to_dataset`).

    Each iterator over the pipeline takes the counter's value as its pass number when it
    starts, and adds one. Set it to the first epoch before training starts
    (``kspec.train.loop`` does, in ``on_train_begin``); with Keras making one iterator per
    epoch (``steps_per_epoch`` given) pass numbers are then epoch numbers. It lives on the
    CPU, where tf.data runs.
    """
    import tensorflow as tf

    with tf.init_scope(), tf.device("/CPU:0"):
        return tf.Variable(0, dtype=tf.int64, trainable=False, name="kspec_data_epoch")


def _as_written(fn):
    """``fn`` traced without AutoGraph's rewriting (see the module docstring)."""
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(fn)


def pass_orders(n: int, seed: int, epoch=None):
    """A dataset with one element per pass over the data: a seeded permutation of the row
    indices ``0..n-1`` (one stateless op instead of n elements through a shuffle buffer).

    With ``epoch`` (:func:`epoch_variable`) the permutation is a pure function of
    ``(seed, pass number)``: an iterator takes its pass number from the counter when it
    starts, so a run resumed at epoch k sets the counter to k and sees the orders an
    uninterrupted run saw. Without it each iteration draws a fresh seed, reproducible from
    ``seed``. Used by the in-memory pipeline and by streamed image folders.
    """
    import tensorflow as tf

    if epoch is not None:
        one = tf.constant(1, tf.int64)
        seeds = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(
            _as_written(lambda _: epoch.assign_add(one) - one))
    else:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return seeds.map(_as_written(lambda s: tf.random.experimental.stateless_shuffle(
        tf.range(n, dtype=tf.int64), seed=tf.stack([s, tf.constant(seed, tf.int64)]))))


def _index_batches(n: int, batch_size: int, shuffle: bool, seed: int, drop_remainder: bool,
                   epoch=None):
    import tensorflow as tf

    if not shuffle:
        return _batches_of(tf.range(n, dtype=tf.int64), n, batch_size, drop_remainder)
    batches = n // batch_size + (0 if drop_remainder or n % batch_size == 0 else 1)
    # flat_map hides the length; Keras needs it for steps per epoch and progress bars.
    return pass_orders(n, seed, epoch).flat_map(
        _as_written(lambda order: _batches_of(order, n, batch_size, drop_remainder))
    ).apply(tf.data.experimental.assert_cardinality(batches))


def to_dataset(split: Split, batch_size: int, *, shuffle: bool = False, seed: int = 0,
               cache: bool = True, drop_remainder: bool = False, epoch=None,
               augment=None):
    """A batched, prefetched ``tf.data.Dataset`` of ``(x, y[, sample_weight])``.

    Args:
        split: the arrays, or a streamed split (its own pipeline: files read, decoded and
            shuffled as it goes; see :mod:`kspec.data.stream`).
        batch_size: rows per batch.
        shuffle: reshuffle the rows every epoch (seeded: the same order for the same seed).
        seed: the shuffle seed.
        cache: keep the gathered batches of an unshuffled pipeline in memory, so
            evaluating every epoch does not gather again. Shuffled pipelines gather afresh.
        drop_remainder: drop the last, smaller batch.
        epoch: with ``shuffle``, an int64 counter (:func:`epoch_variable`) that numbers the
            passes over the data: each pass's order then depends only on ``seed`` and its
            number (what resuming a run needs). Without it each iteration draws a new order.
        augment: a function of one batch's ``(x, y[, sample_weight])`` applied after
            gathering (the training split's augmentation under XLA, ``kspec.train.xla``);
            run in order, one batch after another, so its seeded draws repeat.

    Example:
        >>> import numpy as np
        >>> ds = to_dataset(Split({"x": np.zeros((10, 2))}, np.arange(10)), 4)
        >>> [int(b[0].shape[0]) for b in ds]
        [4, 4, 2]
    """
    import tensorflow as tf

    if getattr(split, "streamed", False):  # read from disk: kspec.data.stream
        # Never cached in memory (what streaming avoids; `cache: PATH` caches to disk).
        ds = split.dataset(batch_size, shuffle=shuffle, seed=seed,
                           drop_remainder=drop_remainder)
        # Augmentation under XLA runs on the host for streamed batches too.
        return ds if augment is None else ds.map(augment).prefetch(tf.data.AUTOTUNE)
    n = len(split)
    parts = _parts(split)
    index = _index_batches(n, batch_size, shuffle, seed, drop_remainder, epoch)
    # One copy of the arrays, repeated alongside the index batches; from_tensors keeps
    # them out of the map function's graph (arrays over 2 GB cannot be graph constants).
    arrays = tf.data.Dataset.from_tensors(parts).repeat()
    ds = tf.data.Dataset.zip((index, arrays))

    @_as_written
    def gather(i, data):
        return tf.nest.map_structure(lambda a: tf.gather(a, i, axis=0), data)

    ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache and not shuffle:
        ds = ds.cache()
    if augment is not None:
        ds = ds.map(augment)  # sequential: stateful random layers draw in batch order
    options = tf.data.Options()
    options.experimental_optimization.map_parallelization = True
    ds = ds.with_options(options)
    return ds.prefetch(tf.data.AUTOTUNE)
