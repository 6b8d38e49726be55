"""Hyperparameter tuning: many ordinary training runs over a grid of flags.

``tuning_run`` is tfruns' tuning_run without its limits: trials run in
parallel (``workers=N``) or on a Ray cluster (``backend="ray"``); a failing
trial does not stop the others; Ctrl-C stops cleanly and marks the trials it
cut short as interrupted; running the same tuning again skips the trials
already completed. ``optuna_search`` proposes trials adaptively instead.

Every trial is a run made by :func:`trainrun.runs.launch.training_run`, tagged
``tuning_id`` and ``trial``, so ``ls_runs`` and the reports see it::

    from trainrun import tuning_run
    runs = tuning_run("train.py", flags={"dropout": [0.1, 0.2], "layer1": [128, 256]},
                      workers=2, metric="eval_accuracy")
    runs[["trial", "status", "flag_dropout", "flag_layer1", "eval_accuracy"]]
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trainrun.exceptions import (
    MissingExtraError,
    ScriptNotFoundError,
    TrainrunError,
    TuningError,
    UsageError,
)
from trainrun.runs import record
from trainrun.runs.tuning._executors import (
    LocalExecutor,
    Outcome,
    Progress,
    RayExecutor,
    TuningInterrupted,
    find_open_runs,
    mark_interrupted,
    ray_options,
    sanitize,
)
from trainrun.runs.tuning._trials import (
    Trial,
    build_trials,
    fixed_flags,
    flags_match,
    tuning_id_for,
)

if TYPE_CHECKING:
    import pandas

__all__ = ["tuning_run", "optuna_search"]

#: confirm=None asks (on a terminal) before starting more trials than this
CONFIRM_ABOVE = 10
BACKENDS = ("local", "ray")
INTERRUPTED_NOTE = "Interrupted: the tuning was stopped (Ctrl-C) while this trial ran."


# ------------------------------------------------------------------ checks


def _check_common(script: Any, workers: Any, backend: Any, mode: Any, metric: Any) -> Path:
    if not isinstance(script, (str, os.PathLike)):
        raise UsageError(f"'script' must be a path to a Python script. Received: script={script!r}")
    path = Path(script)
    if not path.is_file():
        raise ScriptNotFoundError(
            f"The training script {str(path)!r} does not exist; pass the path of a Python "
            f"script (relative to {os.getcwd()} or absolute). Received: script={script!r}"
        )
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise UsageError(
            f"'workers' must be a positive integer (trials run at once). Received: workers={workers!r}"
        )
    if backend not in BACKENDS:
        raise UsageError(
            f"Could not interpret backend identifier: {backend!r}. Valid backends: "
            f"{', '.join(map(repr, BACKENDS))}."
        )
    if mode not in ("max", "min"):
        raise UsageError(f"'mode' must be 'max' or 'min'. Received: mode={mode!r}")
    if metric is not None and (not isinstance(metric, str) or not metric):
        raise UsageError(
            "'metric' must be a column name such as 'eval_accuracy' or 'metric_loss'. "
            f"Received: metric={metric!r}"
        )
    return path


def _runs_path(runs_dir: str | os.PathLike[str]) -> Path:
    """The runs folder; a shared store's URL (``s3://...``) stays as it is (store/_sync.py)."""
    if isinstance(runs_dir, str) and runs_dir.startswith("s3://"):
        return runs_dir  # type: ignore[return-value]  # passed on as a string, never opened
    return Path(runs_dir).resolve()


