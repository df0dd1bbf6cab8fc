"""Search training hyper-parameters with Optuna, each trial a normal `train.py fit` run.

    python scripts/tune.py --config configs/demo.yaml --trials 8 --storage sqlite:///study.db --study-name demo-lr
    python scripts/tune.py --config configs/mlsum_flan_t5_small.yaml --trainer.max_epochs=3 --trials 12 \\
        --storage sqlite:///mlsum.db --study-name mlsum --search model.learning_rate=1e-5:1e-3:log

Every option tune.py does not know (`--config`, `--trainer.*`, `--model.*`, `--data.*`, ...) is passed to each
trial's `train.py fit`, so a trial is exactly a run you could start by hand (DDP included). Trial N of study S is the
run `<save_dir>/S-trialN/version_0`, with its checkpoints, report and export. Each epoch's `val/rougeL` is reported
to the study; the median pruner stops trials that fall behind (they end like finished runs, with their best epoch
exported). The study lives in `--storage` (a SQLite file by default, or any Optuna storage URL), so rerunning the
same command after a kill continues: the interrupted trial resumes its run (`--ckpt_path auto`) with the same
settings, and the search goes on until the study holds `--trials` finished trials. Several searches may share one
study (on several machines, with a shared storage): each running trial carries its search's heartbeat, so a trial
is taken over only when its search is gone, and trial N's draws are seeded by `--seed` + N, whichever search runs
it. The summary table and the best run's export are printed at the end (and with `--json`, one JSON object).

Search space (`--search NAME=LOW:HIGH[:log]` or `NAME=A,B,C`; default: learning rate 1e-5..1e-3 log-uniform,
weight decay 0, 0.01 or 0.1, warm-up ratio 0 or 0.06).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any


from resumen.core.errors import ResumenError
from resumen.app.cli_support import main_guard

DEFAULT_SPACE = ["model.learning_rate=1e-5:1e-3:log", "model.weight_decay=0.0,0.01,0.1", "model.warmup_ratio=0.0,0.06"]
MONITORS = {"val/rougeL": "maximize", "val/loss": "minimize"}
STARTUP_TRIALS, WARMUP_EPOCHS = 2, 1  # the median pruner: trials that always finish; epochs never pruned
# A running trial's search beats every HEARTBEAT_SECONDS (a counter in the trial's user attributes); a trial whose
# count has not moved for GRACE_SECONDS belongs to a search that is gone. Counts, not clocks: machines sharing a study
# need not agree on the time.
HEARTBEAT_SECONDS, GRACE_SECONDS = 2.0, 6.0
HEARTBEAT, WORKER, RELEASED = "resumen_heartbeat", "resumen_worker", "resumen_released"


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should hold")
    parser.add_argument("--storage", default="sqlite:///study.db", help="Optuna storage URL (default sqlite:///study.db)")
    parser.add_argument("--study-name", required=True, help="the study's name (also the trials' run names)")
    parser.add_argument("--search", action="append", help="NAME=LOW:HIGH[:log] or NAME=A,B,C (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument(
        "--monitor",
        choices=sorted(MONITORS),
        default="val/rougeL",
        help="what a trial is judged by, each epoch and at its best (default val/rougeL, maximised)",
    )
    parser.add_argument("--no-pruning", action="store_true", help="run every trial to its last epoch")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args, fit_args = parser.parse_known_args(argv)
    if args.trials < 1:
        raise ResumenError(f"--trials must be at least 1 (got {args.trials}).")
    if not any(a == "--config" or a.startswith("--config=") for a in fit_args):
        raise ResumenError("give the training config the trials share: --config configs/demo.yaml (and any fit options).")
    if any(a.startswith("--trainer.logger.init_args.name") or a.startswith("--ckpt_path") for a in fit_args):
        raise ResumenError("tune.py names each trial's run and resumes it itself: drop --trainer.logger.init_args.name and --ckpt_path.")
    if not all(c.isalnum() or c in "-_" for c in args.study_name):
        raise ResumenError(f"--study-name '{args.study_name}': letters, digits, - and _ only (it names run directories).")
    args.space = parse_space(args.search or DEFAULT_SPACE)
    check_storage(args.storage)
    return args, fit_args


def check_storage(storage: str) -> None:
    """Each trial runs in a process of its own and reports to the study: an in-memory study cannot be reached from
    there, and a SQLite file the search cannot write fails every trial."""
    if storage.startswith("sqlite"):
        path = storage.split(":///", 1)[1] if ":///" in storage else ""
        if path in ("", ":memory:"):
            raise ResumenError(
                f"--storage {storage}: an in-memory study cannot be reached by the trials (each runs in a "
                "process of its own): use a file, e.g. --storage sqlite:///study.db."
            )
        file = Path(path)
        if not os.access(file.parent, os.W_OK) or (file.exists() and not os.access(file, os.W_OK)):
            raise ResumenError(
                f"--storage {storage}: the study's file (or its folder, where SQLite writes its journal) "
                "is read-only: copy it somewhere writable, or use another --storage."
            )


def parse_space(items: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME=LOW:HIGH[:log]`` (a float range) or ``NAME=A,B,C`` (choices), checked before any trial runs."""
    space = {}
    for item in items:
        name, separator, spec = item.partition("=")
        if not separator or not name.startswith(("model.", "data.", "trainer.")):
            raise ResumenError(f"--search {item!r}: expected NAME=LOW:HIGH[:log] or NAME=A,B,C with NAME a fit option such as model.learning_rate.")
        try:
            if ":" in spec:
                low, high, *log = spec.split(":")
                if log not in ([], ["log"]) or float(low) >= float(high):
                    raise ValueError
                space[name] = {"low": float(low), "high": float(high), "log": bool(log)}
            else:
                space[name] = {"choices": [_value(v) for v in spec.split(",") if v]}
                if not space[name]["choices"]:
                    raise ValueError
        except ValueError:
            raise ResumenError(
                f"--search {item!r}: LOW:HIGH needs two numbers, LOW below HIGH (and :log or nothing after); A,B,C needs at least one value."
            ) from None
    return space


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        name: (trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"]) if "low" in spec else trial.suggest_categorical(name, spec["choices"]))
        for name, spec in space.items()
    }


