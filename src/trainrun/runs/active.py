"""The active run, as seen from inside a training script.

``training_run`` starts the script with the environment variable
``TRAINRUN_RUN_DIR`` naming its run folder; the functions here write into
that folder. Every one of them is safe to call when no run is active (a
plain ``python train.py``) and none ever raises into the script: a problem
(a full disk, a deleted folder, a value that is not JSON) prints one warning
to stderr per kind of problem and the script goes on.

With no active run, metrics, evaluation, flags and properties are kept in
memory (up to 100,000 metric rows) and written as soon as a run becomes
active in this process, either because ``TRAINRUN_RUN_DIR`` is set later or
through :func:`activate`. Plots and artifacts have no such buffer: with no run,
``save_plot`` does nothing and the folder functions return None.

>>> from trainrun.runs import active
>>> active.log_metrics(step=1, loss=0.42)   # a no-op that keeps the value without a run
>>> active.run_dir() is None or active.is_active()
True
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trainrun.runs import record

__all__ = [
    "RUN_DIR_ENV",
    "start_run",
    "activate",
    "artifacts_dir",
    "deactivate",
    "is_active",
    "log_metrics",
    "model_dir",
    "plots_dir",
    "run_dir",
    "save_plot",
    "tensorboard_dir",
    "write_evaluation",
    "write_run_metadata",
]

RUN_DIR_ENV = "TRAINRUN_RUN_DIR"
METADATA_KINDS = ("metrics", "evaluation", "flags", "properties")
MAX_PENDING_METRICS = 100_000

_lock = threading.RLock()
_explicit: Path | None = None  # set by activate(); wins over the environment
_flushed_for: Path | None = None  # the run the pending values were last flushed into
_warned: set[str] = set()
_auto_step = -1  # the last step written; log_metrics(step=None) continues from it
_pending: dict[str, Any] = {"metrics": [], "evaluation": {}, "flags": None, "properties": {}}
_dropped = 0


def _other_rank() -> bool:
    """A rank other than 0 of a run on several processes (torchrun sets RANK, WORLD_SIZE)."""
    return os.environ.get("RANK", "0") not in ("", "0") and os.environ.get("WORLD_SIZE") != "1"


def _warn_once(key: str, message: str) -> None:
    # stderr, not warnings.warn: a warnings filter set to "error" must not turn
    # a bookkeeping problem into a crash of the user's training script
    if key in _warned:
        return
    _warned.add(key)
    try:
        sys.stderr.write(f"trainrun: warning: {message}\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - a closed stderr must not crash the script either
        pass


# ---------------------------------------------------------------- where


def run_dir() -> Path | None:
    """The active run's folder, or None when the script runs on its own."""
    path = _explicit
    if path is None:
        env = os.environ.get(RUN_DIR_ENV)
        if not env:
            if _plain_script_checked:
                return None
            if os.environ.get("TRAINRUN_DESCRIBE_FLAGS"):
                # the launcher's flag check reached a metric before any declaration: the
                # script declares none; end it here rather than train in the check
                from trainrun.runs.flags._describe import describe_and_exit

                describe_and_exit({}, kind="none")
            return _no_run()
        path = Path(env)
    if not path.is_dir():
        _warn_once(
            f"missing:{path}",
            f"the run folder {path} (from {RUN_DIR_ENV}) does not exist; nothing will be recorded.",
        )
        return None
    if path != _flushed_for:
        _flush(path)
    return path


_plain_script_checked = False


def _no_run() -> Path | None:
    """First call without a run: a plain ``python train.py`` says so, or records itself."""
    global _plain_script_checked
    _plain_script_checked = True
    from trainrun.runs.launch._plain import no_run

    try:
        started = no_run()
    except Exception:  # noqa: BLE001 - never into the user's script
        return None
    return _explicit if started else None


