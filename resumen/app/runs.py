"""List the runs under runs/ with what they reached: status, epochs, best validation ROUGE-L, test ROUGE-L, export.

    python scripts/runs.py                 # every run under runs/, by name and version number
    python scripts/runs.py --root runs/demo --json

Status: running (a process holds the run), finished, preempted (stopped by a signal: --ckpt_path last resumes it),
failed (with the error), killed (it was running and its process is gone), or unknown (a run older than the status
file). The best validation ROUGE-L is the epoch the best checkpoint came from (ties to the lower loss, as training
chooses); the test ROUGE-L comes with its 95% bootstrap interval once `train.py test` ran on the run, and reads
"test outdated" when the checkpoint it measured is gone or no longer the best (a resumed fit chose another).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


from resumen.app.cli_support import main_guard
from resumen.core.runs import epoch_number


def run_roots(root: Path) -> list[Path]:
    """``root`` itself when it holds version_N directories, else each of its subdirectories that does."""
    if any(child.name.startswith("version_") for child in root.iterdir() if child.is_dir()):
        return [root]
    return sorted(child for child in root.iterdir() if child.is_dir() and any(g.name.startswith("version_") for g in child.iterdir()))


def describe(run: Any) -> dict[str, Any]:
    """One run's row (read from its small files and the checkpoint's metadata; no weights are loaded)."""
    from resumen.core.checkpoint_file import read_checkpoint_metadata

    status = run.status()
    row: dict[str, Any] = {
        "run": f"{run.directory.parent.name}/{run.name}",
        "version": run.version,
        "status": status["status"],
        "directory": str(run.directory),
    }
    if status.get("error"):
        row["error"] = status["error"]
    history: dict[Any, dict[str, float]] = {}
    if run.last.is_file():
        try:
            checkpoint = read_checkpoint_metadata(run.last)
            progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
            # "processed": an epoch-end save happens before Lightning counts the epoch "completed"
            row["epochs"] = int(progress.get("processed", progress.get("completed", 0)))
            row["steps"] = int(checkpoint.get("global_step", 0))
            history = checkpoint.get("val_history", {}) or {}
        except Exception as error:  # noqa: BLE001 - a damaged checkpoint is one cell, not a failed listing
            row["checkpoint_error"] = str(error).splitlines()[0][:120]
    report = _json(run.report)
    if report.get("epochs") is not None:
        row["epochs"] = int(report["epochs"])  # the finished fit's own count
    if report.get("best_epoch") is not None and report.get("monitor") == "val/rougeL":
        shown = int(report["best_epoch"]) + (0 if report.get("epochs_from") == 1 else 1)  # 0.1's reports counted from 0
        row["best_val_rougeL"], row["best_epoch"] = round(float(report["best_value"]), 2), shown
    elif history:
        best = max(sorted(history), key=lambda e: (history[e].get("val/rougeL", float("-inf")), -history[e].get("val/loss", float("inf"))))
        row["best_val_rougeL"], row["best_epoch"] = round(history[best].get("val/rougeL", float("nan")), 2), epoch_number(int(best))
    if status["status"] == "unknown" and report:
        row["status"] = "interrupted" if report.get("interrupted") else "finished"
    tested = _json(run.test_results)
    test = tested.get("rouge", {}).get("rougeL")
    if test:
        row["test_rougeL"], row["test_rougeL_low"], row["test_rougeL_high"] = (float(test[k]) for k in ("mean", "low", "high"))
        # every metric of the test (--json): the table keeps to a chosen few
        from resumen.core.summary_metrics import METRICS

        row["test_metrics"] = {m.key: tested[m.group][m.key]["mean"] for m in METRICS if isinstance(tested.get(m.group), dict) and m.key in tested[m.group]}
        lead = (tested.get("versus_baselines") or {}).get("lead-1", {}).get("rougeL")
        if isinstance(lead, dict) and "mean" in lead:  # the model's test ROUGE-L minus copying the opening sentence
            row["test_vs_lead1"] = float(lead["mean"])
        outdated = test_outdated(run, str(tested.get("checkpoint") or ""), str(report.get("best_checkpoint") or ""))
        row["test_checkpoint"] = Path(str(tested.get("checkpoint") or "")).name
        if outdated:
            row["test_outdated"] = outdated
    if (run.export / "config.json").is_file():
        row["export"] = str(run.export)
    return row


def test_outdated(run: Any, tested: str, best: str) -> str | None:
    """Why a run's test result no longer describes it, or None: the checkpoint it measured is gone, or a later fit
    chose another best checkpoint (the test belongs to the checkpoint it measured, not to the run)."""
    name = Path(tested).name
    if not name or name in ("last.ckpt",):
        return None
    folder = run.directory / "checkpoints"
    # gone: not where the test found it, and not in the run's checkpoint folder (a run listed without that folder,
    # or with checkpoints kept elsewhere, cannot tell)
    if folder.is_dir() and not Path(tested).exists() and not (folder / name).exists():
        return f"the tested checkpoint {name} is gone"
    if best and name.startswith("best-") and Path(best).name != name:
        return f"tested {name}; the best is now {Path(best).name}"
    return None


def _json(path: Path) -> dict[str, Any]:
    """A run's JSON record, ``{}`` when it has none; a record that is not an object names its file (ResumenError)."""
    from resumen.core.errors import ResumenError
    from resumen.core.files import read_small_json

    if not (path.exists() or path.is_symlink()):
        return {}
    record = read_small_json(path)
    if not isinstance(record, dict):
        raise ResumenError(f"'{path}' is not a JSON object")
    return record


