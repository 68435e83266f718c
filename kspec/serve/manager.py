"""The models under MODELS_DIR, their versions, and switching versions without a dropped
request.

Each model's newest ``keep_versions`` version folders are loaded (in a background thread)
and checked; the highest available one answers requests that name no version. A new
version folder (kspec publishes it atomically, by renaming a finished temporary folder) is
loaded and checked while the previous version keeps answering; only then does it take the
new requests, and the previous version is unloaded once the requests it holds have
finished. A version that fails to load is reported in the model's status and the previous
one keeps serving; it is tried again only if its folder changes.

States and the status JSON follow TF Serving's ``GetModelStatus``: ``START``, ``LOADING``,
``AVAILABLE``, ``UNLOADING``, ``END``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kspec.serve import servable as servables
from kspec.serve.batching import Batcher
from kspec.serve.errors import ServingError, invalid, not_found
from kspec.serve.exports import check_name, versions
from kspec.serve.options import ServeOptions

log = logging.getLogger("kspec.serve")


class ModelVersion:
    """One version of one model, with its state and the requests it holds."""

    def __init__(self, name: str, version: int, path: Path) -> None:
        self.name, self.version, self.path = name, version, path
        self.state = "START"
        self.error_code, self.error = "OK", ""
        self.servable: servables.Servable | None = None
        self.batchers: dict[str, Batcher] = {}
        self.active = 0
        self._drained: asyncio.Future | None = None

    @property
    def label(self) -> str:
        return f"{self.name} version {self.version}"

    def status(self) -> dict[str, Any]:
        """One entry of ``model_version_status``."""
        return {"version": str(self.version), "state": self.state,
                "status": {"error_code": self.error_code, "error_message": self.error}}

    def enter(self) -> None:
        """A request starts using this version (it stays loaded until :meth:`leave`)."""
        self.active += 1

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0 and self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    async def drain(self) -> None:
        """Wait until every request that entered has left."""
        if self.active:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained


class Model:
    """A model folder ``MODELS_DIR/NAME`` and what is known of its versions."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.versions: dict[int, ModelVersion] = {}
        self.failed: dict[int, int] = {}  # version -> folder mtime when it failed

    def available(self) -> list[int]:
        return sorted(v for v, mv in self.versions.items() if mv.state == "AVAILABLE")


