"""What a model directory or an export may hold, checked before anything is built from it.

Every file is read as untrusted: a tampered or damaged one is a :class:`ModelDirError`
naming the file and the problem, never a raw JSONDecodeError, KeyError or
SafetensorError; no path it names leads outside its folder; and no size it states
is allocated before the weights on disk confirm it.

>>> import torch
>>> check_state({"w": torch.zeros(2)}, {"w": torch.zeros(3)}, "ckpt-1.safetensors")
Traceback (most recent call last):
...
trainrun.exceptions.ModelDirError: ckpt-1.safetensors does not fit this model: tensor 'w' has shape [3], the model needs [2]. ...
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun.exceptions import ModelDirError

__all__ = [
    "MAX_JSON_BYTES",
    "check_optimizer_state",
    "check_sizes",
    "check_state",
    "inside",
    "read_json_file",
    "read_tensors",
    "require",
]

# A checkpoint's or export's JSON inlines vocabularies: generous, but bounded.
MAX_JSON_BYTES = 256 * 1024 * 1024


def inside(folder: Path, path: Path, what: str) -> Path:
    """``path`` if it is a regular file that resolves inside ``folder`` (symlinks followed)."""
    real = path.resolve()
    if not real.is_relative_to(folder.resolve()):
        raise ModelDirError(
            f"{what} {path} leads outside its folder {folder} (to {real}); refused. A model "
            "directory holds its own files only: copy the file in instead of linking it."
        )
    try:
        mode = real.stat().st_mode
    except FileNotFoundError:
        raise ModelDirError(
            f"{what} {path} is missing. The folder was damaged or copied in part: restore the "
            "file, or delete the folder and train (or export) again."
        ) from None
    if not stat.S_ISREG(mode):
        raise ModelDirError(f"{what} {path} is not a regular file; refused.")
    return real


def read_json_file(path: Path, what: str) -> Any:
    """The JSON in ``path``; ModelDirError if it is missing, too large, not UTF-8 or not JSON."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_JSON_BYTES:
                raise ModelDirError(
                    f"{what} {path} is {size:,} bytes; the limit is {MAX_JSON_BYTES:,}. It is not "
                    "a file trainrun wrote: restore it or delete the folder."
                )
            data = f.read(MAX_JSON_BYTES + 1)
    except FileNotFoundError:
        raise ModelDirError(
            f"{what} {path} is missing. Restore it, or delete the folder and start over."
        ) from None
    except OSError as exc:
        raise ModelDirError(f"{what} {path} cannot be read ({exc.strerror or exc}).") from exc
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelDirError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); it is damaged. Restore it or "
            "delete the folder."
        ) from None
    except json.JSONDecodeError as exc:
        raise ModelDirError(
            f"{what} {path} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno}); it is damaged. Restore it or delete the folder."
        ) from None
    except RecursionError:
        raise ModelDirError(f"{what} {path} nests too deep to be a file trainrun wrote.") from None


def require(data: Any, key: str, kind: type | tuple[type, ...], path: Path, what: str) -> Any:
    """``data[key]``, which must exist and be of ``kind`` (bool never counts as an int)."""
    if not isinstance(data, dict):
        raise ModelDirError(
            f"{what} {path} must hold a JSON object; it holds a {_json_type(data)}. It is damaged."
        )
    if key not in data:
        raise ModelDirError(f"{what} {path} lacks the field {key!r}; it is damaged.")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
        raise ModelDirError(
            f"{what} {path}: the field {key!r} must be {names}, not a {_json_type(value)}. "
            f"It is damaged. Received: {key}={_short(value)}"
        )
    return value


