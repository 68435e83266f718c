"""``kspec.tune``: search the spaces of a spec with KerasTuner and record the results."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from kspec.errors import SpecError
from kspec.search.distributed import TuneError, parse_address, role_from_env
from kspec.search.results import TrialRecord
from kspec.validation.spaces import SearchPlan, diff_paths, load_search

STATE = "search.json"


@dataclass
class SearchResult:
    """The result of :func:`tune`.

    Attributes:
        project_dir: where the search lives (KerasTuner files and kspec results).
        trials: every trial, in start order (see :class:`kspec.search.results.TrialRecord`).
        best: the best finished trial, or None when none finished (or on a worker).
        best_spec: the best resolved Spec (also in ``best_spec.yaml``).
        best_model_path: ``best_model.keras``, when a trial finished.
        test_metrics: the best model's metrics on the test split (also in
            ``best_metrics.json``), when the data has a test split.
        role: ``local``, ``chief`` or ``worker``.
    """

    project_dir: Path
    plan: SearchPlan
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialRecord | None = None
    best_spec: Any = None
    best_model_path: Path | None = None
    test_metrics: dict[str, float] | None = None
    role: str = "local"
    workers: list[dict[str, Any]] | None = None

    @property
    def best_spec_path(self) -> Path:
        return self.project_dir / "best_spec.yaml"

    def summary(self) -> str:
        """Best trials first, then where the results are."""
        from kspec.search.results import summary

        text = summary(self.trials, self.plan, self.project_dir)
        if self.workers:
            counts = {w["tuner_id"]: sum(t.tuner_id == w["tuner_id"] for t in self.trials)
                      for w in self.workers}
            text += "\n\n" + "\n".join(f"worker      {w['tuner_id']} on {w['device']}: "
                                        f"{counts[w['tuner_id']]} trial(s)"
                                        for w in self.workers)
        if self.best is not None:
            text += (f"\n\nbest spec   {self.best_spec_path}   (kspec fit {self.best_spec_path})"
                     f"\nbest model  {self.best_model_path}"
                     + (f"\ntest        {_metrics_line(self.test_metrics)}   (the best model "
                        f"on the test split: {self.project_dir / 'best_metrics.json'})"
                        if self.test_metrics else "")
                     + "\ntable       "
                     f"{self.project_dir / 'trials.csv'}\nplot        "
                     f"{self.project_dir / 'objective.png'}")
        return text


def _metrics_line(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items()))


def _prepare_project(project_dir: Path, plan: SearchPlan, resume: bool) -> None:
    """Refuse to mix searches: a resumed search must have the same spec and spaces."""
    state_file = project_dir / STATE
    if project_dir.exists() and plan.search.overwrite and not resume:
        shutil.rmtree(project_dir)
    has_project = (project_dir / "oracle.json").is_file()
    if has_project and not resume:
        raise SpecError(
            "search.overwrite", f"the search project {project_dir} already exists",
            valid="--resume to continue it, or search.overwrite: true (--overwrite) to start "
            "again")
    if has_project and state_file.is_file():
        old = json.loads(state_file.read_text())
        if old.get("fingerprint") != plan.fingerprint():
            changed = diff_paths(old.get("spec", {}), plan.identity())
            spaces = [p for p in changed if "$" in p]
            other = [p for p in changed if "$" not in p]
            what = (f"the search space changed ({', '.join(spaces[:6])})" if spaces else
                    f"the spec changed ({', '.join(other[:6])})")
            raise SpecError(
                "<spec>", f"cannot resume {project_dir}: {what} since its trials ran; "
                "KerasTuner would silently mix old and new trials",
                valid="the original spec, or a new project (search.project / --out) or "
                "search.overwrite: true")
    elif has_project:
        raise SpecError("<spec>", f"{project_dir} is not a kspec search (no {STATE}); "
                        "it cannot be resumed safely", valid="another search.project")
    project_dir.mkdir(parents=True, exist_ok=True)
    if not state_file.is_file():
        from kspec.rundir import library_versions, now, write_json

        write_json(state_file, {"fingerprint": plan.fingerprint(), "spec": plan.identity(),
                                "hyperparameters": [s.describe() for s in plan.spaces],
                                "source": plan.source, "created": now(),
                                "versions": library_versions()})


def _load_data(plan: SearchPlan, data: Any):
    """The splits, loaded once per search, with labels as read (each trial derives its own
    targets: ``training.targets`` may be searched)."""
    from kspec.data.loading import load_data
    from kspec.train.loop import for_loading
    from kspec.train.scale import prepare

    prepare(plan.default)  # TF_CONFIG, devices and precision, before TensorFlow starts
    return load_data(for_loading(plan.default), data)


def tune(spec: Any, data: Any = None, *, out: str | Path | None = None, resume: bool = False,
         overrides: Mapping[str, Any] | None = None, role: str | None = None,
         tuner_id: str | None = None, oracle: str | None = None, workers: int | None = None,
         verbose: int = 1, callbacks: list | None = None,
         devices: int | None = None) -> SearchResult:
    """Search the spaces written in a spec with the tuner of its ``search:`` section.

    Args:
        spec: a path, YAML/JSON text or dict whose values may be search spaces.
        data: in-memory data as for :func:`kspec.fit`; default: the spec's ``data.source``.
        out: folder of search projects (default ``search.directory``); the project is
            ``OUT/<search.project or spec name>``.
        resume: continue an interrupted search; refused when the spec or its spaces changed.
        overrides: values by key path, ``{"search.max_trials": 20}``.
        role: ``"chief"`` or ``"worker"`` for a distributed search (default: from the
            KERASTUNER_* environment, else a local search).
        tuner_id: the worker's id (``tuner1``); oracle: ``HOST:PORT`` of the chief.
        workers: the chief serves until this many workers have connected.
        verbose: 0 silent, 1 KerasTuner's per-trial report.
        callbacks: extra Keras callbacks for every trial.
        devices: run the trials in this many worker processes on this machine, one per GPU
            (or per share of the CPU cores without GPUs), this process holding the oracle
            (:mod:`kspec.search.devices`); the spec's data source is read by each worker.

    Returns:
        A :class:`SearchResult`; the project directory holds ``best_spec.yaml``,
        ``trials.csv``, ``objective.png`` and ``best_model.keras``.

    Example:
        >>> result = tune("specs/search_mlp.yaml", out="tuning",
        ...               overrides={"search.max_trials": 2, "search.epochs": 1})
        >>> result.best_spec_path.name
        'best_spec.yaml'
    """
    plan = load_search(spec, overrides)
    if not plan.spaces:
        raise SpecError("<spec>", "the spec has no search spaces",
                        valid="a value written as a space, e.g. units: {$choice: [32, 64]}")
    search = plan.search
    env_role, env_id = role_from_env()
    role = role or env_role or "local"
    if role not in ("local", "chief", "worker"):
        raise ValueError(f"role must be 'chief', 'worker' or None, got {role!r}")
    dist = search.distributed
    host, port = parse_address(oracle or _env_address() or dist.oracle,
                               "--oracle" if oracle else "search.distributed.oracle")
    launch = None
    if devices is not None:
        launch, host, port = _devices_launcher(plan, devices, role, data, callbacks, out,
                                               verbose)
        role = "chief"
    if role == "worker":
        tuner_id = tuner_id or env_id or "tuner1"
        if "chief" in tuner_id:
            raise SpecError("--worker", "a worker id must not contain 'chief'", value=tuner_id)
    project_dir = Path(out or search.directory) / (search.project or plan.default.name)

    with _frozen_heap():
        return _tune(plan, data, role, tuner_id, host, port, workers or devices, project_dir,
                     resume, verbose, callbacks, launch)


def _devices_launcher(plan, devices, role, data, callbacks, out, verbose):
    """``(launch(project_dir), host, port)`` for a search over this machine's devices."""
    from kspec.search import devices as multi

    if role != "local":
        raise SpecError("--devices", "a multi-device search starts its own chief and "
                        f"workers; it cannot run as {role!r}", value=devices)
    if data is not None or callbacks:
        raise SpecError("--devices", "the workers are separate processes: they read the "
                        "spec's data.source and cannot receive in-memory data or callbacks",
                        valid="a spec with a data source, without data=/callbacks=")
    multi.assignments(devices)  # enough devices: refused before anything starts
    host, port = "127.0.0.1", multi.free_port()
    root = Path(out or plan.search.directory).resolve()

    def launch(project_dir: Path):
        return multi.launch(plan.raw, project_dir, root, host, port, devices, verbose)

    return launch, host, port


