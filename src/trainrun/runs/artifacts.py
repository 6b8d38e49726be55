"""Files and models kept with a run: ``log_artifact`` and ``log_model``.

Both copy into the active run's ``artifacts/`` folder, which the run's report
lists with sizes. Like the rest of the script side they do nothing without a
run (they return None) and never fail the training over a full disk (one
warning on stderr); a mistake in the call itself (a file that does not exist,
a name that leaves ``artifacts/``, a model of an unknown kind) raises
:class:`~trainrun.exceptions.ArtifactError`.

Only regular files are copied: links and special files in a folder are
skipped (and listed in the warning), so nothing outside the run can be read
through its artifacts.

>>> import tempfile, pathlib
>>> from trainrun.runs import active, record
>>> run = record.new_run_dir(tempfile.mkdtemp())
>>> src = pathlib.Path(tempfile.mkdtemp()) / "vocab.txt"; _ = src.write_text("a\\nb\\n")
>>> with active.activate(run):
...     log_artifact(src, name="data/vocab.txt").relative_to(run).as_posix()
'artifacts/data/vocab.txt'
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from pathlib import Path, PurePosixPath
from typing import Any

from trainrun.exceptions import ArtifactError
from trainrun.runs import active

__all__ = ["log_artifact", "log_model", "model_kind"]

#: The kinds of model ``log_model`` knows, in the order they are tried.
MODEL_KINDS = ("keras", "torch", "sklearn")


def _target_name(name: str | os.PathLike[str], what: str) -> PurePosixPath:
    text = os.fspath(name).replace("\\", "/")
    rel = PurePosixPath(text)
    if not text or rel.is_absolute() or any(p in ("", ".", "..") for p in text.split("/")):
        raise ArtifactError(
            f"The {what} name must be a relative path inside the run's artifacts/ folder, "
            f"without '..' or a leading '/'; pass a plain name such as 'model.pt' or "
            f"'data/vocab.txt'. Received: name={os.fspath(name)!r}"
        )
    return rel


def _copy_tree(source: Path, target: Path, skipped: list[str]) -> None:
    for root, dirs, files in os.walk(source):
        rel_root = Path(root).relative_to(source)
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                skipped.append(str(rel_root / d) + " (a link)")
                dirs.remove(d)
        (target / rel_root).mkdir(parents=True, exist_ok=True)
        for f in files:
            path = os.path.join(root, f)
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
                skipped.append(f"{rel_root / f} ({kind})")
                continue
            shutil.copyfile(path, target / rel_root / f)


def log_artifact(
    path: str | os.PathLike[str], name: str | os.PathLike[str] | None = None
) -> Path | None:
    """Copy a file or a folder into the run's ``artifacts/`` (as ``name``, default its own name).

    Returns the copy's path, or None when no run is active. An existing
    artifact of the same name is replaced.

    >>> log_artifact("confusion.csv")                      # doctest: +SKIP
    >>> log_artifact("outputs/", name="predictions")       # doctest: +SKIP
    """
    source = Path(path).expanduser()
    if not source.exists():
        raise ArtifactError(
            f"log_artifact() was given a path that does not exist; pass an existing file or "
            f"folder (relative paths start at {Path.cwd()}). Received: path={os.fspath(path)!r}"
        )
    rel = _target_name(name if name is not None else source.resolve().name, "artifact")
    folder = active.artifacts_dir()
    if folder is None:
        return None
    target = folder.joinpath(*rel.parts)
    skipped: list[str] = []
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        if source.is_dir():
            _copy_tree(source, target, skipped)
        elif source.is_file():
            shutil.copyfile(source, target)
        else:
            raise ArtifactError(
                f"log_artifact() copies regular files and folders; {source} is neither "
                f"(a device, a socket or a pipe). Received: path={os.fspath(path)!r}"
            )
    except OSError as exc:
        active._warn_once(f"artifact:{rel}", f"log_artifact() could not copy {source}: {exc}")
        return None
    if skipped:
        active._warn_once(
            f"artifact-skipped:{rel}",
            f"log_artifact() copied only regular files from {source}; skipped: "
            + ", ".join(skipped[:10])
            + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""),
        )
    return target


def model_kind(model: Any) -> str | None:
    """``"keras"``, ``"torch"``, ``"sklearn"`` or None: how ``log_model`` would save ``model``.

    Nothing is imported to decide: a library that is not loaded cannot have made it.
    """
    keras = sys.modules.get("keras")
    if keras is not None and isinstance(model, keras.Model):
        return "keras"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return "torch"
    if callable(getattr(model, "get_params", None)) and callable(getattr(model, "fit", None)):
        return "sklearn"
    return None


def _save_torch(model: Any, folder: Path, name: str) -> Path:
    try:
        from safetensors.torch import save_file
    except ImportError:
        from trainrun.exceptions import MissingExtraError

        raise MissingExtraError(
            "safetensors", "estimators", "log_model() of a torch model"
        ) from None
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    target = folder / f"{name}.safetensors"
    # tied weights share storage, which safetensors refuses: give each name its own copy
    seen: set[int] = set()
    for key, tensor in state.items():
        ptr = tensor.untyped_storage().data_ptr()
        if ptr in seen:
            state[key] = tensor.clone()
        seen.add(ptr)
    save_file(state, str(target))
    config = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "tensors": {k: list(v.shape) for k, v in state.items()},
        "load": "model.load_state_dict(safetensors.torch.load_file(path))",
    }
    (folder / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    return target


def _save_sklearn(model: Any, folder: Path, name: str) -> Path:
    import joblib  # a scikit-learn dependency

    target = folder / f"{name}.joblib"
    # joblib is a pickle: load it only from runs you trust (the report says so)
    joblib.dump(model, target)
    return target


def log_model(model: Any, name: str = "model") -> Path | None:
    """Save a trained model into the run's ``artifacts/`` and return the file's path.

    - Keras: ``model.save`` as ``<name>.keras`` (Keras' own format, loadable with
      ``keras.saving.load_model``).
    - PyTorch (any ``nn.Module``, a Lightning module too): the ``state_dict`` as
      ``<name>.safetensors`` (no pickle) plus ``<name>.json`` with the class and
      tensor shapes.
    - scikit-learn (anything with ``fit`` and ``get_params``): ``<name>.joblib``
      (a pickle: load it only from runs you trust).

    Returns None when no run is active.

    >>> log_model(net)                         # doctest: +SKIP
    PosixPath('runs/2026-11-27T10-15-42Z/artifacts/model.safetensors')
    """
    kind = model_kind(model)
    if kind is None:
        raise ArtifactError(
            "log_model() saves Keras models, PyTorch nn.Modules and scikit-learn estimators; "
            "for anything else save it to a file and call log_artifact(path). "
            f"Received: a {type(model).__module__}.{type(model).__qualname__}"
        )
    rel = _target_name(name, "model")
    if len(rel.parts) != 1:
        raise ArtifactError(
            f"log_model() takes a plain file name without folders (the file goes directly "
            f"into artifacts/). Received: name={name!r}"
        )
    folder = active.artifacts_dir()
    if folder is None:
        return None
    try:
        if kind == "keras":
            target = folder / f"{name}.keras"
            model.save(target)
            return target
        if kind == "torch":
            return _save_torch(model, folder, name)
        return _save_sklearn(model, folder, name)
    except OSError as exc:
        active._warn_once(f"model:{name}", f"log_model() could not save {name}: {exc}")
        return None
