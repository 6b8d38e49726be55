"""TensorBoard over a runs folder: HParams data for every run, and the command that serves it.

Each run gets one extra event file in its own ``tensorboard/`` folder (the
same folder as the scalars its script wrote, so TensorBoard shows one run,
not a sub-run as torch's ``add_hparams`` makes)::

    runs/<id>/tensorboard/events.out.tfevents.<start - 1 s>.trainrun-hparams
        _hparams_/experiment           the experiment config: every flag of every run
                                       (type, choices, description) and every metric
        _hparams_/session_start_info   this run's flag values, trial id = run id
        _hparams_/session_end_info     completed / failed / interrupted (absent while running)
        eval/<name>                    evaluation.json values as scalars
        metrics/<name>                 metrics.jsonl history as scalars
    (a value the script already wrote as a scalar, as the estimators do, is not copied)

The content depends only on the run records, so writing it again is a no-op
(the file is replaced only when its bytes change, atomically). TensorBoard
picks the first experiment config it finds, so every run carries the config
of the whole folder.

>>> from trainrun.runs.tensorboard import write_hparams, tensorboard_command   # doctest: +SKIP
>>> write_hparams("runs")                                             # doctest: +SKIP
>>> subprocess.run(tensorboard_command("runs", port=6006))            # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from trainrun._extras import require
from trainrun.exceptions import RunNotFoundError, RunRecordError, UsageError
from trainrun.runs import record

__all__ = [
    "HPARAMS_FILE_SUFFIX",
    "find_run_dirs",
    "link_runs",
    "tensorboard_command",
    "write_hparams",
    "write_run_hparams",
]

HPARAMS_FILE_SUFFIX = ".trainrun-hparams"
EVALUATION_TAG = "eval/"  # the estimators' name for evaluation scalars
METRICS_TAG = "metrics/"
#: event files larger than this in all are not scanned for the script's own scalar tags
MAX_SCAN_BYTES = 64 * 1024 * 1024
#: at most this many points per metric history are copied (evenly spaced, last kept)
MAX_POINTS_PER_METRIC = 5_000
# A single argv string is limited to 128 KiB on Linux; beyond that we fall back
# to --logdir (run names then read "<id>/tensorboard").
_MAX_SPEC_CHARS = 100_000


def _epoch(iso: str | None) -> float:
    if not iso:
        return 0.0
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _is_number(value: Any) -> TypeGuard[int | float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _hparam_value(value: Any) -> bool | float | str | None:
    """A flag value as TensorBoard's HParams accepts it (bool, number or string)."""
    if value is None:
        return None
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else str(value)
    return json.dumps(value, sort_keys=True, default=str)


