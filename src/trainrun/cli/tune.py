"""``trainrun tune``: a tuning over a grid of flags, from the command line.

    trainrun tune train.py --grid dropout=0.1,0.2 --grid layer1=128,256 --workers 2

Exit codes: 0 every trial completed; 1 a trial failed or the tuning was
cancelled; 2 bad usage (a malformed --grid, no such script, a missing extra);
130 interrupted (Ctrl-C; running trials are recorded as interrupted).
"""

from __future__ import annotations

import argparse
from typing import Any

from trainrun.cli._options import add_runs_dir, runs_dir
from trainrun.exceptions import UsageError

EPILOG = """examples:
  trainrun tune train.py --grid dropout=0.1,0.2 --grid layer1=128,256
  trainrun tune train.py --grid lr=0.1,0.01,0.001 --sample 2 --seed 1 --workers 2
  trainrun tune train.py --trials trials.csv --metric eval_accuracy
  trainrun tune train.py --grid dropout=0.1,0.2 --backend ray --address auto --resources cpu=2
  trainrun tune train.py --space dropout=float:0:0.5 --space lr=float:0.0001:0.1:log \
      --space activation=relu,tanh --grid epochs=5 --n-trials 20 --metric eval_accuracy

exit codes:
  0  every trial completed
  1  a trial failed, or the tuning was cancelled at the prompt
  2  bad usage or bad input
  130  interrupted (Ctrl-C); running trials are recorded as interrupted"""


class _Bounds(Exception):
    """--space bounds that are not LOW:HIGH[:log] (turned into a UsageError below)."""