def start_run(
    flags: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    runs_dir: str | os.PathLike[str] = "runs",
    **options: Any,
) -> Any:
    """Record a run in this process: ``with start_run(flags={...}, tags={...}) as run:``.

    In a notebook or any Python program: the block gets its own run folder with
    run.json (completed, failed or interrupted), flags, metrics logged inside it,
    output, a source snapshot, artifacts and open figures; listed like any other
    run. Options: ``run_dir``, ``capture_output``, ``artifacts``, ``source``,
    ``keep_current`` (see :func:`trainrun.runs.launch._inprocess.start_run`).

    >>> with start_run(flags={"lr": 0.1}) as run:  # doctest: +SKIP
    ...     log_metrics(step=0, loss=0.5)
    """
    from trainrun.runs.launch._inprocess import start_run as _start

    return _start(flags, tags, runs_dir, **options)


def is_active() -> bool:
    """True when a training run is recording this script."""
    return run_dir() is not None


def _sub(name: str) -> Path | None:
    base = run_dir()
    if base is None:
        return None
    path = base / name
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        _warn_once(f"mkdir:{name}", f"could not create {path}: {exc}")
        return None
    return path


def plots_dir() -> Path | None:
    """The run's plots/ folder (files there show in its report), or None with no run."""
    return _sub(record.PLOTS_DIR)


def artifacts_dir() -> Path | None:
    """The run's artifacts/ folder for any file the script wants kept, or None with no run."""
    return _sub(record.ARTIFACTS_DIR)


def model_dir() -> Path | None:
    """The run's model/ folder (estimators checkpoint there), or None with no run."""
    return _sub(record.MODEL_DIR)


def tensorboard_dir() -> Path | None:
    """The run's tensorboard/ folder for event files, or None with no run."""
    return _sub(record.TENSORBOARD_DIR)


def activate(path: str | os.PathLike[str]) -> _Activation:
    """Make ``path`` (an existing run folder) the active run in this process.

    Values kept while no run was active are written into it now. Usable as a
    context manager that deactivates on exit. Mostly for tests and for code that
    creates run folders itself; scripts started by ``training_run`` need nothing.

    >>> import tempfile
    >>> from trainrun.runs import record
    >>> folder = record.new_run_dir(tempfile.mkdtemp())
    >>> with activate(folder):
    ...     log_metrics(step=0, loss=1.0)
    >>> record.read_metrics(folder)[-1]["loss"]
    1.0
    """
    global _explicit
    folder = Path(path).resolve()
    if not folder.is_dir():
        from trainrun.exceptions import RunNotFoundError

        raise RunNotFoundError(
            f"activate() needs an existing run folder; create one with "
            f"trainrun.runs.record.new_run_dir(). Received: path={str(path)!r}"
        )
    with _lock:
        _explicit = folder
        _flush(folder)
    return _Activation()


def deactivate() -> None:
    """Undo :func:`activate` (the environment's run, if any, becomes active again)."""
    global _explicit, _flushed_for
    with _lock:
        _explicit = None
        _flushed_for = None  # values kept from now on go to the next run that starts


class _Activation:
    def __enter__(self) -> Path | None:
        return run_dir()

    def __exit__(self, *exc: object) -> None:
        deactivate()


# ---------------------------------------------------------------- pending values


def _flush(path: Path) -> None:
    global _flushed_for, _dropped
    with _lock:
        if _flushed_for == path:
            return
        _flushed_for = path  # before writing: the writers below call run_dir() again
        metrics, evaluation = _pending["metrics"], _pending["evaluation"]
        flags, properties = _pending["flags"], _pending["properties"]
        _pending.update(metrics=[], evaluation={}, flags=None, properties={})
        dropped, _dropped = _dropped, 0
    if dropped:
        _warn_once(
            "dropped",
            f"{dropped} metric rows logged before the run started were dropped "
            f"(only the last {MAX_PENDING_METRICS} are kept).",
        )
    if metrics:
        _append_metrics(path, metrics)
    if evaluation:
        _merge_json(path / record.EVALUATION_FILE, evaluation, "evaluation")
    if flags is not None:
        _write_flags(path, flags)
    if properties:
        _write_properties(path, properties)