def _check_run_args(
    runs_dir: Any,
    backend: str,
    address: Any,
    resources_per_trial: Any,
    confirm: Any,
    echo: Any,
    progress: Any,
) -> None:
    """The arguments left after _check_common, all checked before the runs folder is touched
    (a mistake must not create or index a runs folder, least of all the current directory's)."""
    if not isinstance(runs_dir, (str, os.PathLike)) or not os.fspath(runs_dir):
        raise UsageError(f"'runs_dir' must be a folder path. Received: runs_dir={runs_dir!r}")
    if Path(runs_dir).exists() and not Path(runs_dir).is_dir():
        raise UsageError(
            f"'runs_dir' must be a folder, but {os.fspath(runs_dir)!r} is a file. "
            f"Received: runs_dir={runs_dir!r}"
        )
    if address is not None and (not isinstance(address, str) or backend != "ray"):
        raise UsageError(
            "'address' is a Ray cluster address such as 'ray://head:10001', used with "
            f"backend='ray'. Received: address={address!r}, backend={backend!r}"
        )
    if resources_per_trial is not None:
        if not isinstance(resources_per_trial, Mapping):
            raise UsageError(
                "'resources_per_trial' must be a mapping such as {'cpu': 2, 'gpu': 0.5}. "
                f"Received: resources_per_trial={resources_per_trial!r}"
            )
        ray_options(resources_per_trial)  # each value a number >= 0
    for name, value, allowed in (
        ("confirm", confirm, (True, False, None)),
        ("echo", echo, (True, False)),
        ("progress", progress, (True, False)),
    ):
        if not any(value is a for a in allowed):
            shown = " or ".join(map(str, allowed))
            raise UsageError(f"'{name}' must be {shown}. Received: {name}={value!r}")
    if backend == "ray":
        _import_ray()  # MissingExtraError naming trainrun[ray], before anything starts


def _confirm(n: int, script: Path, confirm: bool | None) -> None:
    if confirm is False:
        return
    if confirm is None:
        from trainrun._interactive import can_prompt

        if not (can_prompt() and n > CONFIRM_ABOVE):
            return
    try:
        answer = input(f"Start a tuning of {n} trials of {script}? [Y/n] ")
    except EOFError:
        answer = "n"
    if answer.strip().lower() not in ("", "y", "yes"):
        raise TuningError(
            f"Tuning cancelled at the confirmation prompt ({n} trials). "
            "Pass confirm=False (or --yes) to start without asking."
        )


# ------------------------------------------------------------------ the runs of a tuning


class _Said:
    """Lines to print once the progress display exists."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def say(self, line: str) -> None:
        self.lines.append(line)


def _check_resume(resume: Any) -> None:
    if resume not in (True, False, "any"):
        raise UsageError(
            "'resume' must be True (skip trials completed with this version of the script), "
            f"False (run every trial) or 'any' (reuse them even after an edit). Received: resume={resume!r}"
        )


def _ls_runs(runs_dir: str | os.PathLike[str]) -> pandas.DataFrame:
    from trainrun.runs.store import ls_runs

    return ls_runs(runs_dir=str(runs_dir))


def _tuning_rows(runs_dir: Path, tuning_id: str) -> pandas.DataFrame:
    """ls_runs' rows of one tuning, oldest first."""
    df = _ls_runs(runs_dir)
    if df.empty or "tag_tuning_id" not in df.columns:
        return df.iloc[0:0]
    rows = df[df["tag_tuning_id"] == tuning_id]
    if "start" in rows.columns:
        rows = rows.sort_values("start", kind="stable")
    return rows


def _folder(run_dir: str) -> Path:
    """A run's folder; a run of a shared store (its s3:// URL) as this machine's copy."""
    if not run_dir.startswith("s3://"):
        return Path(run_dir)
    from trainrun.runs.store import get_run_dir

    try:
        return get_run_dir(run_dir, run_dir.rsplit("/", 1)[0])
    except (TrainrunError, OSError):
        return Path(run_dir)  # gone meanwhile: read as no record


def _recorded_flags(run_dir: str) -> dict[str, Any]:
    try:
        flags = record.read_json(_folder(run_dir) / record.FLAGS_FILE, default={})
    except record.RunRecordError:
        return {}
    values = flags.get("values") if isinstance(flags, dict) else None
    return values if isinstance(values, dict) else {}


def _script_digest(run_dir: str) -> str | None:
    try:
        run = record.read_json(_folder(run_dir) / record.RUN_FILE, default={})
    except record.RunRecordError:
        return None
    digest = run.get("script_sha256") if isinstance(run, dict) else None
    return digest if isinstance(digest, str) else None


def _current_digest(script: Path) -> str | None:
    from trainrun.runs.launch._declared import script_digest

    try:
        return script_digest(script.read_bytes())
    except OSError:
        return None


def _same_script(rows: pandas.DataFrame, digest: str | None) -> tuple[pandas.DataFrame, int]:
    """The rows recorded with this content of the script, and how many were left out.

    A run recorded before trainrun kept the script's digest counts as the same script.
    """
    if digest is None or rows.empty:
        return rows, 0
    keep = [_script_digest(str(d)) in (None, digest) for d in rows["run_dir"].tolist()]
    kept = rows[keep]
    return kept, len(rows) - len(kept)