def describe_or_say_why(run: Any) -> dict[str, Any]:
    """``describe``, or, for a run whose files cannot be read, one row that names the file: one bad run is one line
    in the listing, never the end of it."""
    from resumen.core.errors import first_line

    try:
        return describe(run)
    except Exception as error:  # noqa: BLE001 - hand-edited or damaged records: whatever they make the code raise
        return {
            "run": f"{run.directory.parent.name}/{run.name}",
            "version": run.version,
            "status": "unreadable",
            "directory": str(run.directory),
            "error": first_line(error, 300),
        }


def printable(value: Any) -> str:
    """A cell as text without control characters (an escape sequence in a hand-edited status would drive the
    terminal): each is shown as its escape."""
    text = str(value)
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def table(rows: list[dict[str, Any]]) -> str:
    header = f"{'run':<26} {'status':<11} {'epochs':>6}  {'best val ROUGE-L':<17} {'test ROUGE-L [95%]':<22} {'vs lead-1':>9}  export"
    lines = [header, "-" * len(header)]
    for row in rows:
        best = f"{row['best_val_rougeL']:.2f} (epoch {row['best_epoch']})" if "best_val_rougeL" in row else "-"
        test = f"{row['test_rougeL']:.2f} [{row['test_rougeL_low']:.2f}, {row['test_rougeL_high']:.2f}]" if "test_rougeL" in row else "-"
        versus = f"{row['test_vs_lead1']:+.2f}" if "test_vs_lead1" in row else "-"
        if row.get("test_outdated"):  # a score of a checkpoint the run no longer has as its best: not shown as the run's
            test, versus = "test outdated", "-"
        cells = [printable(row["run"]), printable(row["status"]), printable(row.get("epochs", "-")), best, test, versus, printable(row.get("export", "-"))]
        lines.append(f"{cells[0]:<26} {cells[1]:<11} {cells[2]:>6}  {cells[3]:<17} {cells[4]:<22} {cells[5]:>9}  {cells[6]}")
        if row.get("error"):
            lines.append(f"{'':<26} {printable(row['error'])}")
        if row.get("test_outdated"):
            lines.append(f"{'':<26} test outdated: {printable(row['test_outdated'])} (run train.py test again)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="runs", help="a logger's save_dir (runs) or one run name's directory (runs/demo)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks")
    args = parser.parse_args(argv)
    from resumen.core.errors import ResumenError
    from resumen.core.runs import list_runs

    root = Path(args.root)
    if not root.is_dir():
        raise ResumenError(f"'{root}' is not a directory: there are no runs yet (make demo, or train.py fit, makes one).")
    rows = [describe_or_say_why(run) for each in run_roots(root) for run in list_runs(each)]
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else (table(rows) if rows else f"No runs under {root}."))
    return rows


def cli() -> None:
    """Console entry point (resumen-runs): one-line errors, exit code 2."""
    main_guard(main)


if __name__ == "__main__":
    main_guard(main)
