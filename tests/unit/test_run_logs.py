"""scripts/run.sh keeps the logs that explain a crash: each start moves the last run's
.run/logs/*.log into .run/logs/previous/<when it last wrote>/ (scripts/lib.sh
keep_previous_logs), keeping the last five runs."""

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def keep_previous_logs(logs, runs):
    subprocess.run(
        ["bash", "-c", f'source scripts/lib.sh && keep_previous_logs "$0" {runs}', str(logs)],
        cwd=ROOT,
        check=True,
        timeout=30,
    )


def a_run(logs, ended_at, crash_line):
    """The logs a run leaves: its services' and a store's, last written at `ended_at` (epoch s)."""
    logs.mkdir(parents=True, exist_ok=True)
    for name in ("intake.log", "console.log", "store-intake.log"):
        (logs / name).write_text(f"{crash_line} in {name}\n")
        os.utime(logs / name, (ended_at, ended_at))


def test_a_start_sets_the_last_runs_logs_aside_under_when_it_last_wrote(tmp_path):
    logs = tmp_path / "logs"
    a_run(logs, 1_795_000_000, "intake crashed")  # 2026-11-18T11:06:40Z
    keep_previous_logs(logs, 5)
    kept = logs / "previous" / "20261118T110640Z"
    assert sorted(p.name for p in kept.iterdir()) == ["console.log", "intake.log", "store-intake.log"]
    assert (kept / "intake.log").read_text() == "intake crashed in intake.log\n"
    assert not list(logs.glob("*.log"))  # the new run starts with empty logs


def test_only_the_last_runs_are_kept_and_a_start_without_logs_changes_nothing(tmp_path):
    logs = tmp_path / "logs"
    keep_previous_logs(logs, 3)  # the very first start: nothing to keep, no error
    for run in range(5):
        a_run(logs, 1_795_000_000 + run * 3600, f"run {run}")
        keep_previous_logs(logs, 3)
    kept = sorted(p.name for p in (logs / "previous").iterdir())
    assert kept == ["20261118T130640Z", "20261118T140640Z", "20261118T150640Z"]
    assert (logs / "previous" / kept[-1] / "intake.log").read_text() == "run 4 in intake.log\n"


def test_two_runs_that_ended_in_the_same_second_are_both_kept(tmp_path):
    logs = tmp_path / "logs"
    for run in range(2):
        a_run(logs, 1_795_000_000, f"run {run}")
        keep_previous_logs(logs, 5)
    kept = sorted((logs / "previous").iterdir())
    assert [(p / "intake.log").read_text() for p in kept] == ["run 0 in intake.log\n", "run 1 in intake.log\n"]


def test_pruning_drops_the_oldest_run_when_two_ended_in_the_same_second(tmp_path):
    logs = tmp_path / "logs"
    for run, ended_at in enumerate((1_795_000_000, 1_795_000_000, 1_795_003_600)):
        a_run(logs, ended_at, f"run {run}")
        keep_previous_logs(logs, 2)
    kept = sorted((logs / "previous").iterdir())
    assert [(p / "intake.log").read_text() for p in kept] == ["run 1 in intake.log\n", "run 2 in intake.log\n"]