def check_trial_flags(script: Path, flag_sets: Sequence[Mapping[str, Any]]) -> None:
    """Check every trial's flags against the script's declarations before any trial runs.

    Raises FlagError for the first undeclared, mistyped or out-of-choices value
    (the same check ``training_run`` makes, done once for the whole tuning).
    """
    wanted = [dict(f) for f in flag_sets if f]
    if not wanted:
        return
    from trainrun.runs.launch._declared import check_overrides, script_flags

    source = script.read_bytes()
    declaration = script_flags(script.resolve(), Path.cwd(), dict(os.environ), source)
    for flags in wanted:
        check_overrides(declaration, flags, str(script))


def _completed_before(
    runs_dir: Path,
    tuning_id: str,
    trials: Sequence[Trial],
    digest: str | None = None,
    progress: Any = None,
) -> dict[int, str]:
    """Trials an earlier run of this tuning completed, or is running now: number -> run_dir.

    A trial matches a run of the same tuning whose recorded flags hold the trial's
    values; each run is claimed once, completed runs first, then runs tagged with the
    same trial number. A run listed as running has a live launcher (ls_runs reports a
    dead one as killed): another process is running that trial, so it is not started
    twice; killed, failed and interrupted runs are not claimed and run again.
    """
    rows = _tuning_rows(runs_dir, tuning_id)
    if rows.empty:
        return {}
    rows = rows[rows["status"].isin(["completed", "running"])]
    rows, edited = _same_script(rows, digest)
    if edited and progress is not None:
        progress.say(
            f"The script changed since {edited} earlier trial(s) of this tuning ran: "
            "they are not reused (pass resume='any' to reuse them)."
        )
    candidates = [
        (str(r.get("tag_trial", "")), str(r["run_dir"]), r["status"] == "completed")
        for r in rows.to_dict(orient="records")
    ]
    flags_of = {run_dir: _recorded_flags(run_dir) for _, run_dir, _ in candidates}
    claimed: dict[int, str] = {}
    taken: set[str] = set()
    for trial in trials:
        ordered = sorted(candidates, key=lambda c: (not c[2], c[0] != str(trial.number)))
        for _, run_dir, _ in ordered:
            if run_dir not in taken and flags_match(trial.flags, flags_of[run_dir]):
                claimed[trial.number] = run_dir
                taken.add(run_dir)
                break
    return claimed


def _running_now(run_of: Mapping[int, str]) -> int:
    """How many of the claimed runs are still running (in another process)."""
    count = 0
    for run_dir in run_of.values():
        try:
            run = record.read_json(_folder(run_dir) / record.RUN_FILE, default={})
        except record.RunRecordError:
            continue
        if isinstance(run, dict) and record.resolve_status(run) == "running":
            count += 1
    return count


def _frame(
    runs_dir: Path,
    tuning_id: str,
    trials: Sequence[Trial],
    run_of: Mapping[int, str],
    outcomes: Mapping[int, Outcome],
) -> pandas.DataFrame:
    """The tuning's runs as ls_runs rows, one per trial (its latest run), plus trial columns."""
    import pandas as pd

    rows = _tuning_rows(runs_dir, tuning_id)
    records: list[dict[str, Any]] = rows.to_dict(orient="records")  # type: ignore[assignment]
    by_dir = {str(Path(r["run_dir"]).resolve()): r for r in records}
    by_trial: dict[str, dict[str, Any]] = {}
    for r in records:
        by_trial[str(r.get("tag_trial"))] = r  # oldest first: the latest wins
    out = []
    for trial in trials:
        run_dir = run_of.get(trial.number)
        row = by_dir.get(str(Path(run_dir).resolve())) if run_dir else None
        if row is None:
            row = by_trial.get(str(trial.number))
        outcome = outcomes.get(trial.number)
        if row is None:
            if outcome is None:
                continue  # never started (the tuning was interrupted first)
            row = {"run_dir": None, "status": outcome.status}
        row = dict(row)
        row["trial"] = trial.number
        for name, value in trial.flags.items():
            key = f"flag_{name.replace('-', '_')}"
            if row.get(key) is None or (isinstance(row.get(key), float) and row[key] != row[key]):
                row[key] = value
        message = ""
        if outcome is not None:
            message = outcome.message
        elif row.get("status") != "completed" and row.get("run_dir"):
            message = _recorded_error(row["run_dir"])
        row["error"] = message or None
        out.append(row)
    df = pd.DataFrame(out)
    if df.empty:
        return pd.DataFrame(columns=["trial", "run_dir", "status", "error"])
    first = ["trial", "run_dir", "status"]
    df = df[[*first, *[c for c in df.columns if c not in first]]]
    return df.reset_index(drop=True)


