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
from safetensors.torch import save_file

from trainrun.exceptions import ModelDirError
from trainrun.model_dir._checks import inside, read_json_file, read_tensors, require
from trainrun.model_dir._json import write_json

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

INDEX_FILE = "checkpoint.json"
_CKPT_FILE = re.compile(r"^(ckpt-\d+)(?:\.optim)?\.(?:json|safetensors)$")
_CKPT_NAME = re.compile(r"^ckpt-\d{1,19}$")  # a name, never a path: nothing outside the folder


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
    """checkpoint.json, checked: checkpoint names only (ckpt-N), never paths."""
    path = model_dir / INDEX_FILE
    if not path.exists() and not path.is_symlink():
        return {"latest": None, "all": []}
    what = "The checkpoint index"
    data = read_json_file(inside(model_dir, path, what), what)
    latest = require(data, "latest", (str, type(None)), path, what)
    names = require(data, "all", list, path, what) if "all" in data else []
    for name in [latest, *names]:
        if name is not None and (not isinstance(name, str) or not _CKPT_NAME.match(name)):
            raise ModelDirError(
                f"{what} {path} names {name!r}, which is not a checkpoint of this folder "
                "(ckpt-N): refused, a checkpoint is never read from elsewhere. Delete "
                f"{INDEX_FILE} to start over, or point model_dir elsewhere."
            )
    return {"latest": latest, "all": list(names)}


def list_checkpoints(model_dir: str | os.PathLike[str]) -> list[Path]:
    """The kept checkpoints, oldest first, as paths to their ``ckpt-N.json`` files."""
    model_dir = Path(model_dir)
    return [model_dir / f"{name}.json" for name in _index(model_dir)["all"]]


def latest_checkpoint(model_dir: str | os.PathLike[str]) -> Path | None:
    """The newest checkpoint's ``ckpt-N.json`` in ``model_dir``, or None when there is none.

    ModelDirError when the index names a checkpoint whose file is missing, or that
    leads outside ``model_dir`` (a symlink): training over it would silently start afresh.
    """
    model_dir = Path(model_dir)
    latest = _index(model_dir)["latest"]
    if latest is None:
        return None
    path = model_dir / f"{latest}.json"
    if not path.exists() and not path.is_symlink():
        # another process may have saved a newer one and dropped this one meanwhile
        newer = _index(model_dir)["latest"]
        if newer is not None and newer != latest:
            path = model_dir / f"{newer}.json"
    inside(model_dir, path, f"Checkpoint {path.stem} (the latest in {INDEX_FILE})")
    return path


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
    """Only the JSON half of a checkpoint (cheap: no tensors read), its fields checked."""
    path = Path(path)
    what = "Checkpoint"
    meta = read_json_file(inside(path.parent, path, what), what)
    step = require(meta, "global_step", int, path, what)
    if step < 0:
        raise ModelDirError(f"{what} {path}: global_step must be >= 0. Received: {step}")
    for key, kind in (("architecture", dict), ("optimizer_classes", list), ("optimizers", list)):
        if key in meta:
            require(meta, key, kind, path, what)
    for i, info in enumerate(meta.get("optimizers", [])):
        where = f"{what} {path} (optimizer {i})"
        require(info, "param_groups", list, path, where)
        if "scalars" in info:
            require(info, "scalars", dict, path, where)
    return meta


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint given its ``ckpt-N.json`` path (or its model_dir: the latest)."""
    path = Path(path)
    if path.is_dir():
        found = latest_checkpoint(path)
        if found is None:
            raise ModelDirError(f"No checkpoint in {path}. Train a model there first.")
        path = found
    meta = read_checkpoint_meta(path)
    folder, stem = path.parent, path.with_suffix("").name
    weights_file = folder / f"{stem}.safetensors"
    weights = read_tensors(inside(folder, weights_file, "Weights file"), "Weights file")
    opt_file = folder / f"{stem}.optim.safetensors"
    opt_tensors: dict[str, torch.Tensor] = {}
    if opt_file.exists() or opt_file.is_symlink():
        what = "Optimizer state file"
        opt_tensors = read_tensors(inside(folder, opt_file, what), what)
    infos = meta.pop("optimizers", [])
    try:
        opt_states = [_unflatten_optimizer(i, opt_tensors, info) for i, info in enumerate(infos)]
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ModelDirError(
            f"The optimizer state in {opt_file} and {path} does not fit together ({exc!r}); "
            "it is damaged. Restore it or delete the folder."
        ) from None
    return Checkpoint(path, meta["global_step"], meta, weights, opt_states)