def parse_value(text: str) -> Any:
    """A grid value from the command line: int, float, true/false, or the string itself."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["dropout=0.1,0.2", "layer1=128"]`` -> ``{"dropout": [0.1, 0.2], "layer1": [128]}``."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip()
        if not sep or not name or not values:
            raise UsageError(
                "--grid takes NAME=VALUE[,VALUE...], e.g. --grid dropout=0.1,0.2. "
                f"Received: --grid {item!r}"
            )
        if name in grid:
            raise UsageError(
                f"--grid gives the flag '{name}' twice; list all its values once: "
                f"--grid {name}=A,B. Received: --grid {item!r}"
            )
        grid[name] = [parse_value(v) for v in values.split(",")]
    return grid


def parse_space(items: list[str]) -> dict[str, Any]:
    """``--space`` items as an optuna_search space.

    ``lr=float:0.0001:0.1:log`` -> ``("float", 0.0001, 0.1, "log")``;
    ``layer1=int:16:256`` -> ``("int", 16, 256)``; ``act=relu,tanh`` -> ``["relu", "tanh"]``.
    """
    space: dict[str, Any] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name or not spec:
            raise UsageError(
                "--space takes NAME=float:LOW:HIGH[:log], NAME=int:LOW:HIGH[:log] or "
                f"NAME=CHOICE1,CHOICE2. Received: --space {item!r}"
            )
        kind, _, rest = spec.partition(":")
        if kind in ("float", "int"):
            parts = rest.split(":")
            convert = float if kind == "float" else int
            try:
                if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
                    raise _Bounds(parts)
                bounds = [convert(parts[0]), convert(parts[1])]
            except (ValueError, _Bounds):
                raise UsageError(
                    f"--space {name}={kind}:LOW:HIGH[:log] needs two {kind} bounds. "
                    f"Received: --space {item!r}"
                ) from None
            space[name] = (kind, *bounds, *parts[2:])
        else:
            space[name] = [parse_value(v) for v in spec.split(",")]
    return space


def parse_resources(text: str | None) -> dict[str, float] | None:
    """``"cpu=2,gpu=0.5"`` -> ``{"cpu": 2.0, "gpu": 0.5}``."""
    if not text:
        return None
    out: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UsageError(
                f"--resources takes NAME=NUMBER[,NAME=NUMBER], e.g. cpu=2,gpu=1. Received: {text!r}"
            )
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "tune",
        help="run a script over a grid of flag values (a tuning)",
        description="Run a training script once per combination of flag values; each trial "
        "is an ordinary training run tagged with the tuning's id. Running the same tuning "
        "again skips trials already completed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("script", help="the training script")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="a flag and the values to try (repeat for more flags)",
    )
    p.add_argument("--trials", metavar="CSV", help="a CSV table of trials instead of --grid")
    p.add_argument(
        "--space",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="search NAME with Optuna instead of a grid: float:LOW:HIGH[:log], "
        "int:LOW:HIGH[:log] or A,B,C (repeat; --grid then gives fixed values)",
    )
    p.add_argument(
        "--n-trials", type=int, default=20, help="trials of an Optuna search (default 20)"
    )
    p.add_argument(
        "--sample", type=float, help="a fraction (0 < s < 1) or a count (>= 1) of trials"
    )
    p.add_argument("--seed", type=int, help="seed for --sample")
    p.add_argument("--workers", type=int, default=1, help="trials run at once (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--address", help="Ray cluster address (backend ray)")
    p.add_argument("--resources", metavar="cpu=N,gpu=N", help="Ray resources per trial")
    add_runs_dir(p)
    p.add_argument("--metric", help="report the best trial by this column, e.g. eval_accuracy")
    p.add_argument("--mode", choices=("max", "min"), default="max")
    p.add_argument("--tuning-id", help="the tuning's id (default: a hash of script and trials)")
    p.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip trials already completed by this tuning (default: on)",
    )
    p.add_argument(
        "--reuse-edited",
        action="store_true",
        help="resume with trials completed before the script was last edited",
    )
    p.add_argument("--echo", action="store_true", help="echo each trial's output")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask to confirm")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # errors (a malformed --grid, no such script, a missing extra) go to cli/_main.py
    args.runs_dir = runs_dir(args)
    grid = parse_grid(args.grid) if args.grid else None
    df = _search(args, grid) if args.space else _tune(args, grid)
    return 0 if (df["status"] == "completed").all() else 1


def _common(args: argparse.Namespace) -> dict[str, Any]:
    return dict(
        runs_dir=args.runs_dir,
        workers=args.workers,
        backend=args.backend,
        address=args.address,
        resources_per_trial=parse_resources(args.resources),
        tuning_id=args.tuning_id,
        resume="any" if args.resume and args.reuse_edited else args.resume,
        mode=args.mode,
        echo=args.echo,
    )


def _tune(args: argparse.Namespace, grid: dict[str, list[Any]] | None) -> Any:
    trials = None
    if args.trials:
        import pandas as pd

        trials = pd.read_csv(args.trials)
    if grid is None and trials is None:
        raise UsageError(
            "Give the values to try with --grid NAME=V1,V2, a --trials CSV, or an Optuna "
            "search with --space NAME=SPEC."
        )
    sample: float | int | None = args.sample
    if sample is not None and sample >= 1 and float(sample).is_integer():
        sample = int(sample)
    from trainrun.runs.tuning import tuning_run

    return tuning_run(
        args.script,
        flags=grid,
        trials=trials,
        sample=sample,
        seed=args.seed,
        confirm=False if args.yes else None,
        metric=args.metric,
        **_common(args),
    )


def _search(args: argparse.Namespace, grid: dict[str, list[Any]] | None) -> Any:
    if args.trials or args.sample is not None:
        raise UsageError("--space (an Optuna search) cannot be combined with --trials or --sample.")
    fixed = {}
    for name, values in (grid or {}).items():
        if len(values) != 1:
            raise UsageError(
                f"With --space, --grid gives fixed values: one value per flag. "
                f"Received: --grid {name}={','.join(map(str, values))}"
            )
        fixed[name] = values[0]
    from trainrun.runs.tuning import optuna_search

    return optuna_search(
        args.script,
        parse_space(args.space),
        n_trials=args.n_trials,
        metric=args.metric or "eval_accuracy",
        flags=fixed,
        seed=args.seed,
        **_common(args),
    )