@contextlib.contextmanager
def _frozen_heap() -> Iterator[None]:
    """Objects alive before the search (TensorFlow, Keras, the data) are moved out of the
    garbage collector's reach while it runs: a full collection between trials then scans
    only what trials create (0.25 s -> a few ms per collection with TensorFlow loaded)."""
    import gc

    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _tune(plan, data, role, tuner_id, host, port, workers, project_dir, resume, verbose,
          callbacks, launch=None) -> SearchResult:
    search = plan.search
    dist = search.distributed
    loaded = _load_data(plan, data)
    objective = search.objective.name
    if objective.startswith("val_") and loaded.validation is None:
        raise SpecError("search.objective", f"{objective!r} needs a validation split",
                        valid="data.splits.validation > 0, validation data, or a training "
                        "metric such as 'loss'")
    if role == "worker":
        return _work(plan, loaded, project_dir, host, port, tuner_id, verbose, callbacks)
    _prepare_project(project_dir, plan, resume)

    from kspec.search.hyper import ObjectiveMissing, SpecHyperModel, make_tuner

    epochs = search.epochs or plan.default.training.epochs
    hypermodel = SpecHyperModel(plan, loaded, epochs, callbacks)
    stopped: Exception | None = None
    started, workers_done = None, None
    if role == "chief":
        from kspec.search.distributed import environment, serve

        log = (lambda m: print(m, file=sys.stderr)) if verbose else (lambda m: None)
        with environment("chief", host, port):
            tuner = make_tuner(plan, hypermodel, project_dir.parent, project_dir.name)
            tuner.oracle.verbose = verbose
            tuner.save()
            try:
                if launch is not None:
                    started = launch(project_dir)
                    for w in started.workers:
                        log(f"chief: worker {w.tuner_id} on {w.device} (log {w.log})")
                serve(tuner.oracle, host, port, workers=workers or dist.workers,
                      connect_timeout=dist.connect_timeout, timeout=dist.timeout, log=log,
                      alive=started.alive if started else None,
                      why_dead=started.tails if started else None)
            except TuneError as e:
                stopped = e
            finally:
                if started is not None:
                    workers_done = started.finish()
            tuner.save()
    else:
        tuner = make_tuner(plan, hypermodel, project_dir.parent, project_dir.name)
        try:
            with _quiet_failures(verbose):
                tuner.search(verbose=verbose)
        except ObjectiveMissing as e:
            raise e.spec_error from None
        except RuntimeError as e:
            if "consecutive failures" not in str(e):
                raise
            stopped = TuneError(f"the search stopped: {search.max_consecutive_failures} "
                                "trials in a row failed (search.max_consecutive_failures); "
                                f"the last: {str(e).splitlines()[-1]}")
    result = _finish(tuner, plan, project_dir, role)
    if started is not None:
        result.workers = workers_done
        if stopped is None and started.failed():
            stopped = TuneError(f"the search finished, but {started.tails()}")
    if stopped is not None:
        raise stopped
    return result


