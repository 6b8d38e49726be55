"""Exports: a folder that serves predictions with no training code.

``spec.json`` holds the head, the network's config and the feature columns
(vocabularies inlined); ``model.safetensors`` holds the weights.
:func:`load_exported` rebuilds the network from the spec alone.

>>> model = load_exported("churn_model")          # doctest: +SKIP
>>> model.predict_frame(new_customers).head()     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import ModelDirError, UsageError
from trainrun.model_dir._checks import (
    check_sizes,
    check_state,
    inside,
    read_json_file,
    read_tensors,
    require,
)
from trainrun.model_dir._json import write_json

__all__ = [
    "ExportedModel",
    "export_model",
    "load_exported",
    "predictions_to_frame",
    "read_export_files",
    "transform_for",
]

EXPORT_FORMAT = "trainrun.export/1"
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "model.safetensors"


def export_model(
    path: str | os.PathLike[str],
    *,
    network: Any,
    head: Any,
    columns: Mapping[str, Sequence[Any]],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``spec.json`` and ``model.safetensors`` into folder ``path`` (created if needed)."""
    from safetensors.torch import save_file

    from trainrun import __version__
    from trainrun.feature_columns import columns_to_config

    net_config = network.to_config()
    for part in (net_config, net_config.get("dnn") or {}):
        if part.get("type") == "dnn" and part.get("activation_fn") is None:
            raise UsageError(
                "Cannot export a network whose activation_fn is a custom function: an export "
                "holds no code. Train with a named activation (e.g. activation_fn='relu')."
            )
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelDirError(
            f"Cannot export into {path}: it is a file. Received: path={os.fspath(path)!r}"
        )
    path.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(weights, str(path / WEIGHTS_FILE), metadata={"format": EXPORT_FORMAT})
    spec = {
        "format": EXPORT_FORMAT,
        "trainrun_version": __version__,
        **(extra or {}),
        "head": head.to_config(),
        "network": net_config,
        "columns": {part: columns_to_config(cols) for part, cols in columns.items()},
    }
    write_json(path / SPEC_FILE, spec)
    return path


class ExportedModel:
    """A loaded export: ``predict(data)`` on a DataFrame, dict of arrays or Arrow table."""

    def __init__(
        self, spec: Mapping[str, Any], network: Any, head: Any, transform: Any, path: Path
    ) -> None:
        self.spec = dict(spec)
        self.network = network
        self.head = head
        self.transform = transform
        self.path = path

    @property
    def required_keys(self) -> tuple[str, ...]:
        """The raw data columns that predict() needs."""
        return tuple(self.transform.required_keys)

    def _outputs(
        self, data: Any, predict_keys: Sequence[str] | None, batch_size: int
    ) -> list[dict[str, np.ndarray]]:
        import torch

        data = _as_columns(data)
        n = _num_rows(data)
        outs = []
        for start in range(0, max(n, 1), batch_size):
            chunk = {k: v[start : start + batch_size] for k, v in data.items()}
            encoded = self.transform.encode(chunk)
            with torch.no_grad():
                out = self.head.predictions(self.network(encoded))
            outs.append({k: out[k] for k in predict_keys} if predict_keys else out)
            if n == 0:
                break
        return outs

    def predict(
        self, data: Any, predict_keys: Sequence[str] | None = None, batch_size: int = 8192
    ) -> dict[str, np.ndarray]:
        """tf.estimator's prediction keys, each an array with one row per example."""
        keys = self.head.check_predict_keys(predict_keys)
        outs = self._outputs(data, keys, batch_size)
        return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}

    def predict_frame(
        self, data: Any, predict_keys: Sequence[str] | None = None, batch_size: int = 8192
    ) -> Any:
        """The predictions as a DataFrame (``probabilities_0``, ``probabilities_1``, ...)."""
        keys = self.head.check_predict_keys(predict_keys)
        return predictions_to_frame(self._outputs(data, keys, batch_size), keys)

    def predict_to(
        self,
        path: str | os.PathLike[str],
        input_fn: Any,
        predict_keys: Sequence[str] | None = None,
        id_columns: Sequence[str] | None = None,
        format: str | None = None,
    ) -> Path:
        """Stream predictions over ``input_fn`` into a Parquet or CSV file (as an estimator's)."""
        from trainrun.estimators._predict_to import exported_batches, predict_to

        batches = exported_batches(self, input_fn, predict_keys)
        return predict_to(path, input_fn, batches, id_columns, format)

    def __repr__(self) -> str:
        return f"ExportedModel({self.spec.get('estimator', '?')}, path={str(self.path)!r})"


def load_exported(
    path: str | os.PathLike[str], normalizers: Mapping[str, Callable] | None = None
) -> ExportedModel:
    """Load an export written by ``estimator.export(path)``.

    ``normalizers`` supplies numeric columns' ``normalizer_fn`` functions that
    could not be stored in JSON, by the name the error message gives.

    The files are checked before anything is built from them: a damaged or tampered
    export is a ModelDirError naming the file, and no size in ``spec.json`` is
    allocated before ``model.safetensors`` holds weights of exactly that shape and dtype.
    """
    import torch

    from trainrun.modules._build import build_network

    path = Path(path)
    trees = (path / "model.ubj").is_file() or (path / "model.txt").is_file()
    if trees and not (path / WEIGHTS_FILE).exists():
        # A BoostedTrees export: the engine's own model format instead of safetensors.
        from trainrun.estimators.boosted_trees import load_boosted_trees_export

        return load_boosted_trees_export(path)  # type: ignore[return-value]
    spec_path, weights_path = path / SPEC_FILE, path / WEIGHTS_FILE
    if not (spec_path.exists() or spec_path.is_symlink()) or not (
        weights_path.exists() or weights_path.is_symlink()
    ):
        raise ModelDirError(
            f"{path} is not a trainrun export: it needs {SPEC_FILE} and {WEIGHTS_FILE}. "
            "Create one with estimator.export(path)."
        )
    what = "The export spec"
    state, spec = read_export_files(path)
    columns, head, transform = _spec_parts(spec, spec_path, normalizers)
    net_config = require(spec, "network", dict, spec_path, what)
    check_sizes(net_config, sum(t.numel() for t in state.values()), spec_path, what, "network")
    # Built first on the meta device (no memory): its tensors must be the file's, so that
    # a spec asking for 2**31 units is refused here instead of allocating 40 GB.
    with torch.device("meta"):
        shell = _built(build_network, net_config, columns, spec_path)
    check_state(shell.state_dict(), state, weights_path)
    network = _built(build_network, net_config, columns, spec_path)
    network.load_state_dict(state)
    network.eval()
    return ExportedModel(spec, network, head, transform, path)


