"""``trainrun board [--runs-dir DIR]``: TensorBoard over a runs folder, each run a named run.

Before starting TensorBoard it writes (or refreshes, idempotently) every run's
HParams data, so the HParams dashboard lists each run with its flags, status
and metrics. Binds 127.0.0.1 unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from trainrun.cli._options import add_runs_dir, runs_dir

HELP = "serve TensorBoard over a runs folder, with each run's flags in HParams"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "board",
        help=HELP,
        description=HELP[0].upper() + HELP[1:] + ".",
        epilog="exit codes: 0 TensorBoard stopped; 1 TensorBoard failed; "
        "2 bad usage or no such runs folder; 130 interrupted (Ctrl-C)",
    )
    add_runs_dir(p, positional_alias=True)
    p.add_argument("--port", type=int, default=6006, help="port (default: 6006)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: 127.0.0.1, this machine only; 0.0.0.0 exposes it)",
    )
    p.add_argument(
        "--reload-interval",
        type=float,
        default=5.0,
        help="seconds between TensorBoard's rereads of the event files (default: 5)",
    )
    p.set_defaults(func=_board)


def _board(args: argparse.Namespace) -> int:
    from trainrun._extras import missing
    from trainrun.exceptions import UsageError

    args.runs_dir = runs_dir(args)
    no_tensorboard = missing("tensorboard", "board", "serving TensorBoard")
    if no_tensorboard is not None:
        raise no_tensorboard
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0 to 65535. Received: {args.port}")
    if args.reload_interval <= 0:
        raise UsageError(
            "--reload-interval must be a positive number of seconds. "
            f"Received: {args.reload_interval}"
        )
    mirroring = None
    if args.runs_dir.startswith("s3://"):  # a shared store: TensorBoard over a local mirror
        from trainrun.runs.store import mirror_runs

        store = args.runs_dir
        args.runs_dir = str(mirror_runs(store))
        mirroring = _Mirroring(store, args.reload_interval)
    try:
        return _board_over(args)
    finally:
        if mirroring is not None:
            mirroring.stop()


class _Mirroring:
    """The mirror of a shared store brought up to date every ``interval`` seconds, in a
    background thread: new runs and new events appear in TensorBoard as they are pushed."""

    def __init__(self, store: str, interval: float) -> None:
        import threading

        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trainrun-mirror", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import warnings

        from trainrun.exceptions import TrainrunError
        from trainrun.runs.store import mirror_runs

        said = None
        while not self._stop.wait(self.interval):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a store away: said once below
                    mirror_runs(self.store)
                said = None
            except (TrainrunError, OSError) as exc:
                if str(exc) != said:  # once per problem, not every interval
                    said = str(exc)
                    print(f"trainrun: warning: {exc} (showing the last copy)", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _board_over(args: argparse.Namespace) -> int:
    import tempfile

    from trainrun.runs.tensorboard import link_runs, tensorboard_command, write_hparams

    run_dirs = write_hparams(args.runs_dir)
    # TensorBoard reads a folder of links named by run id, so each run is named by its id;
    # the folder lives outside the runs folder so that nothing there looks like a run.
    with tempfile.TemporaryDirectory(prefix="trainrun-board-") as folder:
        logdir: str | None = folder
        try:
            link_runs(run_dirs, folder)
        except OSError:  # no symlinks here: name the runs with --logdir_spec instead
            logdir = None
        cmd = tensorboard_command(
            args.runs_dir,
            port=args.port,
            host=args.host,
            run_dirs=run_dirs,
            logdir=logdir,
            reload_interval=args.reload_interval,
        )
        print(
            f"trainrun board: {len(run_dirs)} run(s) from {args.runs_dir}; "
            f"TensorBoard at http://{args.host}:{args.port}/ (Ctrl-C to stop)",
            flush=True,
        )
        proc = subprocess.Popen(cmd)
        try:
            code = _serve(proc, args, run_dirs, logdir)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: stop TensorBoard within STOP_S (it serves files, holds no
            # state worth a slow shutdown), then the process exits
            _stop(proc)
            return 130
    return 0 if code in (0, -signal.SIGINT, -signal.SIGTERM) else 1


#: how long TensorBoard is given to stop after SIGTERM before it is killed
STOP_S = 1.5


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _serve(
    proc: subprocess.Popen, args: argparse.Namespace, known: list, logdir: str | None
) -> int:
    """Wait for TensorBoard; meanwhile give runs that appear their HParams data and a link."""
    from trainrun.runs.tensorboard import find_run_dirs, link_runs, write_hparams

    known_set = {p.resolve() for p in known}
    while True:
        try:
            return proc.wait(timeout=args.reload_interval)
        except subprocess.TimeoutExpired:
            pass
        if logdir is None:
            continue  # a --logdir_spec list is fixed when TensorBoard starts
        try:
            # listing the folder is cheap; the records are read only when a run appears
            listed = {d.resolve() for d in find_run_dirs(args.runs_dir)}
            if listed <= known_set:
                continue
            # runs already served are not rewritten: TensorBoard keeps reading their files
            current = write_hparams(args.runs_dir, skip=known_set)
        except (OSError, ValueError) as exc:
            print(f"trainrun: warning: could not refresh runs: {exc}", file=sys.stderr)
            continue
        new = [d for d in current if d.resolve() not in known_set]
        if new:
            link_runs(new, logdir)
        # a corrupt record (reported once by write_hparams) is not retried every interval
        known_set |= listed
