"""Training at scale: the precision policy, the ``tf.distribute`` strategy and XLA.

The one training loop (:mod:`kspec.train.loop`) builds every model inside :func:`scope`,
so the spec's dtype policy (``training.precision``) and strategy (``training.distribution``)
hold wherever a model is built: ``kspec fit``, phases, ensemble members, search trials and
the transfer bases built inside them. What XLA cannot compile is handled here too
(:func:`split_for_xla`, :func:`check_xla`), and :func:`describe` says what a run used.

Example:
    >>> spec = load_spec("specs/quickstart.yaml",
    ...                  {"training.precision": "mixed_bfloat16"})  # doctest: +SKIP
    >>> with scope(spec):  # doctest: +SKIP
    ...     model = build_model(spec)
    >>> model.dtype_policy.name  # doctest: +SKIP
    'mixed_bfloat16'
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import warnings
from typing import Any, Iterator, Mapping

from kspec.errors import SpecError, first_line
from kspec.spec import Spec

_STRATEGIES: dict[tuple, Any] = {}
_PATH = "training.distribution"


# -- the cluster (TF_CONFIG) ------------------------------------------------------------------
def check_cluster(env: Mapping[str, str] | None = None) -> None:
    """Refuse a malformed ``TF_CONFIG``, and one that describes several machines.

    ``TF_CONFIG`` is how ``tf.distribute`` learns about a multi-worker job. kspec trains
    on one machine (Keras 3 cannot fit under ``MultiWorkerMirroredStrategy``,
    keras-team/keras#20585), so a worker started with a cluster of several tasks would
    silently train alone; it is stopped before training instead, with the reason.

    Raises:
        SpecError: at ``TF_CONFIG`` (the environment variable), saying what is wrong.
    """
    text = (os.environ if env is None else env).get("TF_CONFIG", "")
    if not text.strip():
        return
    where = "TF_CONFIG"
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(where, f"the environment variable is not JSON ({e.msg} at line "
                        f"{e.lineno} column {e.colno})", valid='{"cluster": {"worker": '
                        '["host:port", ...]}, "task": {"type": "worker", "index": 0}}') from None
    if not isinstance(config, dict):
        raise SpecError(where, "should be a JSON object with 'cluster' and 'task'",
                        value=config)
    cluster = config.get("cluster")
    if not isinstance(cluster, dict) or not cluster:
        raise SpecError(f"{where}.cluster", "missing or not a mapping of job names to "
                        "address lists", value=cluster, valid='{"worker": ["host:port", ...]}')
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise SpecError(f"{where}.cluster.{job}", "should be a non-empty list of "
                            "host:port addresses", value=addresses)
        for i, address in enumerate(addresses):
            if not isinstance(address, str) or not re.fullmatch(r"[^:\s]+:\d{1,5}", address):
                raise SpecError(f"{where}.cluster.{job}[{i}]", "not a host:port address",
                                value=address)
    task = config.get("task")
    if not isinstance(task, dict):
        raise SpecError(f"{where}.task", "missing or not a mapping", value=task,
                        valid='{"type": "worker", "index": 0}')
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise SpecError(f"{where}.task.type", "names no job of the cluster", value=kind,
                        valid=sorted(cluster))
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(
            cluster[kind]):
        raise SpecError(f"{where}.task.index", f"should be 0 to {len(cluster[kind]) - 1} "
                        f"(the cluster lists {len(cluster[kind])} {kind} address(es))",
                        value=index)
    tasks = sum(len(a) for a in cluster.values())
    if tasks > 1:
        jobs = ", ".join(f"{len(a)} {j}" for j, a in cluster.items())
        raise SpecError(where, f"describes a cluster of {tasks} tasks ({jobs}), but kspec "
                        "trains on one machine: Keras 3 cannot fit under "
                        "MultiWorkerMirroredStrategy (keras-team/keras#20585), so this "
                        "process would train alone; unset TF_CONFIG and use "
                        "training.distribution.strategy: mirrored on each machine's devices, "
                        "or `kspec tune --devices N` (docs/scale.md)")


# -- devices and strategies -------------------------------------------------------------------
def _split_cpu(count: int, where: str) -> None:
    """Make ``count`` logical CPU devices (a machine without GPUs trying a multi-device
    setup); TensorFlow allows this only before it initializes its devices."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have < count:
            raise SpecError(where, f"{count} CPU devices asked for, but TensorFlow has already "
                            f"started with {have} and this machine has no GPU; split the CPU "
                            "before anything else runs (a fresh `kspec fit`, or "
                            "tf.config.set_logical_device_configuration first)") from None


def _available() -> list[str]:
    import tensorflow as tf

    return [d.name.split("device:")[-1] for d in tf.config.list_logical_devices()
            if d.device_type in ("CPU", "GPU")]


def devices(spec: Spec) -> list[str] | None:
    """The devices ``training.distribution`` asks for (``GPU:0``, ``CPU:1``), checked
    against the machine; None without a distribution section.

    Without a GPU, a count or names above ``CPU:0`` split the CPU into logical devices (to
    try a multi-device setup; it does not make training faster).

    Raises:
        SpecError: at ``training.distribution.devices`` when a device is missing.
    """
    dist = spec.training.distribution
    if dist is None:
        return None
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    names = dist.device_names()
    where = f"{_PATH}.devices"
    if names is None:
        kind = "GPU" if gpus else "CPU"
        count = dist.devices or (gpus if dist.strategy == "mirrored" and gpus else 1)
        if kind == "GPU" and count > gpus:
            raise SpecError(where, f"{count} GPUs asked for, this machine has {gpus}",
                            value=dist.devices, valid=f"at most {gpus}")
        if kind == "CPU" and count > 1:
            _split_cpu(count, where)
        names = [f"{kind}:{i}" for i in range(count)]
    else:
        cpus = [int(n.split(":")[1]) for n in names if n.startswith("CPU")]
        if cpus and max(cpus) > 0 and not gpus:
            _split_cpu(max(cpus) + 1, where)
    found = _available()
    for i, name in enumerate(names):
        if name not in found:
            raise SpecError(f"{where}[{i}]" if isinstance(dist.devices, list) else where,
                            f"this machine has no device {name}", value=name, valid=found)
    return names


def strategy(spec: Spec) -> Any:
    """The ``tf.distribute`` strategy of ``training.distribution`` (None without one).

    One strategy object per strategy and device list in a process: an ensemble's members
    and the model averaging them must live under the same one.
    """
    names = devices(spec)
    if names is None:
        return None
    import tensorflow as tf

    kind = spec.training.distribution.strategy
    key = (kind, tuple(names))
    if key not in _STRATEGIES:
        full = [f"/device:{n}" for n in names]
        if kind == "one_device":
            _STRATEGIES[key] = tf.distribute.OneDeviceStrategy(full[0])
        else:
            _STRATEGIES[key] = tf.distribute.MirroredStrategy(full)
    return _STRATEGIES[key]


def probe_precision(precision: str, device_names: list[str] | None,
                    where: str = "training.precision") -> None:
    """Run a small matmul and convolution in the policy's compute dtype on each device.

    A device without kernels for that dtype fails here, before training, with the spec
    path; a GPU too old to gain from it gets a warning (float16 needs compute capability
    7.0, bfloat16 8.0, for a speed-up).

    Raises:
        SpecError: at ``where`` when a device cannot compute in that dtype.
    """
    if precision == "float32":
        return
    import tensorflow as tf

    dtype = precision.replace("mixed_", "")
    for name in device_names or [_available()[-1]]:
        try:
            with tf.device(f"/device:{name}"):
                a = tf.ones((4, 4, 4, 2), dtype)
                tf.nn.conv2d(a, tf.ones((3, 3, 2, 2), dtype), 1, "SAME")
                tf.matmul(tf.ones((4, 4), dtype), tf.ones((4, 4), dtype))
        except (tf.errors.OpError, TypeError, ValueError) as e:
            raise SpecError(where, f"device {name} cannot compute in {dtype} "
                            f"({first_line(e, 200)})", value=precision,
                            valid="float32, or another precision") from None
        if name.startswith("GPU"):
            gpu = [d for d in tf.config.list_physical_devices("GPU")
                   if d.name.endswith(name)]
            details = tf.config.experimental.get_device_details(gpu[0]) if gpu else {}
            cc = details.get("compute_capability")
            need = (8, 0) if dtype == "bfloat16" else (7, 0)
            if cc is not None and tuple(cc) < need:
                warnings.warn(f"{where}: {name} has compute capability {cc[0]}.{cc[1]}; "
                              f"{dtype} runs but is faster only from {need[0]}.{need[1]}",
                              stacklevel=3)


def prepare(spec: Spec) -> None:
    """Check the machine for the spec before any data or model exists: TF_CONFIG, the
    devices (splitting the CPU for a CPU-only multi-device setup while TensorFlow still
    allows it) and the precision. Called first by the training loop."""
    check_cluster()
    probe_precision(spec.training.precision, devices(spec))
    one_interop_thread(spec)


def one_interop_thread(spec: Spec) -> bool:
    """Run TensorFlow's ops one after another (one inter-op thread) on a CPU-only machine.

    Each op still uses every core (the intra-op pool); what goes is the second pool's
    threads waiting for work beside it, which cost CPU time and no wall time on the
    graphs kspec builds: measured with ``benchmarks/bench_process.py`` (convnet job: the
    same wall time, about 6% less CPU time; the same numbers, since an op's result does
    not depend on this pool). Left as it is with a GPU, with ``training.distribution``
    (its collective ops run across devices at once), when ``TF_NUM_INTEROP_THREADS`` or
    ``tf.config.threading`` already chose, and once TensorFlow has started (it can only
    be set before). Returns whether it was set.
    """
    if spec.training.distribution is not None or os.environ.get("TF_NUM_INTEROP_THREADS"):
        return False
    import tensorflow as tf

    if (tf.config.threading.get_inter_op_parallelism_threads() != 0
            or tf.config.list_physical_devices("GPU")):
        return False
    try:
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow has started: its pools stay as they are
        return False
    return True


def check_inputs(spec: Spec, strat: Any) -> None:
    """Refuse what Keras cannot train on several replicas.

    Keras 3.15 builds a model under a strategy from one input batch averaged over the
    replicas (``TensorFlowTrainer._maybe_symbolic_build`` reduces it with "MEAN"), which
    fails for the string inputs of categorical columns (``AddN`` has no string kernel;
    keras-team/keras#21172, closed unfixed; tensorflow/tensorflow#80951).

    Raises:
        SpecError: at ``data.categorical`` with more than one replica.
    """
    if strat is None or strat.num_replicas_in_sync < 2 or not spec.data.categorical:
        return
    raise SpecError("data.categorical", "categorical columns are string inputs, and Keras "
                    "3.15 cannot start training on several replicas with string inputs (it "
                    "averages a first input batch over the replicas, strings included: "
                    "keras-team/keras#21172)",
                    valid="training.distribution with one device, or encode the column as "
                    "numbers before kspec")


@contextlib.contextmanager
def scope(spec: Spec) -> Iterator[Any]:
    """Build (and compile) models under the spec's dtype policy and strategy scope; yields
    the strategy (None without one)."""
    from kspec.compiler.precision import dtype_policy

    chosen = strategy(spec)
    check_inputs(spec, chosen)
    with dtype_policy(spec.training.precision):
        with chosen.scope() if chosen is not None else contextlib.nullcontext():
            yield chosen


def steps_per_execution(spec: Spec) -> int:
    """``training.steps_per_execution``, or 1 under a strategy with several replicas.

    Keras 3.15's multi-step train function (a ``tf.while_loop`` over
    ``get_next_as_optional``) fails under MirroredStrategy with more than one replica:
    "You must feed a value for placeholder tensor" (the error of keras-team/keras#19246,
    open; reproduced with two logical CPU devices). One step per call works.
    """
    import tensorflow as tf

    if tf.distribute.has_strategy() and tf.distribute.get_strategy().num_replicas_in_sync > 1:
        return 1
    return spec.training.steps_per_execution


def model_scope(model: Any):
    """The strategy scope ``model`` was built in, for compiling it again (phases, the plain
    model after learned loss weighting): its optimizer must live there too."""
    strat = getattr(model, "distribute_strategy", None)  # Keras's TF trainer
    return strat.scope() if strat is not None else contextlib.nullcontext()


def build_optimizer(model: Any) -> None:
    """Create the optimizer's variables now (a resume loads saved values into them; a saved
    model's optimizer state then matches on load), in the model's strategy scope, where
    training would have created them: under ``MirroredStrategy`` they are mirrored."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        with model_scope(model):
            optimizer.build(model.trainable_variables)


# -- what a run used --------------------------------------------------------------------------
def describe(model: Any, spec: Spec) -> dict[str, Any]:
    """Precision, whether XLA is on (read back from the compiled model), strategy, devices
    and batch sizes: recorded in ``meta.json`` and shown in the run summary.

    Example:
        >>> describe(model, spec)  # doctest: +SKIP
        {'precision': 'float32', 'xla': False,
         'xla_off': 'auto: Keras leaves XLA off on machines without a GPU',
         'jit_compile': 'auto', 'strategy': None, 'devices': ['CPU:0'], 'replicas': 1,
         'batch_size': 32, 'per_replica_batch': 32, 'steps_per_execution': 8}
    """
    import tensorflow as tf

    strat = getattr(model, "_distribute_strategy", None)  # None: no strategy was entered
    if strat is not None:
        used = [d.split("device:")[-1] for d in strat.extended.worker_devices]
        kind = spec.training.distribution.strategy
    else:
        used = [(tf.config.list_logical_devices("GPU") or
                 tf.config.list_logical_devices("CPU"))[0].name.split("device:")[-1]]
        kind = None
    replicas = len(used) if kind == "mirrored" else 1
    batch = spec.training.batch_size
    from kspec.train.xla import why_not

    reason = why_not(model, spec)
    return {"precision": spec.training.precision, "xla": bool(model.jit_compile),
            **({"xla_off": reason} if reason else {}),
            "jit_compile": spec.training.jit_compile, "strategy": kind, "devices": used,
            "replicas": replicas, "batch_size": batch,
            "per_replica_batch": batch // replicas,
            "steps_per_execution": int(getattr(model, "steps_per_execution", 1) or 1)}


def summary_line(compute: Mapping[str, Any]) -> str:
    """One line of the run summary: ``compute  mixed_bfloat16 on 2 devices (mirrored:
    CPU:0, CPU:1), XLA off, batch 32 global = 16 per replica``."""
    where = (f"{len(compute['devices'])} devices ({compute['strategy']}: "
             f"{', '.join(compute['devices'])})" if compute["replicas"] > 1
             else compute["devices"][0] + (f" ({compute['strategy']})"
                                           if compute["strategy"] else ""))
    batch = (f"batch {compute['batch_size']} global = {compute['per_replica_batch']} per "
             "replica" if compute["replicas"] > 1 else f"batch {compute['batch_size']}")
    return (f"compute  {compute['precision']} on {where}, XLA "
            f"{'on' if compute['xla'] else 'off'}, {batch}")