def find_run_dirs(runs_dir: str | os.PathLike[str] = "runs") -> list[Path]:
    """The run folders directly under ``runs_dir``, sorted by name (``record.run_folder_names``).

    Hidden folders, the archive and folders that are not runs are skipped. Raises RunNotFoundError
    when ``runs_dir`` does not exist.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise RunNotFoundError(
            f"The runs folder {runs_dir} does not exist. Start a run with "
            "trainrun.training_run(...) or `trainrun run script.py`, or pass the folder "
            f"that holds your runs. Received: runs_dir={str(runs_dir)!r}"
        )
    return [runs_dir / name for name in record.run_folder_names(runs_dir)]


# ---------------------------------------------------------------- protos


def _summary(tag: str, plugin_data: Any) -> Any:
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(
        tag=tag,
        metadata=metadata.create_summary_metadata(plugin_data),
        tensor=metadata.NULL_TENSOR,
    )
    return summary


def _declared_info(name: str, declared: Mapping[str, Any], values: list[Any]) -> Any:
    from tensorboard.plugins.hparams import api_pb2

    info = api_pb2.HParamInfo(name=name, display_name=name)
    raw = declared.get(name)
    spec: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if spec.get("description"):
        info.description = str(spec["description"])
    kinds = {type(v) for v in values if v is not None}
    declared_type = {"numeric": float, "integer": float, "boolean": bool, "string": str}.get(
        str(spec.get("type"))
    )
    if declared_type is not None and kinds <= {declared_type}:
        kinds = {declared_type}  # the declaration decides when no value contradicts it
    if kinds and kinds <= {bool}:
        info.type = api_pb2.DATA_TYPE_BOOL
    elif kinds and kinds <= {float}:
        info.type = api_pb2.DATA_TYPE_FLOAT64
    else:
        info.type = api_pb2.DATA_TYPE_STRING
    choices = spec.get("choices")
    if isinstance(choices, (list, tuple)) and choices:
        converted = [_hparam_value(c) for c in choices]
        if all(type(c) is type(converted[0]) for c in converted):
            info.domain_discrete.extend(converted)
    elif info.type in (api_pb2.DATA_TYPE_BOOL, api_pb2.DATA_TYPE_STRING):
        # a discrete domain lets the dashboard offer the values seen as filter checkboxes
        seen = sorted({v for v in values if v is not None}, key=repr)
        info.domain_discrete.extend(seen)
    return info


def _value_field(value: Any) -> str:
    if isinstance(value, bool):
        return "bool_value"
    if isinstance(value, float):
        return "number_value"
    return "string_value"


def _experiment_summary(runs: Sequence[Mapping[str, Any]]) -> Any:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    values: dict[str, list[Any]] = {}
    declared: dict[str, Any] = {}
    metric_tags: set[str] = set()
    for run in runs:
        declared.update(run.get("declared_flags") or {})
        for name, value in (run.get("flags") or {}).items():
            values.setdefault(name, []).append(_hparam_value(value))
        metric_tags.update(_metric_tags(run))
    hparam_infos = [_declared_info(n, declared, values[n]) for n in sorted(values)]
    metric_infos = [
        api_pb2.MetricInfo(
            name=api_pb2.MetricName(group="", tag=tag),
            display_name=tag,
            dataset_type=(
                api_pb2.DATASET_VALIDATION
                if tag.startswith(EVALUATION_TAG) or "val" in tag.split("/", 1)[-1]
                else api_pb2.DATASET_TRAINING
            ),
        )
        for tag in sorted(metric_tags)
    ]
    experiment = api_pb2.Experiment(
        hparam_infos=hparam_infos,
        metric_infos=metric_infos,
        time_created_secs=min((_epoch(r.get("start")) for r in runs), default=0.0),
    )
    return _summary(
        "_hparams_/experiment", plugin_data_pb2.HParamsPluginData(experiment=experiment)
    )


def _session_summaries(run: Mapping[str, Any]) -> list[Any]:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    start = plugin_data_pb2.SessionStartInfo(
        group_name=str(run["id"]), start_time_secs=_epoch(run.get("start"))
    )
    for name, value in sorted((run.get("flags") or {}).items()):
        value = _hparam_value(value)
        if value is None:
            continue
        field = _value_field(value)
        setattr(start.hparams[name], field, value)
    out = [
        _summary(
            "_hparams_/session_start_info",
            plugin_data_pb2.HParamsPluginData(session_start_info=start),
        )
    ]
    status = {
        "completed": api_pb2.STATUS_SUCCESS,
        "failed": api_pb2.STATUS_FAILURE,
        # HParams has no "aborted": a kill is a failure, a Ctrl-C is neither
        "interrupted": api_pb2.STATUS_UNKNOWN,
        "killed": api_pb2.STATUS_FAILURE,
    }.get(run.get("status") or "running")
    if status is not None:
        end = plugin_data_pb2.SessionEndInfo(
            status=status, end_time_secs=_epoch(run.get("end")) or _epoch(run.get("start"))
        )
        out.append(
            _summary(
                "_hparams_/session_end_info",
                plugin_data_pb2.HParamsPluginData(session_end_info=end),
            )
        )
    return out


def _metric_series(run: Mapping[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """tag -> [(step, wall_time, value)] to write: the evaluation and the metric history.

    A value the script already wrote as a scalar is not written again: evaluation
    ``accuracy`` when ``eval/accuracy`` exists (the estimators write it), history
    ``loss`` when ``loss`` exists.
    """
    existing = run.get("_scalar_tags") or set()
    start = _epoch(run.get("start"))
    series: dict[str, list[tuple[int, float, float]]] = {}
    history = run.get("_history") or []
    last_step = 0
    for i, rec in enumerate(history):
        step = rec.get("step")
        step = int(step) if _is_number(step) else i
        last_step = max(last_step, step)
        wall = float(rec["time"]) if _is_number(rec.get("time")) else start
        for key, value in rec.items():
            if key in ("step", "time") or key in existing or not _is_number(value):
                continue
            series.setdefault(METRICS_TAG + key, []).append((step, wall, float(value)))
    evaluation = run.get("evaluation") or {}
    step_value = evaluation.get("global_step")
    eval_step = int(step_value) if _is_number(step_value) else last_step
    end = _epoch(run.get("end")) or start
    for key, value in sorted(evaluation.items()):
        tag = EVALUATION_TAG + key
        if key == "global_step" or tag in existing or not _is_number(value):
            continue
        series[tag] = [(eval_step, end, float(value))]
    for tag, points in series.items():
        if len(points) > MAX_POINTS_PER_METRIC:
            stride = math.ceil(len(points) / MAX_POINTS_PER_METRIC)
            kept = points[::stride]
            if kept[-1] is not points[-1]:
                kept.append(points[-1])  # the last value is what HParams shows
            series[tag] = kept
    return series


def _metric_tags(run: Mapping[str, Any]) -> set[str]:
    """The scalar tags that hold this run's metrics, whoever wrote them."""
    existing = run.get("_scalar_tags") or set()
    tags = set(_metric_series(run))
    for key, value in (run.get("evaluation") or {}).items():
        if key != "global_step" and _is_number(value) and EVALUATION_TAG + key in existing:
            tags.add(EVALUATION_TAG + key)
    for rec in run.get("_history") or []:
        tags.update(k for k in rec if k in existing and k not in ("step", "time"))
    return tags