def _recorded_error(run_dir: str) -> str:
    try:
        run = record.read_json(_folder(run_dir) / record.RUN_FILE, default={})
    except record.RunRecordError as exc:
        return str(exc)
    err = str((run or {}).get("error") or "").strip()
    return err.splitlines()[-1] if err else ""


def _summary(
    df: pandas.DataFrame, metric: str | None, mode: str, tuning_id: str, varied: Sequence[str]
) -> str:
    """The closing report: a table of trials, the failures with their errors, the best.

    The table shows the flags the tuning sets (``varied``), not every flag of the script.
    """
    if df.empty:
        return f"Tuning {tuning_id}: no trials ran."
    flag_cols = [c for c in (f"flag_{n.replace('-', '_')}" for n in varied) if c in df.columns]
    cols = ["trial", "status", *flag_cols]
    if "duration" in df.columns:
        cols.insert(2, "duration")
    column = _metric_column(df, metric)
    if column:
        cols.append(column)
    table = df[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}")
    counts = df["status"].value_counts()
    parts = [f"{int(counts[s])} {s}" for s in counts.index]
    lines = [f"Tuning {tuning_id}: " + ", ".join(parts), table]
    bad = df[df["status"] != "completed"]
    if not bad.empty:
        lines.append("Trials that did not complete:")
        for r in bad.to_dict(orient="records"):
            where = f" ({r['run_dir']})" if r.get("run_dir") else ""
            error = r.get("error") or (
                "still running in another process" if r["status"] == "running" else "?"
            )
            lines.append(f"  trial {r['trial']}: {r['status']}{where}: {error}")
    best = df.attrs.get("best")
    if best:
        lines.append(
            f"Best {metric} = {best['value']:.6g} ({'max' if mode == 'max' else 'min'}imised) "
            f"in trial {best['trial']}: {best['run_dir']}"
        )
    elif metric:
        lines.append(f"No completed trial recorded the metric {metric!r}.")
    return "\n".join(lines)


def _metric_column(df: pandas.DataFrame, metric: str | None) -> str | None:
    """The column of ``metric``: itself, or eval_<name> / metric_<name> for a bare name."""
    if not metric:
        return None
    for name in (metric, f"eval_{sanitize(metric)}", f"metric_{sanitize(metric)}"):
        if name in df.columns:
            return name
    return None


def _best(df: pandas.DataFrame, metric: str | None, mode: str) -> dict[str, Any] | None:
    metric = _metric_column(df, metric)
    if metric is None or df.empty:
        return None
    done = df[(df["status"] == "completed")]
    values = done[metric]
    values = values[values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))]
    values = values.astype(float).dropna()
    if values.empty:
        return None
    idx = values.idxmax() if mode == "max" else values.idxmin()
    row = df.loc[idx]
    return {"trial": int(row["trial"]), "run_dir": row["run_dir"], "value": float(values[idx])}


# ------------------------------------------------------------------ the engine