def read_tensors(path: Path, what: str) -> dict[str, Any]:
    """The tensors of a safetensors file (never pickle); ModelDirError if damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except FileNotFoundError:
        raise ModelDirError(f"{what} {path} is missing. Restore it or delete the folder.") from None
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise ModelDirError(
            f"{what} {path} is not a readable safetensors file ({exc}); it is damaged. Restore "
            "it or delete the folder."
        ) from None


def check_state(expected: Mapping[str, Any], found: Mapping[str, Any], source: Any) -> None:
    """The stored tensors are exactly the model's: same names, shapes and dtypes."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    problems = []
    if missing:
        problems.append(f"it lacks tensors {_names(missing)}")
    if extra:
        problems.append(f"it has tensors this model does not: {_names(extra)}")
    for key in sorted(set(expected) & set(found)):
        want, got = expected[key], found[key]
        if tuple(want.shape) != tuple(got.shape):
            problems.append(
                f"tensor {key!r} has shape {list(got.shape)}, the model needs {list(want.shape)}"
            )
        elif want.dtype != got.dtype:
            problems.append(
                f"tensor {key!r} is {str(got.dtype).removeprefix('torch.')}, the model needs "
                f"{str(want.dtype).removeprefix('torch.')} (refused: no silent casts)"
            )
    if problems:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise ModelDirError(
            f"{source} does not fit this model: {'; '.join(problems[:3])}{more}. The weights "
            "were tampered with or belong to another model: use a new model_dir, or export again."
        )


def check_sizes(config: Any, budget: int, path: Path, what: str, field: str = "") -> None:
    """Every count in ``config`` (a spec's network) fits in ``budget`` stored values.

    A layer of n units needs at least n stored values, so a size past what the
    weights file holds is refused before anything is allocated.
    """
    if isinstance(config, bool) or config is None:
        return
    if isinstance(config, int):
        if config < 0 or config > budget:
            raise ModelDirError(
                f"{what} {path} asks for {field}={config:,}, but its weights hold only "
                f"{budget:,} values: refused before allocating. The spec was tampered with or "
                "belongs to other weights; export the model again."
            )
    elif isinstance(config, dict):
        for key, value in config.items():
            check_sizes(value, budget, path, what, f"{field}.{key}" if field else str(key))
    elif isinstance(config, list):
        if len(config) > budget:
            raise ModelDirError(
                f"{what} {path} lists {len(config):,} entries in {field}, more than its weights "
                "could fill: refused. Export the model again."
            )
        for i, value in enumerate(config):
            check_sizes(value, budget, path, what, f"{field}[{i}]")


_JSON_NAMES: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return {
        dict: "object",
        list: "list",
        str: "string",
        int: "integer",
        float: "number",
        bool: "boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _names(keys: list[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:5])
    return f"[{shown}{', ...' if len(keys) > 5 else ''}] ({len(keys)})"


def check_optimizer_state(optimizer: Any, state: Mapping[str, Any], source: Any) -> None:
    """A stored optimizer state fits ``optimizer``: its groups, parameters, shapes, dtypes.

    torch's own ``load_state_dict`` checks only the group sizes; a moment of the wrong
    shape would surface later as a RuntimeError in the middle of a training step.
    """
    import torch

    groups = optimizer.param_groups
    stored = state.get("param_groups")
    if not isinstance(stored, list) or len(stored) != len(groups):
        raise ModelDirError(
            f"The optimizer state in {source} has {_count(stored)} parameter groups, this "
            f"optimizer {len(groups)}; it is damaged. Delete the folder or use a new model_dir."
        )
    params: list[Any] = []
    for i, (mine, theirs) in enumerate(zip(groups, stored, strict=True)):
        ids = theirs.get("params") if isinstance(theirs, dict) else None
        if not isinstance(ids, list) or len(ids) != len(mine["params"]):
            raise ModelDirError(
                f"The optimizer state in {source}: group {i} lists {_count(ids)} parameters, "
                f"this optimizer {len(mine['params'])}; it is damaged."
            )
        params.extend(zip(ids, mine["params"], strict=True))
    by_id = {pid: p for pid, p in params if isinstance(pid, int) and not isinstance(pid, bool)}
    for pid, entries in state.get("state", {}).items():
        param = by_id.get(pid)
        if param is None or not isinstance(entries, dict):
            raise ModelDirError(
                f"The optimizer state in {source} holds state for parameter {pid!r}, which "
                "no parameter group lists; it is damaged."
            )
        for name, value in entries.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                continue  # a step count or another scalar
            if tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
                raise ModelDirError(
                    f"The optimizer state in {source}: {name!r} of parameter {pid} is "
                    f"{list(value.shape)} {str(value.dtype).removeprefix('torch.')}, the "
                    f"parameter {list(param.shape)} {str(param.dtype).removeprefix('torch.')}; "
                    "refused. Delete the folder or use a new model_dir."
                )


def _count(value: Any) -> str:
    return str(len(value)) if isinstance(value, list) else "no list of"