@contextlib.contextmanager
def _quiet_failures(verbose: int) -> Iterator[None]:
    """KerasTuner prints the traceback of every failed trial (``config.DEBUG``); the reason
    is in the trial table, so print tracebacks only at ``verbose >= 2``."""
    # Private: KerasTuner 1.4.8 exposes no public switch for its tracebacks.
    from keras_tuner.src import config

    saved = config.DEBUG
    config.DEBUG = verbose >= 2
    try:
        yield
    finally:
        config.DEBUG = saved


def _env_address() -> str | None:
    import os

    if "KERASTUNER_ORACLE_IP" in os.environ and "KERASTUNER_ORACLE_PORT" in os.environ:
        return f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    return None


def _work(plan, loaded, project_dir: Path, host: str, port: int, tuner_id: str, verbose: int,
          callbacks) -> SearchResult:
    """A worker: wait (bounded) for the chief, check it runs the same search, run trials."""
    import grpc

    from kspec.search.distributed import bounded_requests, environment, wait_for_chief
    from kspec.search.hyper import ObjectiveMissing, SpecHyperModel, make_tuner

    dist = plan.search.distributed
    wait_for_chief(host, port, dist.connect_timeout)
    state = project_dir / STATE
    if state.is_file() and json.loads(state.read_text()).get("fingerprint") != plan.fingerprint():
        raise SpecError("<spec>", f"this worker's spec differs from the one the chief searches "
                        f"({state}); every process must run the same spec")
    epochs = plan.search.epochs or plan.default.training.epochs
    hypermodel = SpecHyperModel(plan, loaded, epochs, callbacks)
    ran: list[str] = []
    with environment(tuner_id, host, port), bounded_requests(dist.call_timeout):
        tuner = make_tuner(plan, hypermodel, project_dir.parent, project_dir.name)
        original = tuner.on_trial_end

        def on_trial_end(trial):
            ran.append(trial.trial_id)
            original(trial)

        tuner.on_trial_end = on_trial_end
        try:
            with _quiet_failures(verbose):
                tuner.search(verbose=verbose)
        except ObjectiveMissing as e:
            raise e.spec_error from None
        except grpc.RpcError as e:
            raise TuneError(f"worker {tuner_id} lost the chief at {host}:{port}: "
                            f"{e.code().name}") from None
    from kspec.search.results import collect

    records = collect(_Finished(project_dir, ran), plan, project_dir)
    return SearchResult(project_dir=project_dir, plan=plan, trials=records, role="worker")