class _ListSource:
    """A fixed list of trials, handed out in order."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        self._left = list(trials)

    def next_trial(self) -> Trial | None:
        return self._left.pop(0) if self._left else None

    def trial_done(self, outcome: Outcome) -> None:
        pass


def _launcher(script: Path, runs_dir: Path, tuning_id: str, echo: bool):
    from trainrun.runs.launch import training_run

    def launch(trial: Trial) -> dict[str, Any]:
        return training_run(
            str(script),
            flags=dict(trial.flags),
            runs_dir=str(runs_dir),
            tags=_tags(tuning_id, trial),
            echo=echo,
            view=False,  # one page per trial would flood an interactive session
        )

    return launch


def _tags(tuning_id: str, trial: Trial) -> dict[str, str]:
    return {"tuning_id": tuning_id, "trial": str(trial.number)}


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "tuning_run(backend='ray')") from None
    return ray


def _execute(
    source: Any,
    *,
    script: Path,
    runs_dir: Path,
    tuning_id: str,
    workers: int,
    backend: str,
    address: str | None,
    resources_per_trial: Mapping[str, Any] | None,
    echo: bool,
    progress: Progress,
) -> tuple[list[Outcome], TuningInterrupted | None]:
    """Run the source's trials on the chosen backend; a Ctrl-C is returned, not raised."""
    interrupted: TuningInterrupted | None = None
    if backend == "ray":
        options = ray_options(resources_per_trial)
        ray = _import_ray()
        started_here = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=echo)
            started_here = True
        try:
            ray_executor = RayExecutor(
                ray,
                str(script),
                str(runs_dir),
                tuning_id,
                lambda t: _tags(tuning_id, t),
                echo,
                workers,
                options,
            )
            try:
                outcomes = ray_executor.run(source, progress)
            except TuningInterrupted as stop:
                outcomes, interrupted = stop.outcomes, stop
        finally:
            if started_here:
                ray.shutdown()
        return outcomes, interrupted
    if resources_per_trial:
        warnings.warn(
            "resources_per_trial is used only by backend='ray'; the local backend runs "
            f"{workers} trial(s) at once. Received: resources_per_trial={dict(resources_per_trial)!r}",
            stacklevel=3,
        )
    from trainrun.runs.launch import stop_all_runs

    executor = LocalExecutor(_launcher(script, runs_dir, tuning_id, echo), workers, stop_all_runs)
    try:
        outcomes = executor.run(source, progress)
    except TuningInterrupted as stop:
        outcomes, interrupted = stop.outcomes, stop
        finished = {o.trial.number: o for o in outcomes}
        for trial in stop.stopped:
            outcome = finished.get(trial.number)
            if outcome is not None and outcome.run_dir:
                mark_interrupted(outcome.run_dir, INTERRUPTED_NOTE)
                outcome.record = record.read_run(outcome.run_dir)
        # trials whose launcher never returned (it was still waiting when we gave up)
        for folder in find_open_runs(runs_dir, tuning_id, pid=os.getpid()):
            mark_interrupted(folder, INTERRUPTED_NOTE)
    return outcomes, interrupted


def _finish(
    *,
    runs_dir: Path,
    tuning_id: str,
    trials: Sequence[Trial],
    run_of: dict[int, str],
    outcomes: list[Outcome],
    interrupted: TuningInterrupted | None,
    metric: str | None,
    mode: str,
    progress: Progress,
) -> pandas.DataFrame:
    by_trial = {o.trial.number: o for o in outcomes}
    for o in outcomes:
        if o.run_dir:
            run_of[o.trial.number] = o.run_dir
    df = _frame(runs_dir, tuning_id, trials, run_of, by_trial)
    df.attrs["tuning_id"] = tuning_id
    df.attrs["metric"] = metric
    df.attrs["best"] = _best(df, metric, mode)
    varied = list(dict.fromkeys(name for t in trials for name in t.flags))
    progress.say(_summary(df, metric, mode, tuning_id, varied))
    if interrupted is not None:
        progress.say(
            f"Tuning {tuning_id} interrupted: {len(interrupted.stopped)} running trial(s) "
            "marked interrupted. Run it again to resume."
        )
        raise KeyboardInterrupt
    return df


# ------------------------------------------------------------------ public


