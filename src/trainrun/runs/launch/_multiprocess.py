"""``training_run(..., nproc=N)`` / ``trainrun run --nproc N``: one run, N processes, via torchrun.

The launcher records one run whose child is this file, run as a script::

    python <trainrun>/runs/launch/_multiprocess.py --nproc-per-node=N train.py --flag=...

It hands the script to torch's own launcher (``torch.distributed.run``, i.e.
``torchrun``) on this machine: a static rendezvous on 127.0.0.1 with a free port, no
restarts, and each rank's output teed to the run's output with a ``[defaultR]:``
label. torchrun sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT`` in every
rank, and trainrun's estimators join the process group from there (see
:mod:`trainrun.training.distributed`). Every rank runs behind the same bootstrap as a
one-process run (:mod:`trainrun.runs.launch._child`), so argparse scripts still record
their flags.

When one rank fails, torchrun stops the others; this file then prints which rank
failed and that rank's traceback (the run's error is read from it) and exits with
code 1. SIGINT or SIGTERM to the run stops every rank, and this process then ends by
the same signal, so the run reads ``interrupted``.

This file imports only the standard library at the top: the launcher imports it to
build the command without importing torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: The bootstrap every rank runs the script behind.
_CHILD_FILE = Path(__file__).with_name("_child.py")
NPROC_OPTION = "--nproc-per-node"

__all__ = ["check_nproc", "multiprocess_command"]


def check_nproc(nproc: object) -> int:
    """``nproc`` as a positive int, or a ValueError naming the fix."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        from trainrun.exceptions import UsageError

        raise UsageError(
            "training_run() nproc must be a positive whole number of processes (one per "
            f"rank; 2 on a 2-core machine), or None for one process. Received: nproc={nproc!r}"
        )
    return nproc


def multiprocess_command(command: list[str], nproc: int) -> list[str]:
    """``[python, script, *args]`` as the command that runs it on ``nproc`` ranks.

    >>> multiprocess_command(["python", "train.py", "--lr=0.1"], 2)[2:]
    ['--nproc-per-node=2', 'train.py', '--lr=0.1']
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        from trainrun.exceptions import MissingExtraError

        raise MissingExtraError(
            "torch", "estimators", f"Running a script on several processes (nproc={nproc})"
        )
    return [command[0], str(Path(__file__).resolve()), f"{NPROC_OPTION}={nproc}", *command[1:]]


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_log(log_dir: str, local_rank: int) -> str:
    """The tail of one rank's stderr as torchrun teed it (its traceback, if any)."""
    for path in sorted(Path(log_dir).glob(f"*/attempt_*/{local_rank}/stderr.log")):
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
    return ""


def _traceback_tail(text: str) -> str:
    """The last traceback in ``text``, without torch's ``[rankN]:`` line prefixes."""
    import re

    lines = [re.sub(r"^\[rank\d+\]: ?", "", line) for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent")]
    return "\n".join(lines[starts[-1] :]) if starts else ""


def _describe(exitcode: int) -> str:
    if exitcode < 0:
        import signal

        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"failed (exit code {exitcode})"


def _report_failure(err: object, nproc: int, log_dir: str) -> None:
    """Which rank failed first, then its traceback last (the run's error line comes from it)."""
    rank, failure = err.get_first_failure()  # type: ignore[attr-defined]
    tail = _traceback_tail(_rank_log(log_dir, failure.local_rank))
    what = _describe(int(failure.exitcode))
    sys.stdout.flush()
    sys.stderr.write(
        f"trainrun: rank {rank} of {nproc} {what}; torchrun stopped the other ranks.\n"
    )
    if tail:
        sys.stderr.write(tail + "\n")
    else:
        sys.stderr.write(f"trainrun: error: rank {rank} of {nproc} {what}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> int:
    """Run ``argv`` (``--nproc-per-node=N script *args``) under torchrun; the exit code."""
    import logging
    import shutil
    import signal
    import tempfile

    if not argv or not argv[0].startswith(f"{NPROC_OPTION}="):
        sys.stderr.write(f"usage: {Path(__file__).name} {NPROC_OPTION}=N SCRIPT [ARGS ...]\n")
        return 2
    nproc = int(argv[0].split("=", 1)[1])
    script, args = argv[1], argv[2:]
    # torchrun prints a banner unless the thread count is set; one thread per rank is
    # its default and ours
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # the summary below replaces torchrun's own report of a failure
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    log_dir = tempfile.mkdtemp(prefix="trainrun-ranks-")
    options = [
        "--nnodes=1",
        f"{NPROC_OPTION}={nproc}",
        "--rdzv-backend=static",
        "--master-addr=127.0.0.1",
        f"--master-port={_free_port()}",
        "--max-restarts=0",
        "--monitor-interval=0.1",
        "--tee=3",
        f"--log-dir={log_dir}",
        str(_CHILD_FILE),
        script,
        *args,
    ]
    try:
        torchrun.run(torchrun.parse_args(options))
        return 0
    except ChildFailedError as err:
        _report_failure(err, nproc, log_dir)
        return 1
    except SignalException as exc:
        # every rank is stopped: end by the same signal, so the run reads interrupted
        shutil.rmtree(log_dir, ignore_errors=True)
        sig = int(exc.sigval)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
