"""Run ``kspec`` commands in processes that a test kills with SIGKILL, cheaply.

Importing TensorFlow takes ~3 s, which would make a loop of 20 kills take minutes. A
"zygote" process imports TensorFlow, Keras and kspec once (running no TensorFlow op, so no
runtime threads exist yet) and forks one child per command; each child runs
``kspec.cli.main(args)`` as the console script would and is killed like any process. What
a kill leaves on disk is the same as for a freshly started ``kspec``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

_ZYGOTE = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
saved = os.dup(2)
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 2)
import tensorflow, keras  # noqa: F401  (no op runs here: the children start the runtime)
import kspec.cli, kspec.train.fit, kspec.train.backup  # noqa: F401
os.dup2(saved, 2)
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.argv = ["kspec", *job["args"]]
            code = kspec.cli.main(job["args"])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    print(pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("exit", os.waitstatus_to_exitcode(status), flush=True)
"""


class Zygote:
    """Start ``kspec`` commands as forked children of one process that imported TensorFlow.

    Example:
        >>> with Zygote() as z:                                   # doctest: +SKIP
        ...     pid = z.start(["fit", "spec.yaml"], log="fit.log")
        ...     os.kill(pid, signal.SIGKILL)
        ...     z.wait()
        -9
    """

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen([sys.executable, "-c", _ZYGOTE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the zygote process did not start")
        self.child: int | None = None

    def start(self, args: list[str], log: Path) -> int:
        """Fork a child running ``kspec ARGS`` (stdout and stderr into ``log``); its pid."""
        self.proc.stdin.write(json.dumps({"args": args, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        self.child = int(self.proc.stdout.readline())
        return self.child

    def kill(self) -> None:
        if self.child is not None:
            try:
                os.kill(self.child, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def wait(self) -> int:
        """The child's exit code (-9 when killed)."""
        line = self.proc.stdout.readline().split()
        self.child = None
        return int(line[1])

    def close(self) -> None:
        self.kill()
        if self.child is not None:
            self.wait()
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
