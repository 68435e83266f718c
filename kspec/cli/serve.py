"""``kspec serve MODELS_DIR``: TF Serving's REST API over exported SavedModels."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from kspec.cli.common import quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve", help="serve exported SavedModels over TF Serving's REST API",
        description="Serve every model under MODELS_DIR/NAME/VERSION/ (or one model's "
        "folder) with TensorFlow Serving's REST API: GET /v1/models/NAME, GET "
        "/v1/models/NAME/metadata, POST /v1/models/NAME[/versions/V]:predict with "
        "'instances' (rows) or 'inputs' (columns). Concurrent requests are batched; new "
        "version folders are loaded, checked and switched to without failing a request. "
        "Ctrl-C or SIGTERM stops it after the requests in flight.")
    p.add_argument("models_dir", metavar="MODELS_DIR")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8501,
                   help="port (default: 8501, TF Serving's REST port; 0: a free one)")
    b = p.add_argument_group("batching")
    b.add_argument("--no-batching", dest="batching", action="store_false",
                   help="one signature call per request")
    b.add_argument("--max-batch-size", type=int, default=32, metavar="ROWS",
                   help="rows per signature call (default: 32)")
    b.add_argument("--batch-timeout-ms", type=float, default=2.0, metavar="MS",
                   help="longest wait of a batch's first request for more (default: 2)")
    b.add_argument("--num-threads", type=int, default=None, metavar="N",
                   help="signature calls at once (default: the number of CPU cores)")
    b.add_argument("--max-queued-requests", type=int, default=1024, metavar="N",
                   help="requests waiting per model version before 429 (default: 1024)")
    v = p.add_argument_group("versions and limits")
    v.add_argument("--keep-versions", type=int, default=1, metavar="N",
                   help="serve the newest N versions of each model; 0: all (default: 1)")
    v.add_argument("--poll-seconds", type=float, default=1.0, metavar="S",
                   help="how often MODELS_DIR is scanned for versions; 0: never (default: 1)")
    v.add_argument("--max-request-mb", type=float, default=32.0, metavar="MB",
                   help="larger request bodies get 413 (default: 32)")
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="kspec's messages about loads and switches (default: info)")
    p.set_defaults(run=run)


def _ready(url: str, manager) -> None:
    lines = [f"kspec serve: {manager.root} on {url} (Ctrl-C to stop)"]
    for name, model in sorted(manager.models.items()):
        available = model.available()
        if available:
            lines.append(f"  {name:<20} version {available[-1]:<6} "
                         f"POST {url}/v1/models/{name}:predict")
        else:
            errors = [f"version {v}: {mv.error}" for v, mv in sorted(model.versions.items())
                      if mv.error]
            lines.append(f"  {name:<20} no version loaded ({'; '.join(errors) or 'none'})")
    if not manager.models:
        lines.append(f"  no models yet (expected {manager.root}/NAME/VERSION/); watching")
    print("\n".join(lines), flush=True)


def run(args) -> int:
    from kspec.serve.options import ServeOptions

    root = Path(args.models_dir)
    if not root.is_dir():
        print(f"error: {root}: no such folder (expected MODELS_DIR with NAME/VERSION/ "
              "folders, as `kspec export --out MODELS_DIR` writes)", file=sys.stderr)
        return 2
    try:
        options = ServeOptions(
            batching=args.batching, max_batch_size=args.max_batch_size,
            batch_timeout_ms=args.batch_timeout_ms, max_queued_requests=args.max_queued_requests,
            keep_versions=args.keep_versions, poll_seconds=args.poll_seconds,
            max_request_bytes=int(args.max_request_mb * 1024 * 1024),
            **({"num_threads": args.num_threads} if args.num_threads else {}))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kspec serve: %(message)s"))
    logger = logging.getLogger("kspec.serve")
    logger.addHandler(handler)
    logger.setLevel(args.log_level.upper())
    logger.propagate = False

    from kspec.serve.app import serve
    from kspec.serve.servable import keras_blocked

    with keras_blocked():  # the server never uses Keras; TensorFlow would import it
        quiet_tensorflow()
    try:
        serve(root, args.host, args.port, options=options, on_ready=_ready)
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}",
              file=sys.stderr)
        return 1
    print("kspec serve: stopped", file=sys.stderr)
    return 0
