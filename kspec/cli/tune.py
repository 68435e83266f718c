"""``kspec tune SPEC``: search the spaces written in a spec (KerasTuner)."""

from __future__ import annotations

import sys

from kspec.cli.common import add_set_option, quiet_tensorflow


def add_parser(sub) -> None:
    p = sub.add_parser(
        "tune", help="search the spaces in a spec; writes the best resolved spec",
        description="Run a KerasTuner search (random, grid, bayesian, hyperband: the spec's "
        "search: section) over every value written as a search space ({$choice: [...]}, "
        "{$int: ...}, {$float: ...}, {$bool: {}}). Writes PROJECT/best_spec.yaml (train it "
        "with `kspec fit`), trials.csv, objective.png and best_model.keras. Distributed: one "
        "`--chief` and any number of `--worker ID` processes with the same spec and --oracle; "
        "or --devices N to start a chief and N workers pinned to this machine's devices.")
    p.add_argument("spec", metavar="SPEC")
    add_set_option(p)
    p.add_argument("--out", metavar="DIR",
                   help="folder of search projects (default: search.directory, 'tuning')")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search (refused if the spec or its spaces "
                   "changed)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an existing project of the same name and start again")
    p.add_argument("--max-trials", type=int, metavar="N", help="override search.max_trials")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--devices", type=int, metavar="N",
                      help="run trials on N devices of this machine: a chief here and one "
                      "worker process per GPU (or per share of the CPU cores), each pinned "
                      "to its device")
    role.add_argument("--chief", action="store_true",
                      help="hold the oracle for workers (KERASTUNER_TUNER_ID=chief)")
    role.add_argument("--worker", metavar="ID",
                      help="run trials for the chief under this id, e.g. tuner1")
    p.add_argument("--oracle", metavar="HOST:PORT",
                   help="the chief's address (default: search.distributed.oracle, "
                   "127.0.0.1:8000)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="chief: serve until N workers have connected and finished")
    p.add_argument("--connect-timeout", type=float, metavar="S",
                   help="seconds to wait for the chief (worker) or the first worker (chief)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="chief: give up serving after S seconds")
    p.add_argument("--quiet", action="store_true", help="no per-trial report")
    p.set_defaults(run=run)


def run(args) -> int:
    from kspec.search.devices import pin_from_env

    pin_from_env()  # a worker of `--devices`: its cores, before TensorFlow starts
    quiet_tensorflow()
    from kspec.search.distributed import TuneError
    from kspec.search.run import tune
    from kspec.spec.loader import parse_overrides

    overrides = parse_overrides(list(args.overrides))
    for key, value in (("max_trials", args.max_trials), ("overwrite", args.overwrite or None),
                       ("distributed.connect_timeout", args.connect_timeout),
                       ("distributed.timeout", args.timeout)):
        if value is not None:
            overrides[f"search.{key}"] = value
    role = "chief" if args.chief else "worker" if args.worker else None
    try:
        result = tune(args.spec, out=args.out, resume=args.resume, overrides=overrides,
                      role=role, tuner_id=args.worker, oracle=args.oracle,
                      workers=args.workers, verbose=0 if args.quiet else 1,
                      devices=args.devices)
    except TuneError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    if result.role == "worker":
        print(f"worker {args.worker or ''} finished: ran {len(result.trials)} trial(s) "
              f"in {result.project_dir}")
        return 0
    print(result.summary())
    return 0
