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
settings, and the search goes on until the study holds `--trials` finished trials. The summary table and the best
run's export are printed at the end (and with `--json`, one JSON object).

Search space (`--search NAME=LOW:HIGH[:log]` or `NAME=A,B,C`; default: learning rate 1e-5..1e-3 log-uniform,
weight decay 0, 0.01 or 0.1, warm-up ratio 0 or 0.06).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.errors import ResumenError
from scripts.cli_support import main_guard

DEFAULT_SPACE = ["model.learning_rate=1e-5:1e-3:log", "model.weight_decay=0.0,0.01,0.1", "model.warmup_ratio=0.0,0.06"]
MONITORS = {"val/rougeL": "maximize", "val/loss": "minimize"}
STARTUP_TRIALS, WARMUP_EPOCHS = 2, 1  # the median pruner: trials that always finish; epochs never pruned


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, required=True, help="finished trials the study should hold")
    parser.add_argument("--storage", default="sqlite:///study.db", help="Optuna storage URL (default sqlite:///study.db)")
    parser.add_argument("--study-name", required=True, help="the study's name (also the trials' run names)")
    parser.add_argument("--search", action="append", help="NAME=LOW:HIGH[:log] or NAME=A,B,C (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.add_argument("--monitor", choices=sorted(MONITORS), default="val/rougeL",
                        help="what a trial is judged by, each epoch and at its best (default val/rougeL, maximised)")
    parser.add_argument("--no-pruning", action="store_true", help="run every trial to its last epoch")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args, fit_args = parser.parse_known_args(argv)
    if args.trials < 1:
        raise ResumenError(f"--trials must be at least 1 (got {args.trials}).")
    if not any(a == "--config" or a.startswith("--config=") for a in fit_args):
        raise ResumenError("give the training config the trials share: --config configs/demo.yaml (and any fit options).")
    if any(a.startswith("--trainer.logger.init_args.name") or a.startswith("--ckpt_path") for a in fit_args):
        raise ResumenError("tune.py names each trial's run and resumes it itself: drop --trainer.logger.init_args.name "
                           "and --ckpt_path.")
    if not all(c.isalnum() or c in "-_" for c in args.study_name):
        raise ResumenError(f"--study-name '{args.study_name}': letters, digits, - and _ only (it names run directories).")
    args.space = parse_space(args.search or DEFAULT_SPACE)
    return args, fit_args


def parse_space(items: list[str]) -> dict[str, dict[str, Any]]:
    """``NAME=LOW:HIGH[:log]`` (a float range) or ``NAME=A,B,C`` (choices), checked before any trial runs."""
    space = {}
    for item in items:
        name, separator, spec = item.partition("=")
        if not separator or not name.startswith(("model.", "data.", "trainer.")):
            raise ResumenError(f"--search {item!r}: expected NAME=LOW:HIGH[:log] or NAME=A,B,C with NAME a fit option "
                               "such as model.learning_rate.")
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
            raise ResumenError(f"--search {item!r}: LOW:HIGH needs two numbers, LOW below HIGH (and :log or nothing "
                               "after); A,B,C needs at least one value.") from None
    return space


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {name: (trial.suggest_float(name, spec["low"], spec["high"], log=spec["log"]) if "low" in spec
                   else trial.suggest_categorical(name, spec["choices"])) for name, spec in space.items()}


def trial_command(args: argparse.Namespace, fit_args: list[str], number: int, params: dict[str, Any], result: Path) -> list[str]:
    callback = {"class_path": "lightning_modules.optuna_trial.OptunaTrial",
                "init_args": {"storage": args.storage, "study_name": args.study_name, "trial_number": number,
                              "result_file": str(result), "monitor": args.monitor,
                              "mode": "max" if MONITORS[args.monitor] == "maximize" else "min",
                              "prune": not args.no_pruning, "startup_trials": STARTUP_TRIALS, "warmup_epochs": WARMUP_EPOCHS}}
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "fit", *fit_args,
               f"--trainer.logger.init_args.name={args.study_name}-trial{number}", "--ckpt_path=auto"]
    command += [f"--{name}={value}" for name, value in params.items()]
    command.append(f"--trainer.callbacks+={json.dumps(callback)}")  # reports each epoch (--no-pruning: never prunes)
    return command


def run_trial(command: list[str]) -> int:
    """The trial's fit in its own process group; a SIGTERM or Ctrl-C to the search is passed on, so the trial saves
    its last checkpoint (a rerun resumes it) before the search exits."""
    process = subprocess.Popen(command, start_new_session=True)

    def forward(signum: int, frame: Any) -> None:
        os.killpg(process.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return process.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import optuna
    from optuna.trial import TrialState

    args, fit_args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=args.study_name, storage=args.storage, direction=MONITORS[args.monitor],
                                load_if_exists=True, sampler=optuna.samplers.TPESampler(seed=args.seed))
    if study.direction.name.lower() != MONITORS[args.monitor]:
        raise ResumenError(f"the study '{args.study_name}' was started to {study.direction.name.lower()} its trials: use "
                           "the --monitor it was started with, or another --study-name.")
    # each trial's outcome, read right after it; a fixed path, since it is part of the trial's config and a resumed
    # trial must have the same config as the run it resumes (--ckpt_path auto)
    storage_id = hashlib.sha256(args.storage.encode()).hexdigest()[:10]
    results_dir = Path(tempfile.gettempdir()) / "resumen-tune" / f"{args.study_name}-{storage_id}"
    results_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    while True:
        trials = study.get_trials(deepcopy=False)
        if sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials) >= args.trials:
            break
        interrupted = [t for t in trials if t.state == TrialState.RUNNING]  # a killed search's trial: resume it
        if interrupted:
            frozen = interrupted[0]
            trial, params = optuna.trial.Trial(study, frozen._trial_id), dict(frozen.params)
            print(f"Trial {frozen.number}: resuming its run with {params}", file=sys.stderr)
        else:
            trial = study.ask()
            params = suggest(trial, args.space)
            print(f"Trial {trial.number}: {params}", file=sys.stderr)
        result_file = results_dir / f"trial{trial.number}.json"
        result_file.unlink(missing_ok=True)
        code = run_trial(trial_command(args, fit_args, trial.number, params, result_file))
        if code in (130, 143):  # the search was stopped: the trial stays RUNNING and resumes next time
            print(f"Stopped during trial {trial.number}: rerun the same command to continue.", file=sys.stderr)
            raise SystemExit(code)
        if code != 0 or not result_file.is_file():
            study.tell(trial, state=TrialState.FAIL)
            raise ResumenError(f"trial {trial.number} failed (exit {code}; its error is above): fix it and rerun the "
                               "same command, the study continues.")
        outcome = json.loads(result_file.read_text(encoding="utf-8"))
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
        rows.append({"trial": t.number, "state": t.state.name.lower(), **t.params,
                     args.monitor: t.value if t.value is not None else (max(values, key=lambda v: sign * v) if values else None),
                     "epochs": t.user_attrs.get("epochs"), "run": t.user_attrs.get("run")})
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(complete, key=lambda t: sign * t.value) if complete else None
    result = {"study": args.study_name, "storage": args.storage, "trials": rows, "seconds": round(seconds, 1),
              "pruned": sum(r["state"] == "pruned" for r in rows),
              "best": None if best is None else {"trial": best.number, args.monitor: best.value, "params": best.params,
                                                 "export": str(Path(best.user_attrs["run"]) / "export")}}
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
