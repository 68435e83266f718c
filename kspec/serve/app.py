"""The HTTP side: TF Serving's REST API on Starlette, served by uvicorn.

Routes (as matched by TF Serving's ``http_rest_api_util.cc``)::

    GET  /v1/models/NAME[/versions/V]            version status
    GET  /v1/models/NAME[/versions/V]/metadata   signature_def of the served version
    POST /v1/models/NAME[/versions/V]:predict    row ("instances") or columnar ("inputs")

Every error is ``{"error": "..."}`` with TF Serving's HTTP status. A request never takes
the server down: anything unexpected is logged and answered with 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import socket
import threading
from pathlib import Path
from typing import Any, Callable

from kspec.serve.errors import ServingError, invalid, not_found
from kspec.serve.manager import ModelManager, parse_version
from kspec.serve.options import ServeOptions
from kspec.serve.tensors import parse_json, parse_predict, predict_response

log = logging.getLogger("kspec.serve")

_PREDICT = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                      r":(classify|regress|predict)", re.IGNORECASE)
_STATUS = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                     r"(?:/(metadata))?", re.IGNORECASE)
# Bodies larger than this are parsed in a worker thread, so the event loop keeps answering.
_THREAD_PARSE_BYTES = 256 * 1024


def _json(data: Any, status: int = 200):
    from starlette.responses import Response

    body = json.dumps(data, separators=(",", ":")).encode("utf-8")  # NaN/Infinity as TF does
    return Response(body, status_code=status, media_type="application/json")


def _error(e: ServingError):
    return _json(e.body(), e.status)


async def _read_body(request, limit: int) -> bytes:
    """The request body, or PAYLOAD_TOO_LARGE (413) for one over ``limit`` bytes.

    A body over the limit is read and dropped (never kept, never parsed) before answering,
    up to 4x the limit: a server that answers and closes while the client is still sending
    makes the client see a reset connection instead of the 413.
    """
    from starlette.requests import ClientDisconnect

    declared = request.headers.get("content-length", "")
    too_large = declared.isdigit() and int(declared) > limit
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                too_large = True
            if too_large:
                chunks.clear()
                if size > 4 * limit:
                    break
            else:
                chunks.append(chunk)
    except ClientDisconnect:
        raise ServingError("CANCELLED", "the client closed the connection") from None
    if too_large:
        shown = f"{int(declared)} bytes" if declared.isdigit() else "over the limit"
        raise ServingError("PAYLOAD_TOO_LARGE", f"request body of {shown} is larger than the "
                           f"limit of {limit} bytes (--max-request-mb)")
    return b"".join(chunks)


class RestApi:
    """The request handlers, over one :class:`ModelManager`."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    async def __call__(self, request):
        path, method = request.url.path, request.method
        try:
            if method == "POST" and (m := _PREDICT.fullmatch(path)):
                name, version, label, verb = m.groups()
                if label is not None:
                    raise invalid(f"Unrecognized servable version label: {label} (kspec "
                                  "serve has no version labels; use /versions/N)")
                version = None if version is None else parse_version(version)
                if verb.lower() != "predict":
                    raise ServingError("UNIMPLEMENTED", f"{verb} needs a classification or "
                                       "regression signature; kspec exports predict "
                                       "signatures: use :predict")
                return await self.predict(request, name, version)
            if method == "GET" and (m := _STATUS.fullmatch(path)):
                name, version, label, metadata = m.groups()
                if not name:
                    raise invalid("Missing model name in request.")
                if label is not None:
                    raise invalid(f"Unrecognized servable version label: {label}")
                version = None if version is None else parse_version(version)
                if metadata:
                    return _json(self.metadata(name, version))
                return _json(self.manager.status(name, version))
            if not path.lower().startswith("/v1/models"):
                raise not_found(f"no such endpoint: {method} {path} (TF Serving's REST API "
                                "is under /v1/models/NAME)")
            raise invalid(f"Malformed request: {method} {path}")
        except ServingError as e:
            return _error(e)
        except Exception as e:  # a bug must cost one request, never the server
            log.exception("%s %s failed", method, path)
            return _json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)

    def metadata(self, name: str, version: int | None) -> dict[str, Any]:
        mv = self.manager.lookup(name, version)
        return {"model_spec": {"name": name, "signature_name": "",
                               "version": str(mv.version)},
                "metadata": {"signature_def": {"signature_def": mv.servable.signature_def}}}

    async def predict(self, request, name: str, version: int | None):
        body = await _read_body(request, self.manager.options.max_request_bytes)
        big = len(body) > _THREAD_PARSE_BYTES
        loop = asyncio.get_running_loop()
        doc = await loop.run_in_executor(None, parse_json, body) if big else parse_json(body)
        mv = self.manager.lookup(name, version)
        mv.enter()  # from here until leave(), a version switch waits for this request
        try:
            servable = mv.servable

            def inputs_of(signature_name: str):
                return servable.signature(signature_name).inputs

            parsed = (await loop.run_in_executor(None, parse_predict, doc, inputs_of) if big
                      else parse_predict(doc, inputs_of))
            signature = servable.signature(parsed.signature_name)
            outputs = await self.manager.predict(mv, signature, parsed.inputs)
        finally:
            mv.leave()
        return _json(predict_response(outputs, parsed.format))