def trial_command(args: argparse.Namespace, fit_args: list[str], number: int, params: dict[str, Any]) -> list[str]:
    callback = {
        "class_path": "resumen.lightning_modules.optuna_trial.OptunaTrial",
        "init_args": {
            "storage": args.storage,
            "study_name": args.study_name,
            "trial_number": number,
            "monitor": args.monitor,
            "mode": "max" if MONITORS[args.monitor] == "maximize" else "min",
            "prune": not args.no_pruning,
            "startup_trials": STARTUP_TRIALS,
            "warmup_epochs": WARMUP_EPOCHS,
        },
    }
    command = [
        sys.executable,
        "-m",
        "resumen.app.train",
        "fit",
        *fit_args,
        f"--trainer.logger.init_args.name={args.study_name}-trial{number}",
        "--ckpt_path=auto",
    ]
    command += [f"--{name}={value}" for name, value in params.items()]
    command.append(f"--trainer.callbacks+={json.dumps(callback)}")  # reports each epoch (--no-pruning: never prunes)
    return command


def run_trial(command: list[str], trial: Any) -> int:
    """The trial's fit in its own process group, while this search beats the trial's heartbeat; a SIGTERM or Ctrl-C
    to the search is passed on, so the trial saves its last checkpoint (a rerun resumes it) before the search exits."""
    process = subprocess.Popen(command, start_new_session=True)
    stop = threading.Event()

    def beat() -> None:
        count = int(trial.user_attrs.get(HEARTBEAT) or 0)
        while not stop.wait(HEARTBEAT_SECONDS):
            count += 1
            try:
                trial.set_user_attr(HEARTBEAT, count)
            except Exception:  # noqa: BLE001 - a busy storage: the next beat tries again
                pass

    def forward(signum: int, frame: Any) -> None:
        os.killpg(process.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    beating = threading.Thread(target=beat, daemon=True)
    beating.start()
    try:
        return process.wait()
    finally:
        stop.set()
        beating.join()
        for s, handler in previous.items():
            signal.signal(s, handler)


def stored(study: Any, number: int) -> Any:
    """Trial ``number`` as the storage has it now (a Trial object caches what this process last wrote)."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def heartbeats(study: Any) -> dict[int, Any]:
    from optuna.trial import TrialState

    return {t.number: t.user_attrs.get(HEARTBEAT) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


def trial_to_resume(study: Any, worker: str) -> Any | None:
    """A running trial whose search is gone (stopped, released, or silent for GRACE_SECONDS), claimed for this
    search; None when every running trial belongs to a live search."""
    import optuna
    from optuna.trial import TrialState

    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running:
        return None
    gone = [t for t in running if t.user_attrs.get(RELEASED)]
    if not gone:
        before = heartbeats(study)
        time.sleep(GRACE_SECONDS)
        after = heartbeats(study)
        gone = [t for t in running if t.number in after and after[t.number] == before.get(t.number)]
    for frozen in gone:
        trial = optuna.trial.Trial(study, frozen._trial_id)
        trial.set_user_attr(WORKER, worker)  # claimed: the last search to write wins, the others see it and move on
        time.sleep(0.5)
        if stored(study, frozen.number).user_attrs.get(WORKER) == worker:
            trial.set_user_attr(RELEASED, False)
            return trial
    return None


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    from resumen.lightning_modules.optuna_trial import OUTCOME

    args, fit_args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=args.study_name,
        storage=args.storage,
        direction=MONITORS[args.monitor],
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=args.seed),
    )
    if study.direction.name.lower() != MONITORS[args.monitor]:
        raise ResumenError(
            f"the study '{args.study_name}' was started to {study.direction.name.lower()} its trials: use "
            "the --monitor it was started with, or another --study-name."
        )
    worker = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    start, waiting_for = time.monotonic(), None
    while True:
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
        if finished >= args.trials:
            break
        trial = trial_to_resume(study, worker)
        if trial is not None and not trial.params:  # its search space was never drawn: nothing to resume
            study.tell(trial, state=TrialState.FAIL)
            continue
        if trial is not None:
            params = dict(trial.params)
            print(f"Trial {trial.number}: resuming its run with {params}", file=sys.stderr)
        else:
            trials = study.get_trials(deepcopy=False)  # again: other searches moved on while the heartbeats were read
            finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
            running = [t.number for t in trials if t.state == TrialState.RUNNING]
            if finished + len(running) >= args.trials:  # the rest run in other searches: wait for them
                if waiting_for != running:
                    print(f"Waiting for trial(s) {running}, running in another search.", file=sys.stderr)
                    waiting_for = running
                time.sleep(HEARTBEAT_SECONDS)
                continue
            trial = study.ask()
            trial.set_user_attr(WORKER, worker)
            # trial N draws from --seed + N, whichever search runs it (two searches on one study never repeat a trial)
            study.sampler = optuna.samplers.TPESampler(seed=args.seed + trial.number)
            try:
                params = suggest(trial, args.space)
            except Exception as error:  # a search space that does not fit the study's earlier trials
                study.tell(trial, state=TrialState.FAIL)
                raise ResumenError(
                    f"--search does not fit the study '{args.study_name}' ({error}): search the space it was started with, or use another --study-name."
                ) from None
            print(f"Trial {trial.number}: {params}", file=sys.stderr)
        trial.set_user_attr(OUTCOME, None)
        code = run_trial(trial_command(args, fit_args, trial.number, params), trial)
        if code in (130, 143):  # the search was stopped: the trial stays RUNNING and resumes next time
            trial.set_user_attr(RELEASED, True)
            print(f"Stopped during trial {trial.number}: rerun the same command to continue.", file=sys.stderr)
            raise SystemExit(code)
        outcome = stored(study, trial.number).user_attrs.get(OUTCOME)
        if code != 0 or not outcome:
            study.tell(trial, state=TrialState.FAIL)
            raise ResumenError(f"trial {trial.number} failed (exit {code}; its error is above): fix it and rerun the same command, the study continues.")
        trial.set_user_attr("run", outcome["run"])
        trial.set_user_attr("epochs", outcome["epochs"])
        if outcome["pruned_at_epoch"] is not None:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, outcome["best"])
    return summarise(args, study, time.monotonic() - start)


def summarise(args: argparse.Namespace, study: Any, seconds: float) -> dict[str, Any]:
    from optuna.trial import TrialState

    sign = 1 if MONITORS[args.monitor] == "maximize" else -1
    trials = study.get_trials(deepcopy=False)
    rows = []
    for t in trials:
        values = list(t.intermediate_values.values())
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                **t.params,
                args.monitor: t.value if t.value is not None else (max(values, key=lambda v: sign * v) if values else None),
                "epochs": t.user_attrs.get("epochs"),
                "run": t.user_attrs.get("run"),
            }
        )
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: sign * t.value) if complete else None
    result = {
        "study": args.study_name,
        "storage": args.storage,
        "trials": rows,
        "seconds": round(seconds, 1),
        "pruned": sum(r["state"] == "pruned" for r in rows),
        "best": None
        if best is None
        else {"trial": best.number, args.monitor: best.value, "params": best.params, "export": str(Path(best.user_attrs["run"]) / "export")},
    }
    if args.json:
        print(json.dumps(result))
        return result
    names = list(args.space)
    print("| trial | state | " + " | ".join(names) + f" | {args.monitor} | epochs | run |")
    print("|---" * (len(names) + 5) + "|")
    for row in rows:
        cells = [_cell(row.get(name)) for name in names]
        print(f"| {row['trial']} | {row['state']} | " + " | ".join(cells) + f" | {_cell(row[args.monitor])} | {row['epochs']} | {row['run']} |")
    if best is not None:
        print(f"Best: trial {best.number}, {args.monitor} {best.value:.2f} with {best.params}; its export: {result['best']['export']}")
    return result


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 0.01 else f"{value:.2f}"
    return "" if value is None else str(value)


def cli() -> None:
    main_guard(main)


if __name__ == "__main__":
    cli()
