"""Checkpoints: safetensors for tensors, JSON for everything else; the last N kept.

>>> import tempfile, torch
>>> d = tempfile.mkdtemp()
>>> _ = save_checkpoint(d, 7, {"w": torch.ones(2)}, [], {"estimator": "Demo"}, keep=3)
>>> load_checkpoint(latest_checkpoint(d)).global_step
7
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from trainrun.exceptions import ModelDirError
from trainrun.model_dir._json import read_json, write_json

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

INDEX_FILE = "checkpoint.json"
_CKPT_FILE = re.compile(r"^(ckpt-\d+)(?:\.optim)?\.(?:json|safetensors)$")


@dataclass
class Checkpoint:
    """One checkpoint read back: ``meta`` is its JSON, ``model_state`` the weights."""

    path: Path
    global_step: int
    meta: dict[str, Any]
    model_state: dict[str, torch.Tensor]
    optimizer_states: list[dict[str, Any]] = field(default_factory=list)


def _flatten_optimizer(
    index: int, state_dict: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer's state_dict into tensors (safetensors) and the rest (JSON)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in state_dict["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(
    index: int, tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    prefix = f"{index}/"
    for key, value in tensors.items():
        if key.startswith(prefix):
            _, pid, name = key.split("/", 2)
            state.setdefault(int(pid), {})[name] = value
    for pid, entries in info.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    return {"state": state, "param_groups": info["param_groups"]}


def _index(model_dir: Path) -> dict[str, Any]:
    path = model_dir / INDEX_FILE
    if not path.exists():
        return {"latest": None, "all": []}
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise ModelDirError(
            f"The checkpoint index {path} is unreadable ({exc}). Delete it to start over, "
            "or point model_dir elsewhere."
        ) from exc
    return {"latest": data.get("latest"), "all": list(data.get("all", []))}


def list_checkpoints(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The kept checkpoints, oldest first, as paths to their ``ckpt-N.json`` files."""
    model_dir = Path(model_dir)
    return [model_dir / f"{name}.json" for name in _index(model_dir)["all"]]


def latest_checkpoint(model_dir: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint's ``ckpt-N.json`` in ``model_dir``, or None when there is none."""
    model_dir = Path(model_dir)
    latest = _index(model_dir)["latest"]
    if latest is None:
        return None
    path = model_dir / f"{latest}.json"
    return path if path.exists() else None


def save_checkpoint(
    model_dir: str | os.PathLike[str],
    global_step: int,
    model_state: dict[str, torch.Tensor],
    optimizer_states: list[dict[str, Any]],
    meta: dict[str, Any],
    keep: int | None = 5,
) -> Path:
    """Write checkpoint ``ckpt-<global_step>`` and drop all but the newest ``keep`` (None/0: all).

    Files are written first and the index last, so a crash mid-save leaves the
    previous checkpoint as the latest.
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = f"ckpt-{int(global_step)}"
    weights = {k: v.detach().cpu().contiguous() for k, v in model_state.items()}
    save_file(
        weights, str(model_dir / f"{name}.safetensors"), metadata={"global_step": str(global_step)}
    )
    opt_tensors: dict[str, torch.Tensor] = {}
    opt_info = []
    for i, sd in enumerate(optimizer_states):
        tensors, info = _flatten_optimizer(i, sd)
        opt_tensors.update(tensors)
        opt_info.append(info)
    save_file(opt_tensors, str(model_dir / f"{name}.optim.safetensors"))
    write_json(
        model_dir / f"{name}.json",
        {**meta, "global_step": int(global_step), "optimizers": opt_info},
    )

    index = _index(model_dir)
    names = [n for n in index["all"] if n != name] + [name]
    if keep:
        names = names[-keep:]
    write_json(model_dir / INDEX_FILE, {"latest": name, "all": names})
    # Everything the index does not list goes: the checkpoints dropped now, and those a
    # killed process left behind (written but not yet indexed, or indexed out but not
    # yet deleted), which would otherwise pile up with every crash.
    kept = set(names)
    for path in model_dir.iterdir():
        found = _CKPT_FILE.match(path.name)
        if found and found.group(1) not in kept:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
    return model_dir / f"{name}.json"


def read_checkpoint_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Only the JSON half of a checkpoint (cheap: no tensors read)."""
    path = Path(path)
    try:
        return read_json(path)
    except (OSError, ValueError) as exc:
        raise ModelDirError(f"Checkpoint {path} is unreadable ({exc}).") from exc


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint given its ``ckpt-N.json`` path (or its model_dir: the latest)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ModelDirError(f"No checkpoint in {path}. Train a model there first.")
        path = found
    meta = read_checkpoint_meta(path)
    stem = path.with_suffix("")
    try:
        weights = load_file(str(stem) + ".safetensors")
        opt_file = Path(str(stem) + ".optim.safetensors")
        opt_tensors = load_file(str(opt_file)) if opt_file.exists() else {}
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelDirError(f"Checkpoint {stem.name} in {path.parent} is damaged ({exc}).") from exc
    infos = meta.pop("optimizers", [])
    opt_states = [_unflatten_optimizer(i, opt_tensors, info) for i, info in enumerate(infos)]
    return Checkpoint(path, int(meta["global_step"]), meta, weights, opt_states)