def _scalar_tags(tb_dir: Path) -> set[str]:
    """Scalar tags in the run's own event files (not ours), read with TensorBoard's loader."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    # regular files directly in a real folder: nothing outside the run is read
    files = [
        tb_dir / e["path"]
        for e in record.walk(tb_dir)
        if e["kind"] == "file"
        and "/" not in e["path"]
        and "tfevents" in e["path"]
        and not e["path"].endswith(HPARAMS_FILE_SUFFIX)
    ]
    if sum(p.lstat().st_size for p in files) > MAX_SCAN_BYTES:
        return set()  # too big to scan at every start: write our copies, duplicates and all
    tags: set[str] = set()
    for path in sorted(files):
        for raw in RawEventFileLoader(str(path)).Load():
            event = event_pb2.Event.FromString(raw)
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if value.HasField("simple_value") or plugin == "scalars":
                    tags.add(value.tag)
    return tags


def _event_bytes(run: Mapping[str, Any], experiment: Any) -> bytes:
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    start = _epoch(run.get("start"))
    events = [event_pb2.Event(wall_time=start, step=0, file_version="brain.Event:2")]
    for summary in [experiment, *_session_summaries(run)]:
        events.append(event_pb2.Event(wall_time=start, step=0, summary=summary))
    for tag, points in sorted(_metric_series(run).items()):
        for step, wall, value in points:
            summary = summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)]
            )
            events.append(event_pb2.Event(wall_time=wall, step=step, summary=summary))
    chunks = []
    for event in events:
        # TFRecord framing: length, crc of length, data, crc of data (little endian)
        data = event.SerializeToString(deterministic=True)
        header = len(data).to_bytes(8, "little")
        chunks += [
            header,
            masked_crc32c(header).to_bytes(4, "little"),
            data,
            masked_crc32c(data).to_bytes(4, "little"),
        ]
    return b"".join(chunks)


def _load(run_dir: Path) -> dict[str, Any]:
    run = record.read_run(run_dir)
    run["_history"] = record.read_metrics(run_dir)
    try:
        run["_scalar_tags"] = _scalar_tags(run_dir / record.TENSORBOARD_DIR)
    except Exception as exc:  # a damaged event file must not stop the board
        print(f"trainrun: could not read the events of {run_dir.name}: {exc}", file=sys.stderr)
        run["_scalar_tags"] = set()
    return run


def _write_bytes(run: Mapping[str, Any], data: bytes) -> Path:
    tb_dir = Path(run["run_dir"]) / record.TENSORBOARD_DIR
    tb_dir.mkdir(exist_ok=True)
    if not record.is_real_folder(tb_dir):
        raise RunRecordError(
            f"{tb_dir} is a link, not a folder: trainrun writes nothing outside a run folder. "
            "Replace the link with a folder."
        )
    # TensorBoard reads a folder's event files in name order and never goes back to an
    # earlier one; named a second before the run started, ours sorts before every event
    # file the run writes (one made in the start second by a host whose name sorts before
    # "trainrun-hparams" would otherwise be left unread after ours).
    second = int(_epoch(run.get("start")))
    path = tb_dir / f"events.out.tfevents.{max(second - 1, 0):010d}{HPARAMS_FILE_SUFFIX}"
    for old in tb_dir.glob(f"events.out.tfevents.*{HPARAMS_FILE_SUFFIX}"):
        if old != path:  # an earlier rule's or start time's (a link is removed, not followed)
            old.unlink(missing_ok=True)
    try:
        if record.read_bytes(path, len(data) + 1) == data:
            return path  # unchanged: leave the file (and TensorBoard's reader) alone
    except (FileNotFoundError, RunRecordError):
        pass
    fd, tmp = tempfile.mkstemp(dir=tb_dir, prefix=".hparams.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_run_hparams(run_dir: str | os.PathLike[str]) -> Path:
    """Write one run's HParams event file into ``<run_dir>/tensorboard/``; return its path.

    The experiment config lists this run's flags and metrics only; use
    :func:`write_hparams` over the whole runs folder when several runs are
    shown together.

    >>> write_run_hparams("runs/2026-11-27T10-15-42Z")   # doctest: +SKIP
    PosixPath('runs/2026-11-27T10-15-42Z/tensorboard/events.out.tfevents.1764238541.trainrun-hparams')
    """
    require("tensorboard", "board", "write_run_hparams()")
    run_dir = Path(run_dir)
    if not record.is_run_folder(run_dir):
        raise RunNotFoundError(
            f"{run_dir} is not a run folder (it has no {record.RUN_FILE}). "
            f"Received: run_dir={str(run_dir)!r}"
        )
    run = _load(run_dir)
    return _write_bytes(run, _event_bytes(run, _experiment_summary([run])))


def write_hparams(
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    skip: Collection[str | os.PathLike[str]] = (),
) -> list[Path]:
    """Write (or refresh) the HParams event file of every run in ``runs_dir``.

    Idempotent: a run whose file already holds the same bytes is not touched.
    Runs in ``skip`` (folders already served by a running TensorBoard) are
    counted but not rewritten. A corrupt run record is reported on stderr
    and skipped. Returns the run folders covered, in name order.

    >>> write_hparams("runs")                             # doctest: +SKIP
    [PosixPath('runs/2026-11-27T10-15-42Z'), PosixPath('runs/2026-11-27T10-17-03Z')]
    """
    require("tensorboard", "board", "write_hparams()")
    skipped = {Path(p).resolve() for p in skip}
    runs = []
    for run_dir in find_run_dirs(runs_dir):
        try:
            runs.append(_load(run_dir))
        except RunRecordError as exc:
            print(f"trainrun: skipping {run_dir.name}: {exc}", file=sys.stderr)
    if not runs:
        return []
    experiment = _experiment_summary(runs)
    written = []
    for run in runs:
        if Path(run["run_dir"]).resolve() not in skipped:
            try:
                _write_bytes(run, _event_bytes(run, experiment))
            except (RunRecordError, OSError) as exc:  # a tensorboard/ that is a link, a file
                print(f"trainrun: skipping {Path(run['run_dir']).name}: {exc}", file=sys.stderr)
                continue
        written.append(Path(run["run_dir"]))
    return written


def link_runs(run_dirs: Sequence[str | os.PathLike[str]], logdir: str | os.PathLike[str]) -> None:
    """Make ``logdir/<id>`` a symlink to each run's ``tensorboard/`` folder.

    TensorBoard over ``logdir`` then names every run exactly by its id (with
    ``--logdir runs`` the names would read ``<id>/tensorboard``, and with
    ``--logdir_spec`` ``<id>/.``). Existing links are kept.
    """
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    for run_dir in run_dirs:
        link = logdir / Path(run_dir).name
        if not record.is_real_folder(Path(run_dir) / record.TENSORBOARD_DIR):
            continue  # a link out of the run: TensorBoard is not pointed at it
        if not link.is_symlink():
            link.symlink_to((Path(run_dir) / record.TENSORBOARD_DIR).resolve(), True)


def tensorboard_command(
    runs_dir: str | os.PathLike[str] = "runs",
    *,
    port: int = 6006,
    host: str = "127.0.0.1",
    run_dirs: Sequence[str | os.PathLike[str]] | None = None,
    logdir: str | os.PathLike[str] | None = None,
    reload_interval: float = 5.0,
) -> list[str]:
    """The argv that starts TensorBoard over ``runs_dir``, each run a run named by its id.

    Binds ``host`` (loopback by default). With ``logdir`` (a folder made by
    :func:`link_runs`) it serves that folder; otherwise it uses ``--logdir_spec
    id:path,...`` (run names then read ``<id>/.``), and a folder too large for
    one argument falls back to ``--logdir runs_dir``.

    >>> tensorboard_command("runs", port=6007)[-4:]       # doctest: +SKIP
    ['--host', '127.0.0.1', '--port', '6007']
    """
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise UsageError(f"port must be an integer from 0 to 65535. Received: port={port!r}")
    cmd = [sys.executable, "-m", "tensorboard.main"]
    if logdir is not None:
        cmd += ["--logdir", str(Path(logdir).resolve())]
    else:
        dirs = run_dirs if run_dirs is not None else find_run_dirs(runs_dir)
        parts = [f"{Path(d).name}:{(Path(d) / record.TENSORBOARD_DIR).resolve()}" for d in dirs]
        # the spec syntax cannot carry a comma, nor a colon inside a name
        fits = all(
            p.count(",") == 0 and ":" not in Path(d).name for p, d in zip(parts, dirs, strict=True)
        )
        if parts and fits and sum(len(p) + 1 for p in parts) < _MAX_SPEC_CHARS:
            cmd += ["--logdir_spec", ",".join(parts)]
        else:
            cmd += ["--logdir", str(Path(runs_dir).resolve())]
    return cmd + [
        "--load_fast",
        "false",  # the Rust data server does not support --logdir_spec
        "--reload_interval",
        str(reload_interval),
        "--host",
        host,
        "--port",
        str(port),
    ]
