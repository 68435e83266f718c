"""The settings of ``kspec serve`` (plain data, no imports of the server stack)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _cores() -> int:
    """CPU cores this process may use (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class ServeOptions:
    """How ``kspec serve`` batches, watches for versions and limits requests.

    Attributes:
        batching: gather concurrent requests into one signature call (TF Serving's
            ``--enable_batching``); False runs every request on its own.
        max_batch_size: rows in one signature call; a single request with more rows runs
            on its own, unsplit.
        batch_timeout_ms: how long the first request of a batch waits for others
            (TF Serving's ``batch_timeout_micros``); a full batch goes at once.
        num_threads: signature calls running at the same time (TF Serving's
            ``num_batch_threads``); default: the number of CPU cores.
        max_queued_requests: requests waiting for a batch per model version; more are
            refused with 429 (TF Serving: "the batch scheduling queue ... is full").
        keep_versions: the newest N versions of each model are loaded and served (TF
            Serving's ``latest`` version policy); 0 serves every version.
        poll_seconds: how often MODELS_DIR is scanned for new, removed or replaced
            versions and models (TF Serving's ``file_system_poll_wait_seconds``); 0 never.
        max_request_bytes: larger request bodies are refused with 413 (dropped as they
            arrive, never kept or parsed).

    Example:
        >>> ServeOptions(max_batch_size=64, batch_timeout_ms=1.0).timeout_s
        0.001
    """

    batching: bool = True
    max_batch_size: int = 32
    batch_timeout_ms: float = 2.0
    num_threads: int = field(default_factory=lambda: _cores())
    max_queued_requests: int = 1024
    keep_versions: int = 1
    poll_seconds: float = 1.0
    max_request_bytes: int = 32 * 1024 * 1024

    def __post_init__(self) -> None:
        checks = {
            "max_batch_size": self.max_batch_size >= 1,
            "batch_timeout_ms": self.batch_timeout_ms >= 0,
            "num_threads": self.num_threads >= 1,
            "max_queued_requests": self.max_queued_requests >= 1,
            "keep_versions": self.keep_versions >= 0,
            "poll_seconds": self.poll_seconds >= 0,
            "max_request_bytes": self.max_request_bytes >= 1,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid serve option {bad[0]}={getattr(self, bad[0])!r}: "
                             "expected a positive number (keep_versions, poll_seconds and "
                             "batch_timeout_ms may be 0)")

    @property
    def timeout_s(self) -> float:
        """The batch timeout in seconds."""
        return self.batch_timeout_ms / 1000.0

    @property
    def batch_rows(self) -> int:
        """Rows per signature call: 1 when batching is off."""
        return self.max_batch_size if self.batching else 1