# ---------------------------------------------------------------- writers (never raise)


def _append_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    try:
        record.append_jsonl(path / record.METRICS_FILE, rows)
    except Exception as exc:  # noqa: BLE001 - never into the user's script
        _warn_once("metrics", f"could not write metrics to {path / record.METRICS_FILE}: {exc}")


def _merge_json(file: Path, values: Mapping[str, Any], what: str) -> None:
    from trainrun.runs.record._lock import update_json

    try:
        update_json(file, lambda current: current.update(values))
    except Exception as exc:  # noqa: BLE001
        _warn_once(what, f"could not write {what} to {file}: {exc}")


def _write_flags(path: Path, data: Mapping[str, Any]) -> None:
    from trainrun.runs.record._lock import update_json

    def change(current: dict[str, Any]) -> None:
        if _is_flags_record(data):
            current.clear()
            current.update(data)
        else:
            values = current.get("values")
            current["values"] = {**(values if isinstance(values, dict) else {}), **data}
            current.setdefault("declared", {})

    try:
        update_json(path / record.FLAGS_FILE, change)
    except Exception as exc:  # noqa: BLE001
        _warn_once("flags", f"could not write flags to {path / record.FLAGS_FILE}: {exc}")


def _write_properties(path: Path, values: Mapping[str, Any]) -> None:
    from trainrun.runs.record._lock import update_run

    try:
        update_run(path, {"properties": dict(values)})
    except Exception as exc:  # noqa: BLE001
        _warn_once("properties", f"could not write properties to {path / record.RUN_FILE}: {exc}")


def _is_flags_record(data: Mapping[str, Any]) -> bool:
    return isinstance(data.get("values"), Mapping) and set(data) <= {
        "values",
        "declared",
        "sources",
    }


# ---------------------------------------------------------------- public writers


