"""Run folders for the report tests, written with record.py as a launcher would."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from trainrun.runs import record

# a 1x1 red PNG
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def write_run(
    runs_dir: Path,
    *,
    flags: dict | None = None,
    declared: dict | None = None,
    steps: int = 20,
    loss_scale: float = 1.0,
    evaluation: dict | None = None,
    status: str = "completed",
    output: str = "epoch 1\nepoch 2\ndone\n",
    sources: dict[str, str] | None = None,
    plots: bool = True,
    pid: int | None = None,
    error: str | None = None,
    script: str = "train.py",
) -> Path:
    run_dir = record.new_run_dir(runs_dir)
    run = {
        "id": run_dir.name,
        "script": script,
        "command": ["python", script, "--dropout", "0.2"],
        "status": status,
        "start": record.utc_now(),
        "end": None if status == "running" else record.utc_now(),
        "duration": None if status == "running" else 12.5,
        "exit_code": None if status == "running" else (0 if status == "completed" else 1),
        "error": error,
        "traceback": "Traceback (most recent call last):\n  ...\nValueError: boom"
        if error
        else None,
        "host": record.HOST,
        "pid": pid if pid is not None else os.getpid(),
        "pid_start": None,
        "python": "3.11.7",
        "packages": {"numpy": "2.0"},
        "git": {"commit": "abc123", "dirty": False},
        "tags": {},
    }
    record.write_json(run_dir / record.RUN_FILE, run)
    flags = flags if flags is not None else {"dropout": 0.2, "units": 64}
    record.write_json(
        run_dir / record.FLAGS_FILE,
        {
            "values": flags,
            "declared": declared
            if declared is not None
            else {k: {"type": type(v).__name__, "default": v} for k, v in flags.items()},
        },
    )
    if steps:
        record.append_jsonl(
            run_dir / record.METRICS_FILE,
            (
                {
                    "step": i,
                    "time": 1.0 + i,
                    "loss": loss_scale / (i + 1),
                    "val_loss": loss_scale * 1.2 / (i + 1),
                    "accuracy": i / steps,
                }
                for i in range(steps)
            ),
        )
    if evaluation is not None:
        record.write_json(run_dir / record.EVALUATION_FILE, evaluation)
    (run_dir / record.OUTPUT_FILE).write_text(output, encoding="utf-8")
    for name, text in (
        sources if sources is not None else {"train.py": "import trainrun\nprint('hi')\n"}
    ).items():
        path = run_dir / record.SOURCE_DIR / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    if plots:
        (run_dir / record.PLOTS_DIR / "history.png").write_bytes(PNG)
    return run_dir


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def make_run(runs_dir: Path):
    def make(**kw) -> Path:
        return write_run(runs_dir, **kw)

    return make