def read_export_files(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(weights, spec) of the export in ``path``, both checked (ModelDirError naming the file)."""
    spec_path, what = path / SPEC_FILE, "The export spec"
    spec = read_json_file(inside(path, spec_path, what), what)
    fmt = require(spec, "format", str, spec_path, what)
    if fmt != EXPORT_FORMAT:
        raise ModelDirError(
            f"{spec_path} has format {fmt!r}; this trainrun reads {EXPORT_FORMAT!r}."
        )
    weights = path / WEIGHTS_FILE
    state = read_tensors(inside(path, weights, "The export's weights"), "The export's weights")
    return state, spec


def _spec_parts(
    spec: dict[str, Any], spec_path: Path, normalizers: Mapping[str, Callable] | None
) -> tuple[dict[str, list[Any]], Any, Any]:
    """The feature columns, head and transform a spec describes (ModelDirError if it cannot)."""
    from trainrun.exceptions import FeatureColumnError
    from trainrun.feature_columns import columns_from_config
    from trainrun.modules.heads import head_from_config

    what = "The export spec"
    parts = require(spec, "columns", dict, spec_path, what)
    head_config = require(spec, "head", dict, spec_path, what)
    try:
        columns = {}
        for part, cfg in parts.items():
            if not isinstance(cfg, list):
                raise TypeError(f"columns.{part} must be a list of column configs")
            columns[part] = columns_from_config(cfg, dict(normalizers) if normalizers else None)
        transform = transform_for(columns, spec.get("network"))
        head = head_from_config(head_config)
    except FeatureColumnError as exc:
        if "normalizer" in str(exc):
            raise  # a normalizer to pass in: the user's step, not a damaged file
        raise ModelDirError(f"{what} {spec_path} holds unusable feature columns: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelDirError(
            f"{what} {spec_path} holds unusable columns or head ({type(exc).__name__}: {exc}); "
            "it is damaged or from another version. Export the model again."
        ) from None
    return columns, head, transform


def transform_for(columns: Mapping[str, Sequence[Any]], network: Any = None) -> Any:
    """The transform that encodes ``columns`` for a network: the one choice shared by the
    estimators and :func:`load_exported`.

    A baseline (``network`` config of type ``"baseline"``) reads no feature, only the row
    count; sequence and shared-embedding columns need the extended transform (padded
    sequences, shared ids); every other model the plain :class:`FeatureTransform`.
    """
    from trainrun.feature_columns import FeatureTransform
    from trainrun.feature_columns._extra_layers import ExtendedTransform, needs_extended
    from trainrun.modules._build import union_columns

    if isinstance(network, Mapping) and network.get("type") == "baseline":
        from trainrun.modules.baseline import RowsTransform

        return RowsTransform()
    cols = union_columns(columns)
    return ExtendedTransform(cols) if needs_extended(cols) else FeatureTransform(cols)


def _built(build: Callable[..., Any], config: dict[str, Any], columns: Any, spec_path: Path) -> Any:
    try:
        return build(config, columns)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelDirError(
            f"The export spec {spec_path} describes a network that cannot be built "
            f"({type(exc).__name__}: {exc}); it is damaged. Export the model again."
        ) from None


# ----------------------------------------------------------------------------- helpers


def _as_columns(data: Any) -> dict[str, Any]:
    if hasattr(data, "to_pydict") and hasattr(data, "column_names"):  # pyarrow.Table
        return {
            name: data.column(name).to_numpy(zero_copy_only=False) for name in data.column_names
        }
    if hasattr(data, "columns") and hasattr(data, "iloc"):  # pandas.DataFrame
        return {str(c): data[c].to_numpy() for c in data.columns}
    if isinstance(data, Mapping):
        return {str(k): np.asarray(v) for k, v in data.items()}
    from trainrun.exceptions import InputError

    raise InputError(
        "predict() takes a pandas DataFrame, a dict of arrays or a pyarrow Table. "
        f"Received: {type(data).__name__}"
    )


def _num_rows(data: Mapping[str, Any]) -> int:
    return len(next(iter(data.values()))) if data else 0


def predictions_to_frame(
    outputs: list[dict[str, np.ndarray]], predict_keys: Sequence[str] | None = None
) -> Any:
    """Batches of prediction dicts -> one DataFrame (wide keys become ``key_0 .. key_k``)."""
    import pandas as pd

    if not outputs:
        return pd.DataFrame()
    columns: dict[str, Any] = {}
    for key in outputs[0]:
        values = np.concatenate([o[key] for o in outputs])
        values = values.reshape(len(values), -1)
        if values.shape[1] == 1:
            columns[key] = values[:, 0]
        else:
            for i in range(values.shape[1]):
                columns[f"{key}_{i}"] = values[:, i]
    return pd.DataFrame(columns)