def _plain_metric(value: Any) -> tuple[bool, Any]:
    """(True, a JSON-ready value) for a storable metric, (False, None) otherwise.

    NumPy scalars and one-element arrays or tensors become Python numbers here,
    at log time, so rows kept before a run starts hold no arrays or GPU tensors.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return True, value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except Exception:  # noqa: BLE001 - e.g. an array of several values
            return False, None
        if value is None or isinstance(value, (bool, int, float, str)):
            return True, value
        return False, None
    if isinstance(value, (list, tuple, dict)):
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            return False, None
        return True, value
    return False, None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def log_metrics(step: int | None = None, **values: Any) -> None:
    """Append one row of metrics to the run's history (metrics.jsonl), written at once.

    ``step=None`` continues from the last step this process logged (0 first).
    Each row also carries ``time`` (seconds since the epoch). With no active
    run the row is kept in memory until one starts.

    >>> log_metrics(step=10, loss=0.31, accuracy=0.88)
    """
    global _auto_step, _dropped
    if _other_rank():  # several processes (torchrun): rank 0 alone records
        return
    try:
        for reserved in ("time",):
            if reserved in values:
                _warn_once(
                    "reserved",
                    f"log_metrics() ignores a metric named {reserved!r}: the name is taken "
                    "by the row's timestamp; rename the metric.",
                )
                values.pop(reserved)
        with _lock:
            if step is None:
                step = _auto_step + 1
            else:
                try:
                    step = int(step)
                except (TypeError, ValueError):
                    _warn_once(
                        "step", f"log_metrics() step must be an integer. Received: step={step!r}"
                    )
                    step = _auto_step + 1
            _auto_step = step
        row: dict[str, Any] = {"step": step, "time": round(time.time(), 6)}
        for name, value in values.items():
            # one value that cannot be stored must not cost the row its other metrics
            ok, plain = _plain_metric(value)
            if ok:
                row[name] = plain
            else:
                _warn_once(
                    f"metric:{name}",
                    f"log_metrics() skipped the metric {name!r}: a metric must be a number "
                    "(or a one-element array or tensor), a string or None; log a scalar such "
                    f"as its mean instead. Received: {name}={_short(value)}",
                )
        path = run_dir()
        if path is not None:
            _append_metrics(path, [row])
            return
        with _lock:
            pending = _pending["metrics"]
            pending.append(row)
            if len(pending) > MAX_PENDING_METRICS:
                del pending[0]
                _dropped += 1
    except Exception as exc:  # noqa: BLE001
        _warn_once("log_metrics", f"log_metrics() failed: {exc}")


def write_evaluation(values: Mapping[str, Any] | None = None, **kw: Any) -> None:
    """Merge final evaluation metrics into the run's evaluation.json.

    >>> write_evaluation({"accuracy": 0.91}, auc=0.95)
    """
    if _other_rank():  # several processes (torchrun): rank 0 alone records
        return
    try:
        merged = {**dict(values or {}), **kw}
        if not merged:
            return
        path = run_dir()
        if path is not None:
            _merge_json(path / record.EVALUATION_FILE, merged, "evaluation")
            return
        with _lock:
            _pending["evaluation"].update(merged)
    except Exception as exc:  # noqa: BLE001
        _warn_once("write_evaluation", f"write_evaluation() failed: {exc}")


def _metric_rows(data: Any) -> list[dict[str, Any]]:
    """Rows from a dict (one row), a list of dicts, a dict of lists, or a DataFrame."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        data = data.to_dict(orient="records")
    if isinstance(data, Mapping):
        columns = list(data.values())
        if columns and all(isinstance(c, (list, tuple)) for c in columns):
            n = max(len(c) for c in columns)
            return [{k: (v[i] if i < len(v) else None) for k, v in data.items()} for i in range(n)]
        return [dict(data)]
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return [dict(r) for r in data]
    raise TypeError(f"expected a dict, a list of dicts or a DataFrame, got {type(data).__name__}")


def write_run_metadata(kind: str, data: Any, run_dir: str | os.PathLike[str] | None = None) -> None:
    """Record ``data`` of one ``kind`` into the active run (tfruns' write_run_metadata).

    - ``"metrics"``: rows of history (a dict, a list of dicts, a dict of lists or
      a DataFrame); a row without ``step`` gets the next step.
    - ``"evaluation"``: a dict merged into evaluation.json.
    - ``"flags"``: either flags.json's whole record ``{"values", "declared"}``
      (replaces it) or a dict of values (merged into ``values``).
    - ``"properties"``: a dict merged into run.json's ``properties`` (listed by
      ``ls_runs`` as ``prop_*`` columns).
    - any other name (letters, digits, ``_``): a custom kind, as in tfruns. ``data``
      is either a function, called with the folder ``metadata/<kind>/`` of the run
      to write its files into, or JSON-able data written to ``metadata/<kind>.json``.

    ``run_dir``: write into this run folder instead of the active run.

    >>> write_run_metadata("properties", {"dataset": "churn"})
    >>> write_run_metadata("confusion", lambda folder: None)  # a custom kind
    """
    if _other_rank():  # several processes (torchrun): rank 0 alone records
        return
    try:
        if run_dir is not None:
            _write_to(Path(run_dir), kind, data)
            return
        if kind not in METADATA_KINDS:
            _write_custom(run_dir_(), kind, data)
            return
        if kind == "metrics":
            for row in _metric_rows(data):
                row = dict(row)
                step = row.pop("step", None)
                log_metrics(step=step, **{str(k): v for k, v in row.items()})
            return
        if kind == "evaluation":
            write_evaluation(dict(data))
            return
        data = dict(data)
        path = run_dir_()
        if kind == "flags":
            if path is not None:
                _write_flags(path, data)
            else:
                with _lock:
                    if _is_flags_record(data) or _pending["flags"] is None:
                        _pending["flags"] = data
                    else:
                        _pending["flags"] = {**_pending["flags"], **data}
            return
        if path is not None:
            _write_properties(path, data)
        else:
            with _lock:
                _pending["properties"].update(data)
    except Exception as exc:  # noqa: BLE001
        _warn_once(f"metadata:{kind}", f"write_run_metadata({kind!r}) failed: {exc}")


