"""The batcher: concurrent requests share a call, results go back to the right request."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kspec.serve.batching import Batcher
from kspec.serve.errors import ServingError


class Recorder:
    """A fake signature: y = 2x + 1 per row, remembering the batch sizes it saw; rows with
    a negative value fail (like an embedding index out of range)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, inputs):
        x = inputs["x"]
        with self.lock:
            self.sizes.append(len(x))
        if self.delay:
            threading.Event().wait(self.delay)
        if (x < 0).any():
            raise ServingError("INVALID_ARGUMENT", "negative value in x")
        return {"y": 2 * x + 1, "n": np.full(len(x), len(x))}


def run(coro_fn, **kwargs):
    async def main():
        with ThreadPoolExecutor(2) as pool:
            options = dict(max_batch_size=8, timeout_s=0.05, max_queued=100, threads=1)
            options.update(kwargs.pop("options", {}))
            batcher = Batcher(kwargs.pop("fn"), pool, label="m version 1", **options)
            try:
                return await coro_fn(batcher)
            finally:
                await batcher.close()

    return asyncio.run(main())


def rows(*values):
    return {"x": np.array(values, np.float32).reshape(-1, 1)}


def test_concurrent_requests_share_one_call_and_get_their_own_rows():
    fn = Recorder()

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(rows(i, 10 * i)) for i in range(4)))

    results = run(go, fn=fn)
    assert fn.sizes == [8]  # 4 requests x 2 rows: one full batch, one call
    for i, out in enumerate(results):
        np.testing.assert_array_equal(out["y"][:, 0], [2 * i + 1, 20 * i + 1])
        assert out["n"].tolist() == [8, 8]


def test_a_full_batch_goes_at_once_and_the_rest_waits_for_the_next():
    fn = Recorder()

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(rows(i)) for i in range(11)))

    results = run(go, fn=fn, options={"max_batch_size": 4})
    assert fn.sizes == [4, 4, 3]
    assert [float(r["y"][0, 0]) for r in results] == [2 * i + 1 for i in range(11)]


def test_no_batching_calls_once_per_request_without_waiting():
    fn = Recorder()

    async def go(batcher):
        return await asyncio.gather(*(batcher.submit(rows(i, i)) for i in range(3)))

    run(go, fn=fn, options={"max_batch_size": 1, "timeout_s": 0.0})
    assert fn.sizes == [2, 2, 2]  # a request larger than the batch runs whole, alone


def test_requests_of_other_shapes_or_dtypes_go_in_other_batches():
    fn = Recorder()

    async def go(batcher):
        return await asyncio.gather(
            batcher.submit(rows(1)), batcher.submit({"x": np.zeros((1, 2), np.float32)}),
            batcher.submit(rows(2)), batcher.submit({"x": np.zeros((1, 1), np.float64)}))

    results = run(go, fn=fn)
    assert sorted(fn.sizes) == [1, 1, 2]
    assert results[1]["y"].shape == (1, 2) and results[3]["y"].dtype == np.float64


def test_a_failing_request_fails_alone():
    fn = Recorder()

    async def go(batcher):
        return await asyncio.gather(batcher.submit(rows(1)), batcher.submit(rows(-1)),
                                    batcher.submit(rows(3)), return_exceptions=True)

    ok1, bad, ok3 = run(go, fn=fn)
    assert isinstance(bad, ServingError) and "negative" in bad.message
    assert ok1["y"][0, 0] == 3 and ok3["y"][0, 0] == 7
    assert fn.sizes == [3, 1, 1, 1]  # the batch failed, then each request on its own


def test_a_full_queue_refuses_with_resource_exhausted():
    fn = Recorder(delay=0.2)

    async def go(batcher):
        first = asyncio.ensure_future(batcher.submit(rows(0)))
        await asyncio.sleep(0.05)  # the first call is running: the next ones queue
        queued = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ServingError) as e:
            await batcher.submit(rows(9))
        await asyncio.gather(first, *queued)
        return e.value

    refused = run(go, fn=fn, options={"max_queued": 2, "max_batch_size": 1,
                                      "timeout_s": 0.0})
    assert refused.status == 429 and "queue of m version 1 is full" in refused.message