def tuning_run(
    script: str | os.PathLike[str],
    flags: Mapping[str, Sequence[Any]] | None = None,
    trials: pandas.DataFrame | Sequence[Mapping[str, Any]] | None = None,
    sample: float | int | None = None,
    seed: int | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    resources_per_trial: Mapping[str, float] | None = None,
    confirm: bool | None = None,
    tuning_id: str | None = None,
    resume: bool | str = True,
    metric: str | None = None,
    mode: str = "max",
    echo: bool = False,
    progress: bool = True,
) -> pandas.DataFrame:
    """Run ``script`` once per combination of flag values; return the runs as a DataFrame.

    Args:
        script: the training script; each trial runs it as an ordinary training run.
        flags: a grid, flag name -> list of values; every combination is a trial,
            in a fixed order (the last flag varies fastest).
        trials: instead of a grid, a table of trials (a DataFrame, a row each, or a
            list of dicts); a missing cell leaves that flag at its default.
        sample: run a random subset: a fraction in (0, 1] or a count, drawn without
            replacement; give ``seed`` to draw the same subset again (and so resume).
        runs_dir: where the runs are recorded (shared storage for a Ray cluster).
        workers: trials run at once; the next starts as soon as one finishes.
        backend: "local" (child processes on this machine) or "ray" (Ray tasks).
        address: the Ray cluster to use (None: an already initialised Ray, or a
            new local instance).
        resources_per_trial: Ray resources per trial, e.g. {"cpu": 2, "gpu": 1}.
        confirm: ask before starting; None asks only on a terminal and above
            CONFIRM_ABOVE trials; False never asks.
        tuning_id: tags every trial; default a stable hash of the script path and
            the trials, so running the same tuning again resumes it.
        resume: skip trials that a run of this tuning already completed, or that
            another live process is running now (failed, killed and interrupted ones
            run again). Only runs of the script's current content count: after an
            edit the old trials run again (the progress output says so); ``"any"``
            reuses them anyway.
        metric, mode: the column to report the best trial by ("eval_accuracy",
            "metric_loss", or a bare evaluation name) and whether to "max" or "min" it.
        echo: echo each trial's output (interleaved when workers > 1).
        progress: print a line per finished trial and a closing summary.

    Returns:
        One row per trial (its latest run): ``trial``, ls_runs' columns (run_dir,
        status, flag_*, metric_*, eval_*, tag_tuning_id, ...) and ``error``.
        ``df.attrs`` holds ``tuning_id``, ``metric`` and ``best`` (trial, run_dir,
        value, or None).

    Raises:
        KeyboardInterrupt: after Ctrl-C, once running trials are stopped and
            recorded as interrupted (a summary is printed first).
        TuningError: the confirmation was declined.

    Example:
        >>> runs = tuning_run("train.py", flags={"dropout": [0.1, 0.2]},
        ...                   workers=2, metric="eval_accuracy")  # doctest: +SKIP
        >>> runs.attrs["best"]["run_dir"]  # doctest: +SKIP
    """
    path = _check_common(script, workers, backend, mode, metric)
    _check_run_args(runs_dir, backend, address, resources_per_trial, confirm, echo, progress)
    _check_resume(resume)
    trial_list = build_trials(flags, trials, sample, seed)
    check_trial_flags(path, [t.flags for t in trial_list])
    if tuning_id is None:
        tuning_id = tuning_id_for(path, trial_list)
    elif not isinstance(tuning_id, str) or not tuning_id:
        raise UsageError(
            f"'tuning_id' must be a non-empty string. Received: tuning_id={tuning_id!r}"
        )
    runs_path = _runs_path(runs_dir)
    early = _Said()
    digest = None if resume == "any" else _current_digest(path)
    run_of = _completed_before(runs_path, tuning_id, trial_list, digest, early) if resume else {}
    todo = [t for t in trial_list if t.number not in run_of]
    _confirm(len(todo), path, confirm)
    shown = Progress(len(todo), metric, mode, show=progress)
    for line in early.lines:
        shown.say(line)
    live = _running_now(run_of) if run_of else 0
    skipped = f", {len(run_of) - live} already completed (skipped)" if len(run_of) > live else ""
    if live:
        skipped += f", {live} running in another process (not started again)"
    shown.say(
        f"Tuning {tuning_id}: {len(trial_list)} trial(s){skipped}; running {len(todo)} "
        f"with {workers} worker(s) on backend {backend!r}, runs in {runs_path}"
    )
    outcomes, interrupted = _execute(
        _ListSource(todo),
        script=path.resolve(),
        runs_dir=runs_path,
        tuning_id=tuning_id,
        workers=workers,
        backend=backend,
        address=address,
        resources_per_trial=resources_per_trial,
        echo=echo,
        progress=shown,
    )
    return _finish(
        runs_dir=runs_path,
        tuning_id=tuning_id,
        trials=trial_list,
        run_of=run_of,
        outcomes=outcomes,
        interrupted=interrupted,
        metric=metric,
        mode=mode,
        progress=shown,
    )


def _check_space_names(
    path: Path, distributions: Mapping[str, Any], fixed: Mapping[str, Any]
) -> None:
    """Searched names must be declared flags; fixed values must convert (before any trial)."""
    from trainrun.runs.launch._declared import check_overrides, script_flags

    if not distributions and not fixed:
        return
    declaration = script_flags(path.resolve(), Path.cwd(), dict(os.environ), path.read_bytes())
    check_overrides(declaration, dict(fixed), str(path))
    for name in distributions:
        if declaration.kind in ("trainrun", "argparse", "none") and name not in declaration.flags:
            check_overrides(declaration, {name: None}, str(path))  # raises the did-you-mean error