run_dir_ = run_dir  # the function, where a parameter shadows its name


def _write_custom(folder: Path | None, kind: Any, data: Any) -> None:
    """A custom kind: ``data(folder)`` writes into metadata/<kind>/, or JSON to metadata/<kind>.json."""
    if not isinstance(kind, str) or not kind.isidentifier():
        _warn_once(
            f"kind:{kind}",
            "write_run_metadata() kind must be one of "
            f"{', '.join(METADATA_KINDS)} or a custom name of letters, digits and '_'. "
            f"Received: kind={kind!r}",
        )
        return
    if folder is None:
        _warn_once(
            f"custom:{kind}",
            f"write_run_metadata({kind!r}) was not recorded: custom kinds need a run "
            "(no run is active and no run_dir= was given).",
        )
        return
    base = folder / "metadata"
    base.mkdir(exist_ok=True)
    if callable(data):
        target = base / kind
        target.mkdir(exist_ok=True)
        data(target)
    else:
        record.write_json(base / f"{kind}.json", data)


def _write_to(folder: Path, kind: str, data: Any) -> None:
    """write_run_metadata(..., run_dir=folder): straight into that run, active or not."""
    if not folder.is_dir():
        _warn_once(f"run_dir:{folder}", f"write_run_metadata(): no run folder {folder}.")
        return
    if kind == "metrics":
        rows = []
        for n, row in enumerate(_metric_rows(data)):
            row = dict(row)
            row.setdefault("step", n)
            row.setdefault("time", round(time.time(), 6))
            rows.append(row)
        _append_metrics(folder, rows)
    elif kind == "evaluation":
        _merge_json(folder / record.EVALUATION_FILE, dict(data), "evaluation")
    elif kind == "flags":
        _write_flags(folder, dict(data))
    elif kind == "properties":
        _write_properties(folder, dict(data))
    else:
        _write_custom(folder, kind, data)


def save_plot(fig: Any = None, name: str = "plot.png") -> Path | None:
    """Save a matplotlib figure (default: the current one) into the run's plots/ folder.

    Returns the file's path, or None when no run is active. The name is kept to
    a plain file name inside plots/; with the default name, an existing plot is
    not overwritten ("plot-2.png", ...).

    >>> import matplotlib  # doctest: +SKIP
    >>> save_plot(fig, "loss.png")  # doctest: +SKIP
    """
    if _other_rank():  # several processes (torchrun): rank 0 alone records
        return None
    try:
        folder = plots_dir()
        if folder is None:
            return None
        if fig is None:
            pyplot = sys.modules.get("matplotlib.pyplot")
            if pyplot is None:
                _warn_once("noplot", "save_plot() was given no figure and pyplot is not in use.")
                return None
            fig = pyplot.gcf()
        base = Path(str(name)).name or "plot.png"
        if not Path(base).suffix:
            base += ".png"
        target = folder / base
        if name == "plot.png":
            n = 1
            while target.exists():
                n += 1
                target = folder / f"plot-{n}.png"
        if hasattr(fig, "savefig"):
            fig.savefig(target)
        elif hasattr(fig, "figure") and hasattr(fig.figure, "savefig"):
            fig.figure.savefig(target)  # an Axes or an Artist
        else:
            _warn_once(
                "savefig",
                f"save_plot() needs a matplotlib Figure (anything with savefig). "
                f"Received: {type(fig).__name__}",
            )
            return None
        return target
    except Exception as exc:  # noqa: BLE001
        _warn_once("save_plot", f"save_plot() failed: {exc}")
        return None
