"""Chief/worker search over KerasTuner's gRPC oracle, with every wait bounded.

KerasTuner's protocol: every process runs the same search with ``KERASTUNER_TUNER_ID``
(``chief`` for the one that holds the oracle, any other id for workers),
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT``. kspec keeps that protocol and fixes
two waits: a worker whose chief is missing waits up to an hour in every request
(``oracle_client.TIMEOUT``, keras-team/keras-tuner#990 and PR #957), and the chief's own server
loop (``oracle_chief.start_server``) polls every 20 s and never gives up. Here a worker checks
that the chief answers within ``connect_timeout`` and every request has ``call_timeout``; the
chief serves with a short poll until the search is over, within ``timeout``.
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent import futures
from typing import Callable, Iterator

from kspec.errors import SpecError


class TuneError(RuntimeError):
    """A search that cannot go on for reasons outside the spec (no chief, lost chief, ...)."""


ENV_ID, ENV_IP, ENV_PORT = "KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"


def parse_address(text: str, where: str = "search.distributed.oracle") -> tuple[str, int]:
    """``"127.0.0.1:8000"`` -> ``("127.0.0.1", 8000)``."""
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(where, "not an oracle address", value=text, valid="HOST:PORT, e.g. "
                        "127.0.0.1:8000")
    return host, int(port)


def role_from_env() -> tuple[str | None, str | None]:
    """``("chief" | "worker" | None, tuner id)`` from the KERASTUNER_* environment."""
    tuner_id = os.environ.get(ENV_ID)
    if ENV_IP not in os.environ or not tuner_id:
        return None, None
    return ("chief" if "chief" in tuner_id else "worker"), tuner_id


@contextlib.contextmanager
def environment(tuner_id: str, host: str, port: int) -> Iterator[None]:
    """Set the KERASTUNER_* variables KerasTuner reads, and restore them afterwards."""
    saved = {k: os.environ.get(k) for k in (ENV_ID, ENV_IP, ENV_PORT)}
    os.environ.update({ENV_ID: tuner_id, ENV_IP: host, ENV_PORT: str(port)})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def wait_for_chief(host: str, port: int, timeout: float) -> None:
    """Return once the chief's oracle answers; raise TuneError after ``timeout`` seconds."""
    import grpc

    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise TuneError(
            f"no chief answered at {host}:{port} within {timeout:g}s; start it first with "
            f"`kspec tune SPEC --chief --oracle {host}:{port}` (or raise "
            "search.distributed.connect_timeout)") from None
    finally:
        channel.close()


@contextlib.contextmanager
def bounded_requests(seconds: float) -> Iterator[None]:
    """Every request of a worker's oracle client times out after ``seconds``."""
    # Private: KerasTuner 1.4.8 hard-codes the client's timeout (an hour) in this module.
    from keras_tuner.src.distribute import oracle_client

    saved = oracle_client.TIMEOUT
    oracle_client.TIMEOUT = seconds  # read at each call; the default is an hour (see above)
    try:
        yield
    finally:
        oracle_client.TIMEOUT = saved


def serve(oracle, host: str, port: int, *, workers: int | None, connect_timeout: float,
          timeout: float | None, poll: float = 0.2, log=print,
          alive: Callable[[], bool] | None = None,
          why_dead: Callable[[], str] | None = None) -> set[str]:
    """Serve ``oracle`` to workers until the search is over; return the worker ids seen.

    The search is over when the oracle has stopped (max trials reached), no trial is running
    and every worker has left, and, when ``workers`` is given, that many workers have
    connected (late ones are waited for ``connect_timeout`` seconds at most). ``alive``
    (the workers this process started, :mod:`kspec.search.devices`) ends the wait as soon
    as no worker runs any more; ``why_dead`` says why for the error.

    Raises:
        TuneError: no worker within ``connect_timeout``, the search not over in ``timeout``,
            or every started worker gone before the search was over.
    """
    import grpc

    # Private: KerasTuner 1.4.8 starts its chief only through a blocking, unbounded
    # start_server(); serving with our own bounded loop needs its servicer and protos.
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    class Servicer(oracle_chief.OracleServicer):
        def __init__(self, oracle):
            super().__init__(oracle)
            self.seen: set[str] = set()

        def CreateTrial(self, request, context):  # noqa: N802 - gRPC method name
            self.seen.add(request.tuner_id)
            return super().CreateTrial(request, context)

    servicer = Servicer(oracle)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise TuneError(f"the chief cannot listen on {host}:{port} (port in use?)")
    server.start()
    log(f"chief: oracle listening on {host}:{port}")
    start = time.monotonic()
    over_since = None
    try:
        while True:
            time.sleep(poll)
            elapsed = time.monotonic() - start
            if not servicer.seen and elapsed > connect_timeout:
                raise TuneError(
                    f"no worker connected to the chief at {host}:{port} within "
                    f"{connect_timeout:g}s; start workers with `kspec tune SPEC --worker "
                    f"tuner1 --oracle {host}:{port}`")
            if timeout is not None and elapsed > timeout:
                running = sorted(t.trial_id for t in oracle.ongoing_trials.values())
                raise TuneError(f"the search did not finish within {timeout:g}s (trials still "
                                f"running: {running or 'none'}); finished trials are kept, "
                                "continue with --resume")
            over = servicer.stop_triggered and oracle_chief.exit_chief(oracle)
            if alive is not None and not over and not alive():
                time.sleep(poll)  # a worker's last report may still be on its way
                if not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
                    raise TuneError("every worker exited before the search was over"
                                    + (f": {why_dead()}" if why_dead else "")
                                    + "; finished trials are kept, continue with --resume")
            if not over:
                continue
            over_since = over_since or time.monotonic()
            if workers is None or len(servicer.seen) >= workers:
                break
            if time.monotonic() - over_since > connect_timeout or (
                    alive is not None and not alive()):
                log(f"chief: only {len(servicer.seen)} of {workers} workers connected")
                break
    finally:
        server.stop(grace=1.0)
    return servicer.seen