def optuna_search(
    script: str | os.PathLike[str],
    space: Mapping[str, Any],
    n_trials: int = 20,
    metric: str = "eval_accuracy",
    mode: str = "max",
    *,
    flags: Mapping[str, Any] | None = None,
    seed: int | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    workers: int = 1,
    backend: str = "local",
    address: str | None = None,
    resources_per_trial: Mapping[str, float] | None = None,
    tuning_id: str | None = None,
    resume: bool | str = True,
    sampler: Any = None,
    echo: bool = False,
    progress: bool = True,
) -> pandas.DataFrame:
    """Let Optuna propose trials that maximise (or minimise) ``metric``; each is a training run.

    ``space`` maps flag names to what to search: ``("float", low, high)``,
    ``("int", low, high)`` (append ``"log"`` for a log scale), a list of choices,
    or an ``optuna.distributions`` object. ``flags`` are fixed values given to
    every trial. A failed trial, or one that records no ``metric``, is told to
    Optuna as failed. ``n_trials`` counts the trials of this search in all:
    running it again (same script, space, metric, mode and ``flags``, or the same
    ``tuning_id``) feeds the completed ones back to Optuna and runs the rest.

    Returns a DataFrame as :func:`tuning_run` does; ``df.attrs["best"]`` is the
    best trial (trial, run_dir, value, flags).

    Example:
        >>> runs = optuna_search("train.py", {"dropout": ("float", 0.0, 0.5),
        ...                                   "layer1": ("int", 16, 256),
        ...                                   "activation": ["relu", "tanh"]},
        ...                      n_trials=20, metric="eval_accuracy")  # doctest: +SKIP
    """
    from trainrun.runs.tuning._optuna import OptunaSource, import_optuna, parse_space

    optuna = import_optuna()
    path = _check_common(script, workers, backend, mode, metric)
    _check_run_args(runs_dir, backend, address, resources_per_trial, None, echo, progress)
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise UsageError(f"'n_trials' must be a positive integer. Received: n_trials={n_trials!r}")
    _check_resume(resume)
    distributions = parse_space(optuna, space)
    fixed = fixed_flags(flags)
    _check_space_names(path, distributions, fixed)
    overlap = sorted(set(fixed) & set(distributions))
    if overlap:
        raise UsageError(
            f"A flag cannot be both searched and fixed: {', '.join(overlap)} is in 'space' and "
            f"in 'flags'; remove it from one. Received: flags={dict(flags or {})!r}"
        )
    if tuning_id is None:
        described = {k: repr(v) for k, v in distributions.items()}
        tuning_id = tuning_id_for(
            path, {"optuna": described, "metric": metric, "mode": mode, "flags": fixed}
        )
    runs_path = _runs_path(runs_dir)
    source = OptunaSource(optuna, distributions, fixed, n_trials, metric, mode, seed, sampler)
    run_of: dict[int, str] = {}
    early = _Said()
    if resume:
        rows = _tuning_rows(runs_path, tuning_id)
        if resume != "any":
            rows, edited = _same_script(rows, _current_digest(path))
            if edited:
                early.say(
                    f"The script changed since {edited} earlier trial(s) of this search ran: "
                    "they are not reused (pass resume='any' to reuse them)."
                )
        run_of = source.replay(rows, _recorded_flags)
    shown = Progress(source.remaining, metric, mode, show=progress)
    for line in early.lines:
        shown.say(line)
    shown.say(
        f"Optuna search {tuning_id}: {n_trials} trial(s), {len(run_of)} completed earlier; "
        f"{metric} to {'maximise' if mode == 'max' else 'minimise'}, runs in {runs_path}"
    )
    with source.quiet():
        outcomes, interrupted = _execute(
            source,
            script=path.resolve(),
            runs_dir=runs_path,
            tuning_id=tuning_id,
            workers=workers,
            backend=backend,
            address=address,
            resources_per_trial=resources_per_trial,
            echo=echo,
            progress=shown,
        )
    df = _finish(
        runs_dir=runs_path,
        tuning_id=tuning_id,
        trials=source.trials,
        run_of=run_of,
        outcomes=outcomes,
        interrupted=interrupted,
        metric=metric,
        mode=mode,
        progress=shown,
    )
    best = df.attrs.get("best")
    if best:
        best["flags"] = next(t.flags for t in source.trials if t.number == best["trial"])
    return df