class _Finished:
    """The trials this worker ran, read from disk (a worker has no oracle of its own).

    Only its own trials: the chief wrote their ``trial.json`` before it answered the
    worker's EndTrial, whereas another worker's trial may be half-written at this moment
    (KerasTuner writes ``trial.json`` in place), and reading it failed with a JSONDecodeError.
    """

    def __init__(self, project_dir: Path, ran: list[str]) -> None:
        # Private: Trial.load is not exported by KerasTuner 1.4.8's public API.
        from keras_tuner.src.engine import trial as trial_module

        self.trials = {trial_id: trial_module.Trial.load(
            str(project_dir / f"trial_{trial_id}" / "trial.json")) for trial_id in ran}
        self.start_order = list(ran)


def _finish(tuner, plan: SearchPlan, project_dir: Path, role: str) -> SearchResult:
    """Write the trial table, the plot, the best resolved spec and the best model."""
    from kspec.rundir import atomic_write_text, save_model_atomic
    from kspec.search import results

    records = results.collect(tuner.oracle, plan, project_dir)
    results.write_table(records, plan, project_dir / "trials.csv")
    results.plot(records, plan, project_dir / "objective.png")
    result = SearchResult(project_dir=project_dir, plan=plan, trials=records, role=role)
    ranked = results.ranked(records, plan.search.objective.direction)
    if not ranked or ranked[0].score is None:
        return result
    best = ranked[0]
    trial = tuner.oracle.trials[best.trial_id]
    spec, text = results.best_spec(plan, trial.hyperparameters, best.epochs, best.score,
                                   best.trial_id)
    atomic_write_text(project_dir / "best_spec.yaml", text)
    with warnings.catch_warnings():
        # The checkpoint holds the optimizer state too; the saved best model is for use, so a
        # fresh (unbuilt) optimizer is expected.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model = tuner.load_model(trial)
    from kspec.train.loop import final_model

    model, _ = final_model(model, spec)  # a learned-weighting wrapper becomes its plain model
    if getattr(model, "optimizer", None) is not None and not model.optimizer.built:
        from kspec.train.scale import model_scope

        # Saved with a built optimizer, the model loads without a variable-count warning.
        with model_scope(model):  # in the trial's strategy, if it had one
            model.optimizer.build(model.trainable_variables)
    save_model_atomic(model, project_dir / "best_model.keras")
    result.best, result.best_spec = best, spec
    result.best_model_path = project_dir / "best_model.keras"
    # Scored on validation data, the best trial is chosen; the test split says how good the
    # chosen model is (what a hand-written KerasTuner script reports last).
    data = tuner.hypermodel.data_for(spec)
    if data.test is not None:
        from kspec.data.pipeline import to_dataset
        from kspec.rundir import write_json

        values = model.evaluate(to_dataset(data.test, spec.training.batch_size, cache=False),
                                verbose=0, return_dict=True)
        result.test_metrics = {k: float(v) for k, v in values.items()}
        write_json(project_dir / "best_metrics.json",
                   {"trial": best.trial_id, "rows": len(data.test), "test": result.test_metrics})
    return result
