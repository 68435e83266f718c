"""Server-side batching: concurrent requests share one signature call.

Like TF Serving's basic batch scheduler: the first request of a batch waits at most
``batch_timeout_ms`` for others; a batch goes as soon as it holds ``max_batch_size`` rows;
at most ``num_threads`` signature calls run at once, and while they all run, new requests
gather into the next batch. The batch's inputs are concatenated along the first axis, the
signature is called once in a worker thread (the event loop stays free for HTTP), and the
outputs are split back by rows. Requests whose inputs differ in their inner dimensions or
dtypes go into different batches; a request larger than a batch runs on its own. When a
batched call fails, each request of the batch is retried on its own, so one bad request
fails alone.
"""

from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from kspec.serve.errors import ServingError

Arrays = dict[str, np.ndarray]


@dataclass
class _Task:
    inputs: Arrays
    rows: int
    key: tuple
    future: asyncio.Future
    queued_at: float = field(default_factory=time.monotonic)


class Batcher:
    """Batches the calls of one signature of one model version.

    Args:
        run: ``run(inputs) -> outputs``, blocking; called in ``executor``.
        executor: the worker threads.
        max_batch_size: rows per call (1: no batching, every request on its own).
        timeout_s: the longest the first request of a batch waits for more.
        max_queued: requests waiting at most; more get RESOURCE_EXHAUSTED (HTTP 429).
        threads: calls in flight at once.
        label: ``NAME version V`` for messages.

    Example:
        >>> outputs = await batcher.submit({"x": np.zeros((1, 4), "float32")})
    """

    def __init__(self, run: Callable[[Arrays], Arrays], executor: Executor, *,
                 max_batch_size: int, timeout_s: float, max_queued: int, threads: int,
                 label: str = "") -> None:
        self._run = run
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.timeout_s = timeout_s
        self.max_queued = max_queued
        self.label = label
        self._queue: collections.deque[_Task] = collections.deque()
        self._slots = asyncio.Semaphore(threads)
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task] = set()
        self._loop_task = asyncio.get_running_loop().create_task(self._dispatch())
        self.calls = 0  # signature calls made (for tests and the benchmark)

    async def submit(self, inputs: Arrays) -> Arrays:
        """Queue one request and wait for its outputs."""
        if len(self._queue) >= self.max_queued:
            raise ServingError("RESOURCE_EXHAUSTED",
                               f"The batch scheduling queue of {self.label} is full "
                               f"({self.max_queued} requests waiting); retry later, or raise "
                               "--max-queued-requests")
        firsts = {a.shape[0] if a.ndim else None for a in inputs.values()}
        rows = firsts.pop() if len(firsts) == 1 else None
        if not rows:  # inputs that disagree on rows (or have none) cannot share a batch
            key: tuple = ("alone", id(inputs))
        else:
            key = tuple((k, a.shape[1:], a.dtype.str) for k, a in sorted(inputs.items()))
        task = _Task(inputs, rows or 1, key, asyncio.get_running_loop().create_future())
        self._queue.append(task)
        self._wakeup.set()
        return await task.future

    async def close(self) -> None:
        """Stop dispatching (callers drain requests first) and wait for calls in flight."""
        self._loop_task.cancel()
        await asyncio.gather(self._loop_task, *self._running, return_exceptions=True)
        for task in self._queue:
            if not task.future.done():
                task.future.set_exception(ServingError("UNAVAILABLE", f"{self.label} unloaded"))
        self._queue.clear()

    async def _dispatch(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = self._queue[0].queued_at + self.timeout_s
            while self._rows_ready() < self.max_batch_size:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            await self._slots.acquire()  # while every thread is busy, the batch keeps growing
            batch = self._take()
            job = asyncio.get_running_loop().create_task(self._call(batch))
            self._running.add(job)
            job.add_done_callback(self._running.discard)

    def _rows_ready(self) -> int:
        key = self._queue[0].key
        return sum(t.rows for t in self._queue if t.key == key)

    def _take(self) -> list[_Task]:
        """The oldest request and the following ones of the same kind, up to a full batch."""
        first = self._queue.popleft()
        batch, rows, kept = [first], first.rows, collections.deque()
        while self._queue and rows < self.max_batch_size:
            task = self._queue.popleft()
            if task.key == first.key and rows + task.rows <= self.max_batch_size:
                batch.append(task)
                rows += task.rows
            else:
                kept.append(task)
        kept.extend(self._queue)
        self._queue = kept
        return batch

    async def _call(self, batch: list[_Task]) -> None:
        loop = asyncio.get_running_loop()
        try:
            live = [t for t in batch if not t.future.done()]  # clients that went away
            if len(live) == 1:
                await self._call_one(live[0])
            elif live:
                inputs = {k: np.concatenate([t.inputs[k] for t in live]) for k in live[0].inputs}
                try:
                    outputs = await loop.run_in_executor(self._executor, self._run, inputs)
                    self.calls += 1
                    total = sum(t.rows for t in live)
                    if any(v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
                        raise ValueError("outputs do not follow the rows of the inputs")
                except Exception:  # find the request that failed, and answer the others
                    for task in live:
                        await self._call_one(task)
                    return
                start = 0
                for task in live:
                    end = start + task.rows
                    _resolve(task.future, {k: v[start:end] for k, v in outputs.items()})
                    start = end
        finally:
            self._slots.release()

    async def _call_one(self, task: _Task) -> None:
        try:
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._run, task.inputs)
            self.calls += 1
        except Exception as e:  # handed to the request that caused it
            if not task.future.done():
                task.future.set_exception(e)
            return
        _resolve(task.future, outputs)


def _resolve(future: asyncio.Future, value: Any) -> None:
    if not future.done():
        future.set_result(value)
