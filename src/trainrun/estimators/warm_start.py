"""Warm starting: initialise a new model from another model's checkpoint or export.

``warm_start_from`` takes a path (every weight whose name and shape match is copied)
or, as tf.estimator, a :class:`WarmStartSettings`:

- ``vars_to_warm_start``: which of the new model's weights to copy, a regular
  expression or a list of them (names as ``estimator.get_variable_names()`` lists);
- ``var_name_to_prev_var_name``: new name -> the name the weight had in the old model;
- ``var_name_to_vocab_info``: column name -> :class:`VocabInfo`, the old vocabulary
  of a vocabulary column when it is not the one the checkpoint stores.

Vocabulary remapping. The rows (or, for a DNN's first layer, the input columns) that
belong to a vocabulary column follow their *words*: a word in both vocabularies takes
its old row, a new word (and each out-of-vocabulary bucket) keeps its fresh
initialisation. Every table a column feeds is remapped: a linear model's weights, an
embedding, and the one-hot inputs of a DNN's first layer. Unlike tf.estimator, the old
vocabulary need not be given: checkpoints store their columns' vocabularies, so a
changed vocabulary is remapped automatically; :class:`VocabInfo` overrides it.

>>> WarmStartSettings("old_model_dir", vars_to_warm_start="linear.*")
WarmStartSettings(ckpt_to_initialize_from='old_model_dir', vars_to_warm_start='linear.*')
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainrun.exceptions import ModelDirError, UsageError

__all__ = ["VocabInfo", "WarmStartSettings"]


@dataclass(frozen=True)
class VocabInfo:
    """The old vocabulary of one vocabulary column (tf.estimator's ``VocabInfo``).

    ``old_vocab`` is a list of words or the path of a vocabulary file (one word a line);
    ``old_vocab_size`` keeps only its first N words (-1: all). ``new_vocab`` may be
    given for checking: it must then equal the new column's vocabulary.
    """

    new_vocab: Sequence[Any] | str | os.PathLike[str] | None = None
    old_vocab: Sequence[Any] | str | os.PathLike[str] | None = None
    old_vocab_size: int = -1
    num_oov_buckets: int = 0

    def old_words(self) -> list[str] | None:
        words = _words(self.old_vocab)
        if words is not None and self.old_vocab_size >= 0:
            words = words[: self.old_vocab_size]
        return words


@dataclass(frozen=True)
class WarmStartSettings:
    """What to warm-start from and which weights (tf.estimator's ``WarmStartSettings``)."""

    ckpt_to_initialize_from: str | os.PathLike[str]
    vars_to_warm_start: str | Sequence[str] | None = ".*"
    var_name_to_vocab_info: Mapping[str, VocabInfo] = field(default_factory=dict)
    var_name_to_prev_var_name: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ckpt_to_initialize_from, (str, os.PathLike)):
            raise UsageError(
                "WarmStartSettings needs ckpt_to_initialize_from to be a path to a model "
                "directory, a checkpoint (ckpt-N.json) or an export. Received: "
                f"ckpt_to_initialize_from={self.ckpt_to_initialize_from!r}"
            )
        patterns = self.patterns()
        for p in patterns:
            try:
                re.compile(p)
            except re.error as exc:
                raise UsageError(
                    f"WarmStartSettings' vars_to_warm_start must hold regular expressions; "
                    f"{p!r} is not one ({exc}). Received: vars_to_warm_start="
                    f"{self.vars_to_warm_start!r}"
                ) from None
        for name, info in dict(self.var_name_to_vocab_info or {}).items():
            if not isinstance(info, VocabInfo):
                raise UsageError(
                    "WarmStartSettings' var_name_to_vocab_info maps column names to "
                    f"VocabInfo(...). Received: {name!r}: {info!r}"
                )

    def patterns(self) -> list[str]:
        v = self.vars_to_warm_start
        if v is None:
            return []
        return [v] if isinstance(v, str) else [str(p) for p in v]

    def wants(self, name: str) -> bool:
        return any(re.match(p, name) for p in self.patterns())

    def __repr__(self) -> str:
        parts = [f"ckpt_to_initialize_from={os.fspath(self.ckpt_to_initialize_from)!r}"]
        if self.vars_to_warm_start != ".*":
            parts.append(f"vars_to_warm_start={self.vars_to_warm_start!r}")
        if self.var_name_to_vocab_info:
            parts.append(f"var_name_to_vocab_info={dict(self.var_name_to_vocab_info)!r}")
        if self.var_name_to_prev_var_name:
            parts.append(f"var_name_to_prev_var_name={dict(self.var_name_to_prev_var_name)!r}")
        return f"WarmStartSettings({', '.join(parts)})"


def _words(vocab: Any) -> list[str] | None:
    if vocab is None:
        return None
    if isinstance(vocab, (str, os.PathLike)):
        path = Path(vocab)
        if not path.is_file():
            raise ModelDirError(
                f"VocabInfo names a vocabulary file that does not exist: {path}. "
                f"Received: {os.fspath(vocab)!r}"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        return [line.strip() for line in lines]
    return [str(v) for v in vocab]


# ----------------------------------------------------------------------------- reading


def read_source(path: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(weights, meta) of a model directory, checkpoint or export; meta may be None."""
    from trainrun.model_dir.checkpoints import load_checkpoint
    from trainrun.model_dir.export import read_export_files

    if (path / "spec.json").exists() and (path / "model.safetensors").exists():
        return read_export_files(path)  # checked: a damaged export is a ModelDirError
    if path.exists():
        try:
            ckpt = load_checkpoint(path)
        except ModelDirError as exc:
            raise ModelDirError(f"warm_start_from={os.fspath(path)!r}: {exc}") from exc
        return ckpt.model_state, ckpt.meta
    raise ModelDirError(
        "warm_start_from must name a model directory, a checkpoint (ckpt-N.json) or an "
        f"export folder. Nothing exists at {path}. Received: warm_start_from={os.fspath(path)!r}"
    )


# ----------------------------------------------------------------------------- tables


def _tables(network: Any) -> dict[str, tuple[int, dict[str, tuple[int, int, Any]]]]:
    """Weights laid out by column: name -> (axis, {column name: (start, size, column)})."""
    from trainrun.feature_columns._layers import DenseFeatures, LinearFeatures

    out: dict[str, tuple[int, dict[str, tuple[int, int, Any]]]] = {}
    for path, module in network.named_modules():
        prefix = f"{path}." if path else ""
        if isinstance(module, (LinearFeatures, DenseFeatures)):
            for i, emb in enumerate(module.embeddings):
                col: Any = emb.column
                out[f"{prefix}embeddings.{i}.bag.weight"] = (
                    0,
                    {col.name: (0, col.num_buckets, col)},
                )
        if isinstance(module, LinearFeatures) and module._cats is not None:
            ids = module._cats
            out[f"{prefix}categorical.weight"] = (
                0,
                {
                    c.name: (off, size, c)
                    for c, off, size in zip(ids.columns, ids.offsets, ids.sizes, strict=True)
                },
            )
        if isinstance(module, DenseFeatures) and module._onehot is not None:
            # The one-hot block feeds the first layer of the DNN that owns these features.
            owner = path.rsplit(".", 1)[0] if "." in path else ""
            first = f"{owner}.layers.0.weight" if owner else "layers.0.weight"
            # layout: numeric columns, then the one-hot blocks in _onehot's order, then
            # the embeddings; key each slice by its column's name (layout's display names
            # may differ from the columns').
            hot = list(module._onehot.columns)
            n_numeric = len(module.layout) - len(hot) - len(module.embeddings)
            entries: dict[str, tuple[int, int, Any]] = {}
            for i, (name, start, end) in enumerate(module.layout):
                col = hot[i - n_numeric] if n_numeric <= i < n_numeric + len(hot) else None
                entries[col.name if col is not None else name] = (start, end - start, col)
            out[first] = (1, entries)
    return out


def _vocab_of(column: Any) -> list[str] | None:
    from trainrun.feature_columns._columns import VocabularyColumn

    if isinstance(column, VocabularyColumn):
        return [str(v) for v in column.vocabulary]
    return None


def _row_map(new_col: Any, old_col: Any, new_size: int, old_size: int, info: VocabInfo | None):
    """For each new row, the old row it takes (-1: keep the fresh value), or None to skip."""
    new_words = _vocab_of(new_col)
    old_words = info.old_words() if info is not None else None
    if old_words is None:
        old_words = _vocab_of(old_col)
    if new_words is not None and old_words is not None:
        if info is not None and info.new_vocab is not None and _words(info.new_vocab) != new_words:
            raise ModelDirError(
                f"VocabInfo for column {new_col.name!r} gives a new_vocab that is not the "
                "column's vocabulary. Drop new_vocab or make them equal."
            )
        index = {w: i for i, w in enumerate(old_words) if i < old_size}
        rows = [index.get(w, -1) for w in new_words]
        return rows + [-1] * (new_size - len(rows))  # OOV buckets start fresh
    if new_size == old_size:
        return list(range(new_size))
    return None


def warm_start(estimator: Any, source: Any) -> list[str]:
    """Copy weights into ``estimator.network_`` from ``source`` (a path or WarmStartSettings).

    Returns the names of the weights initialised (wholly or in part).
    """
    import torch

    settings = (
        source
        if isinstance(source, WarmStartSettings)
        else WarmStartSettings(source)  # every weight whose name and shape match
    )
    path = Path(settings.ckpt_to_initialize_from)
    state, meta = read_source(path)
    network = estimator.network_
    own = network.state_dict()
    new_tables = _tables(network)
    old_tables = _old_tables(meta)
    infos = dict(settings.var_name_to_vocab_info or {})
    prev = dict(settings.var_name_to_prev_var_name or {})
    loaded: list[str] = []
    updates: dict[str, torch.Tensor] = {}
    for name, target in own.items():
        if not settings.wants(name):
            continue
        old_name = prev.get(name, name)
        if old_name not in state:
            continue
        old = state[old_name]
        if name in new_tables and old_name in old_tables:
            value = _remap(target, old, new_tables[name], old_tables[old_name], infos)
        elif tuple(old.shape) == tuple(target.shape):
            value = old.to(target.dtype)
        else:
            value = None
        if value is not None:
            updates[name] = value
            loaded.append(name)
    if prev and not set(prev.values()) & set(state):
        raise ModelDirError(
            f"var_name_to_prev_var_name names weights {sorted(prev.values())[:5]} that "
            f"{path} does not hold. Its weights: {sorted(state)[:10]}"
        )
    network.load_state_dict(updates, strict=False)
    _adopt_scaling(estimator, meta)
    return sorted(loaded)


def _old_tables(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The old network's tables, rebuilt from its stored config (no weights needed)."""
    if not meta or "network" not in meta or "columns" not in meta:
        return {}
    from trainrun.feature_columns import columns_from_config
    from trainrun.modules._build import build_network

    try:
        columns = {part: columns_from_config(cfg) for part, cfg in meta["columns"].items()}
        return _tables(build_network(meta["network"], columns))
    except Exception:  # an old config this version cannot rebuild: plain name/shape copy
        return {}


def _remap(target: Any, old: Any, new_table: Any, old_table: Any, infos: Mapping[str, Any]):
    import torch

    axis, new_entries = new_table
    old_axis, old_entries = old_table
    if axis != old_axis or target.dim() != old.dim():
        return None
    other = [d for d in range(target.dim()) if d != axis]
    if any(target.shape[d] != old.shape[d] for d in other):
        return None
    value = target.detach().clone()
    copied = False
    for col_name, (start, size, col) in new_entries.items():
        found = old_entries.get(col_name)
        if found is None:
            continue
        old_start, old_size, old_col = found
        info = infos.get(col_name) or (infos.get(col.key) if hasattr(col, "key") else None)
        rows = _row_map(col, old_col, size, old_size, info)
        if rows is None:
            continue
        src = torch.tensor([old_start + r for r in rows if r >= 0], dtype=torch.long)
        dst = torch.tensor([start + i for i, r in enumerate(rows) if r >= 0], dtype=torch.long)
        if len(src):
            value.index_copy_(axis, dst, old.index_select(axis, src).to(value.dtype))
            copied = True
    return value if copied else None


def _adopt_scaling(estimator: Any, meta: Mapping[str, Any] | None) -> None:
    """A regression model warm-started from a standardised one keeps its target scaling."""
    head = (meta or {}).get("head") or {}
    if head.get("label_mean") is not None and hasattr(estimator.head_, "set_label_scaling"):
        if len(head["label_mean"]) == estimator.head_.label_dimension:
            estimator.head_.set_label_scaling(head["label_mean"], head["label_scale"])