class ModelManager:
    """Loads, serves and switches the versions of every model under ``root``.

    Args:
        root: MODELS_DIR (one folder per model), or one model's folder MODELS_DIR/NAME.
        options: batching, version policy and polling.

    Example:
        >>> manager = ModelManager("models", ServeOptions())
        >>> await manager.refresh()          # load what is there
        >>> manager.lookup("digits", None).version
        2
    """

    def __init__(self, root: str | Path, options: ServeOptions | None = None) -> None:
        self.root = Path(root)
        self.options = options or ServeOptions()
        self.models: dict[str, Model] = {}
        self.executor = ThreadPoolExecutor(self.options.num_threads,
                                           thread_name_prefix="kspec-serve")
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="kspec-load")
        self._unloading: set[asyncio.Task] = set()
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ finding versions

    def scan(self) -> dict[str, Path]:
        """``{name: folder}`` of the models on disk: folders holding version folders."""
        if versions(self.root):  # the folder of one model
            return {self.root.name: self.root}
        found = {}
        for p in sorted(self.root.iterdir()):
            if p.is_dir() and not p.name.startswith(".") and versions(p):
                try:
                    found[check_name(p.name)] = p
                except ValueError:
                    log.warning("%s: skipped, not a usable model name", p)
        return found

    async def refresh(self) -> None:
        """One scan: load new versions, switch to them, unload superseded or removed ones."""
        async with self._lock:
            try:
                found = self.scan()
            except OSError as e:
                log.error("cannot scan %s (%s); serving what is loaded", self.root, e)
                return
            for name, model in self.models.items():
                if name not in found:
                    for mv in model.versions.values():
                        self._unload(mv, "its model folder is gone")
            for name, path in found.items():
                model = self.models.setdefault(name, Model(name, path))
                await self._refresh_model(model)

    async def _refresh_model(self, model: Model) -> None:
        on_disk = versions(model.path)
        for v, mtime in list(model.failed.items()):
            if v not in on_disk or _mtime(model.path / str(v)) != mtime:
                del model.failed[v]  # gone or replaced: try again
        while True:
            desired = self._desired(model, on_disk)
            missing = sorted((v for v in desired if v not in model.available()), reverse=True)
            if not missing:
                break
            for v in missing:  # newest first: it is the one that will answer
                await self._load(model, v)
        for v in model.available():
            if v not in desired:
                reason = "removed from disk" if v not in on_disk else "superseded"
                self._unload(model.versions[v], reason)

    def _desired(self, model: Model, on_disk: list[int]) -> list[int]:
        candidates = [v for v in on_disk if v not in model.failed]
        keep = self.options.keep_versions
        return candidates[-keep:] if keep else candidates

    async def _load(self, model: Model, version: int) -> None:
        mv = ModelVersion(model.name, version, model.path / str(version))
        model.versions[version] = mv
        mv.state = "LOADING"
        log.info("%s: loading %s", mv.label, mv.path)
        try:
            mv.servable = await asyncio.get_running_loop().run_in_executor(
                self._loader, servables.load, mv.path)
        except Exception as e:  # any failure: report it, keep the previous version serving
            mv.state, mv.error_code = "END", getattr(e, "code", "UNKNOWN")
            mv.error = str(e) or type(e).__name__
            model.failed[version] = _mtime(mv.path)
            previous = [v for v in model.available() if v != version]
            log.error("%s failed to load: %s; %s", mv.label, mv.error,
                      f"version {previous[-1]} keeps serving" if previous
                      else "no version of it is serving")
            return
        mv.state = "AVAILABLE"
        log.info("%s is available", mv.label)

    def _unload(self, mv: ModelVersion, reason: str) -> None:
        if mv.state != "AVAILABLE":
            return
        mv.state = "UNLOADING"  # lookup() no longer hands it out
        log.info("%s: unloading (%s) once its %d requests in flight finish", mv.label, reason,
                 mv.active)
        task = asyncio.get_running_loop().create_task(self._finish_unload(mv))
        self._unloading.add(task)
        task.add_done_callback(self._unloading.discard)

    async def _finish_unload(self, mv: ModelVersion) -> None:
        await mv.drain()
        for batcher in mv.batchers.values():
            await batcher.close()
        mv.batchers.clear()
        mv.servable = None
        mv.state = "END"
        log.info("%s unloaded", mv.label)

    async def watch(self) -> None:
        """Poll MODELS_DIR every ``poll_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self.options.poll_seconds)
            try:
                await self.refresh()
            except Exception:  # a bug in one poll must not stop the next ones
                log.exception("scanning %s failed", self.root)

    async def close(self) -> None:
        """Finish unloads in progress and stop the worker threads."""
        await asyncio.gather(*self._unloading, return_exceptions=True)
        for model in self.models.values():
            for mv in model.versions.values():
                for batcher in mv.batchers.values():
                    await batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self._loader.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ answering

    def lookup(self, name: str, version: int | None) -> ModelVersion:
        """The version answering a request (TF Serving's NOT_FOUND messages otherwise)."""
        model = self.models.get(name)
        if version is None:
            available = model.available() if model else []
            if not available:
                raise not_found(f"Servable not found for request: Latest({name})")
            return model.versions[available[-1]]
        mv = model.versions.get(version) if model else None
        if mv is None or mv.state != "AVAILABLE":
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return mv

    def status(self, name: str, version: int | None) -> dict[str, Any]:
        """TF Serving's ``GetModelStatusResponse`` as JSON data (newest version first)."""
        model = self.models.get(name)
        if not model or not model.versions:
            raise not_found(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in model.versions:
                raise not_found(f"Could not find version {version} of model {name}")
            return {"model_version_status": [model.versions[version].status()]}
        return {"model_version_status": [model.versions[v].status()
                                         for v in sorted(model.versions, reverse=True)]}

    async def predict(self, mv: ModelVersion, signature: servables.Signature,
                      inputs: dict[str, Any]) -> dict[str, Any]:
        """Run a request through the batcher of ``mv``'s signature (the caller holds
        ``mv.enter()``)."""
        if mv.servable is None:  # pragma: no cover - entered versions stay loaded
            raise ServingError("UNAVAILABLE", f"{mv.label} is not loaded")
        batcher = mv.batchers.get(signature.name)
        if batcher is None:
            rows = self.options.batch_rows if signature.batchable else 1
            batcher = Batcher(functools.partial(mv.servable.run, signature), self.executor,
                              max_batch_size=rows,
                              timeout_s=self.options.timeout_s if rows > 1 else 0.0,
                              max_queued=self.options.max_queued_requests,
                              threads=self.options.num_threads, label=mv.label)
            mv.batchers[signature.name] = batcher
        return await batcher.submit(inputs)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1


def parse_version(text: str) -> int:
    """A version from a URL (TF Serving: "Failed to convert version: X to numeric.")."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2 ** 63:
        raise invalid(f"Failed to convert version: {text} to numeric.")
    return value