def make_app(models_dir: str | Path, options: ServeOptions | None = None,
             on_ready: Callable[[ModelManager], None] | None = None):
    """The ASGI application serving ``models_dir`` (TF Serving's REST API).

    Models load when the application starts (its lifespan), before it answers; then
    ``models_dir`` is polled for new versions every ``options.poll_seconds``.

    Args:
        models_dir: MODELS_DIR (``NAME/VERSION/`` inside), or one model's folder.
        options: batching, versions, limits.
        on_ready: called once the models are loaded.

    Example:
        >>> import uvicorn
        >>> uvicorn.run(make_app("models"), host="127.0.0.1", port=8501)
    """
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = ModelManager(models_dir, options or ServeOptions())
    api = RestApi(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await manager.refresh()
        watcher = (asyncio.get_running_loop().create_task(manager.watch())
                   if manager.options.poll_seconds > 0 else None)
        if on_ready is not None:
            on_ready(manager)
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            await manager.close()

    methods = ["GET", "POST", "PUT", "DELETE", "PATCH"]  # all answered by RestApi
    app = Starlette(routes=[Route("/{path:path}", api.__call__, methods=methods)],
                    lifespan=lifespan)
    app.state.manager = manager
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port=0``: a free port, read it from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(2048)
    return sock


def serve(models_dir: str | Path, host: str = "127.0.0.1", port: int = 8501,
          options: ServeOptions | None = None,
          on_ready: Callable[[str, ModelManager], None] | None = None,
          log_level: str = "warning") -> None:
    """Serve ``models_dir`` over TF Serving's REST API until Ctrl-C or SIGTERM.

    Args:
        models_dir: MODELS_DIR (``NAME/VERSION/`` inside), or one model's folder.
        host: the address to listen on; 127.0.0.1 (this machine only) by default.
        port: the port (TF Serving's REST default, 8501); 0 picks a free one.
        options: batching, versions, limits (:class:`ServeOptions`).
        on_ready: ``on_ready(url, manager)`` once the models are loaded and the port is
            open.
        log_level: uvicorn's log level.

    Example:
        >>> from kspec.serve import serve
        >>> serve("models", port=8501)  # curl localhost:8501/v1/models/digits
    """
    import uvicorn

    from kspec.serve.servable import import_tensorflow

    import_tensorflow()
    sock = bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    app = make_app(models_dir, options,
                   on_ready=None if on_ready is None else (lambda m: on_ready(url, m)))
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="on",
                            timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the
    # previous handler: make SIGTERM's a no-op and catch SIGINT's KeyboardInterrupt, so that
    # serve() returns normally after a clean shutdown.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: None) if main else None
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if main:
            signal.signal(signal.SIGTERM, previous)
