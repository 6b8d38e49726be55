"""The LightGBM engine behind ``BoostedTrees*(engine="lightgbm")``.

The estimator (``boosted_trees.py``) owns the columns, the head, the checkpoints' names
and the callbacks; this module owns what LightGBM does: the parameters tf's arguments
map to, the training set (streamed files go through a memory-mapped spill, so only
LightGBM's binned copy stays in memory), the boosting loop, margins, the model's text
format and the gains.

==========================  =====================================================
tf argument                 LightGBM
==========================  =====================================================
``n_trees``                 boosting rounds (one global step per tree)
``max_depth``               ``max_depth``, with ``num_leaves = 2 ** max_depth`` (a
                            depth-wise tree's leaves at most)
``learning_rate``           ``learning_rate``
``l1_regularization``       ``lambda_l1``
``l2_regularization``       ``lambda_l2``
``tree_complexity``         ``min_gain_to_split`` (LightGBM prunes while growing:
                            ``"pre"`` and ``"post"`` both map to it)
``min_node_weight``         ``min_sum_hessian_in_leaf`` (at least 1e-3, LightGBM's
                            default: at 0 LightGBM aborts on small data)
``center_bias``             ``boost_from_average`` (the weighted prior, log class
                            priors or label mean, kept in the model's first tree)
``n_batches_per_layer``     ``bagging_fraction = k * batch_size / rows`` each tree
``quantile_sketch_epsilon`` ``max_bin = ceil(1 / epsilon)`` (at most 255)
==========================  =====================================================

LightGBM's own defaults hold for what tf has no argument for (notably
``min_data_in_leaf=20``: no leaf holds fewer than 20 rows, whatever their weights).
``engine_params`` sets any LightGBM parameter, by its name or an alias (``eta``,
``subsample`` ...: each overrides what the table sets); a name LightGBM does not know, and
``num_iterations`` (``n_trees`` says it), are refused. The logged training loss is always
the head's (``metric`` in ``engine_params`` adds metrics, it does not replace the loss).
Training stops early, without an error, when no split is left that meets the minimums;
the global step is then the number of trees in the model.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trainrun.exceptions import InputError, MissingExtraError, ModelDirError, UsageError

#: The least ``min_sum_hessian_in_leaf`` passed to LightGBM (its own default).
MIN_HESSIAN = 1e-3
#: Rows LightGBM reads from a spilled training set at a time while binning it.
SPILL_BATCH = 65_536


def lgb() -> Any:
    try:
        import lightgbm
    except ImportError:
        raise MissingExtraError(
            "lightgbm", "trees", "BoostedTreesClassifier/Regressor(engine='lightgbm')"
        ) from None
    return lightgbm


def feature_names(names: list[str]) -> list[str]:
    """Names LightGBM takes (no JSON punctuation, no spaces), kept distinct."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        clean = re.sub(r"[^\w.=+-]", "_", name) or "f"
        base, k = clean, 1
        while clean in seen:
            k += 1
            clean = f"{base}_{k}"
        seen.add(clean)
        out.append(clean)
    return out


def threads(est: Any) -> int:
    """RunConfig.num_threads, or one per core this process may run on (its CPU affinity, as
    ``taskset`` or a container's cpuset leave it): for training and the estimator's predictions.
    Both engines take it."""
    if est.config_.num_threads:
        return int(est.config_.num_threads)
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1


def params(est: Any, rows: int | None, batch_size: int) -> dict[str, Any]:
    """LightGBM's parameters for the estimator's tf arguments (module docstring's table)."""
    kind = est.head_.kind
    if kind == "binary":
        objective: dict[str, Any] = {"objective": "binary", "metric": "binary_logloss"}
    elif kind == "multiclass":
        objective = {
            "objective": "multiclass",
            "num_class": est.n_classes,
            "metric": "multi_logloss",
        }
    else:
        objective = {"objective": "regression", "metric": "l2"}
    depth = int(est.max_depth)
    out: dict[str, Any] = {
        **objective,
        "max_depth": depth,
        "num_leaves": int(min(2**depth, 131_072)),
        "learning_rate": float(est.learning_rate),
        "lambda_l1": float(est.l1_regularization),
        "lambda_l2": float(est.l2_regularization),
        "min_gain_to_split": float(est.tree_complexity) if est.pruning_mode != "none" else 0.0,
        # at least LightGBM's own default: at 0 (tf's default) a leaf can come out with no
        # hessian at all once the trees fit the rows, and LightGBM aborts on the split
        # ("Check failed: best_split_info.left_count > 0")
        "min_sum_hessian_in_leaf": max(float(est.min_node_weight), MIN_HESSIAN),
        "boost_from_average": bool(est.center_bias),
        "max_bin": int(min(255, max(2, math.ceil(1 / est.quantile_sketch_epsilon)))),
        "num_threads": threads(est),
        "seed": est.config_.seed or 0,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }
    if est.n_batches_per_layer is not None and rows:
        frac = min(1.0, est.n_batches_per_layer * batch_size / rows)
        if frac < 1.0:
            out.update(bagging_fraction=frac, bagging_freq=1)
    mine = out["metric"]
    out.update(engine_params(est))
    # the head's loss is what training logs: a metric of the user's comes as well, not instead
    theirs = out["metric"]
    theirs = [theirs] if isinstance(theirs, str) else list(theirs or [])
    out["metric"] = [mine, *(m for m in theirs if m != mine)]
    return out


#: LightGBM parameters trainrun sets from its own arguments, and the argument to use.
_OWNED = {"num_iterations": "n_trees (one tree per step; steps= / max_steps= in train())"}


def _aliases() -> dict[str, str]:
    """Every LightGBM parameter name and alias -> its main name (LightGBM's own table)."""
    table = lgb().basic._ConfigAliases
    if table.aliases is None:
        table.aliases = table._get_all_param_aliases()
    return {alias: main for main, names in table.aliases.items() for alias in names}


def engine_params(est: Any) -> dict[str, Any]:
    """``est.engine_params`` under LightGBM's main names, so that an alias (``eta``,
    ``subsample``, ``min_child_samples`` ...) overrides what trainrun sets instead of being
    ignored by LightGBM; an unknown name (LightGBM would ignore it silently) is refused."""
    given = dict(est.engine_params or {})
    if not given:
        return {}
    cls = type(est).__name__
    names = _aliases()
    out: dict[str, Any] = {}
    for key, value in given.items():
        main = names.get(key)
        if main is None:
            close = difflib.get_close_matches(key, list(names), n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise UsageError(
                f"{cls}(engine='lightgbm'): engine_params names {key!r}, which is not a "
                f"LightGBM parameter.{hint} See LightGBM's Parameters page for the names. "
                f"Received: engine_params={given!r}"
            )
        if main in _OWNED:
            raise UsageError(
                f"{cls}(engine='lightgbm'): engine_params sets {key!r}, which trainrun sets "
                f"from its own argument: use {_OWNED[main]} instead. Received: "
                f"engine_params={given!r}"
            )
        out[main] = value
    return out


def refused(est: Any, err: Exception) -> Exception:
    """LightGBM's error about the parameters as a UsageError naming the engine_params
    responsible (all of them when its text names none); ``err`` itself without any."""
    given = dict(est.engine_params or {})
    if not given:
        return err
    text = re.sub(r"\s+at \S+, line \d+\s*\.?", "", str(err)).strip()
    names = _aliases()
    mains: dict[str, str] = {k: names.get(k) or k for k in given}
    named = [k for k in given if re.search(rf"\b({re.escape(k)}|{re.escape(mains[k])})\b", text)]
    named = named or list(given)
    return UsageError(
        f"{type(est).__name__}(engine='lightgbm'): LightGBM refused engine_params "
        f"{', '.join(repr(k) + '=' + repr(given[k]) for k in named)}: {text}. Fix the value (see "
        "LightGBM's Parameters page for its type and range) or leave it out."
    )


class _Spill:
    """A training set written to a temporary file chunk by chunk, read back as a
    LightGBM ``Sequence`` read a batch at a time: the raw rows never sit in memory whole."""

    def __init__(self, width: int) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="trainrun-lightgbm-")
        self.path = Path(self._dir.name) / "rows.f32"
        self.width = width
        self.rows = 0
        self._reader: Any = None
        self._file: Any = open(self.path, "wb")  # noqa: SIM115 - closed in finish()

    def write(self, x: np.ndarray) -> None:
        np.ascontiguousarray(x, dtype=np.float32).tofile(self._file)  # no bytes copy
        self.rows += len(x)

    def sequence(self) -> Any:
        self._file.close()
        # Read, not memory-mapped: a map's pages count in the process's resident memory
        # (4 B a value: as much as the rows in memory); read pages stay the kernel's cache.
        f = self._reader = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        n, width, size = self.rows, self.width, 4 * self.width

        class _Rows(lgb().Sequence):  # type: ignore[misc]
            batch_size = SPILL_BATCH

            def __len__(self) -> int:
                return n

            def __getitem__(self, idx: Any) -> np.ndarray:
                if isinstance(idx, slice):  # a batch to bin, as stored (float32)
                    start, stop, _ = idx.indices(n)
                    out = np.empty((stop - start, width), dtype=np.float32)
                    f.seek(start * size)
                    f.readinto(out.data.cast("B"))
                    return out
                # one row of LightGBM's sample for the bins, as float64
                f.seek(int(idx) * size)
                return np.frombuffer(f.read(size), dtype=np.float32).astype(np.float64)

        return _Rows()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._reader is not None:
            self._reader.close()
        self._dir.cleanup()


def train_set(est: Any, input_fn: Any, in_memory: bool) -> tuple[Any, int, Any]:
    """``(lightgbm.Dataset, rows, spill or None)``: a DataFrame's rows as one matrix; a
    file's streamed into a spill (close it once the Dataset is constructed). When the
    estimator already has trees, each row starts from their margins (resumed training)."""
    feats = est.features_
    names = feature_names(feats.names)
    categorical = [i for i, t in enumerate(feats.types) if t == "c"]
    old = est.booster_
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    ws: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    spill = None if in_memory else _Spill(len(names))
    try:
        # a spill needs no big chunks: smaller ones keep the encoding's peak small
        chunks = est._chunks(input_fn, labels=True, rows=SPILL_BATCH if spill else None)
        for x, y, w in chunks:
            if spill is None:
                xs.append(x)
            else:
                spill.write(x)
            ys.append(np.asarray(y).reshape(len(x), -1))
            if w is not None:
                ws.append(w)
            if old is not None:
                # float64 as LightGBM keeps its scores: float32 margins would make the
                # resumed trees differ from one run's in the last bits
                starts.append(raw_margins(old, x, threads(est)))
        if not ys:
            raise InputError(
                "input_fn produced no rows to train on. Check that the data is not empty."
            )
        y = np.concatenate(ys)
        y = y[:, 0] if y.shape[1] == 1 else y
        if spill is None:
            data: Any = np.concatenate(xs) if len(xs) > 1 else xs[0]
        else:
            data = [spill.sequence()]
        init = None
        if starts:
            init = np.concatenate(starts)
            init = init[:, 0] if init.shape[1] == 1 else init
        ds = lgb().Dataset(
            data,
            label=y,
            weight=np.concatenate(ws) if ws else None,
            init_score=init,
            feature_name=names,
            categorical_feature=categorical or "auto",
            params=params(est, None, 1),
            free_raw_data=True,
        )
        return ds, len(y), spill
    except BaseException:
        if spill is not None:
            spill.close()
        raise


def grow(
    est: Any,
    input_fn: Any,
    start: int,
    limit: int,
    batch_size: int,
    in_memory: bool,
    on_tree: Any,
) -> Any:
    """Grow trees ``start..limit`` on the input's rows; after each, ``on_tree(booster,
    loss or None, rows)`` returns True to stop. Returns the booster, the stored trees first."""
    lib = lgb()
    boosting = engine_params(est).get("boosting")  # misspelt names fail before any reading
    if est.booster_ is not None and boosting in ("rf", "random_forest"):
        raise UsageError(
            f"{type(est).__name__}(engine='lightgbm') cannot grow more trees onto the "
            f"{est.global_step_} stored in model_dir {est.model_dir_}: LightGBM's random forest "
            "(engine_params boosting='rf') averages its trees and does not continue from "
            "stored ones. Grow all n_trees in one train() call, in a new model_dir."
        )
    ds, rows, spill = train_set(est, input_fn, in_memory)
    p = params(est, rows, batch_size)
    metric = p["metric"][0]
    every = max(1, (limit - start) // 20)
    try:
        booster = lib.Booster(params=p, train_set=ds)  # bins the rows: the spill can go
    except lib.basic.LightGBMError as err:
        raise refused(est, err) from None
    finally:
        if spill is not None:
            spill.close()
    if est.booster_ is not None:
        # Resume: the rows start from the stored trees' margins (init_score above) and the
        # stored trees go in front of the new ones, as lgb.train(init_model=) does, but
        # without re-reading the input to predict it.
        from lightgbm import basic

        basic._safe_call(basic._LIB.LGBM_BoosterMerge(booster._handle, est.booster_._handle))
    done = start
    while done < limit:
        before = booster.current_iteration()
        try:
            booster.update()
        except lib.basic.LightGBMError as err:
            text = re.sub(r"\s+at \S+, line \d+\s*\.?", "", str(err)).strip()
            raise UsageError(
                f"{type(est).__name__}(engine='lightgbm'): LightGBM failed growing tree "
                f"{done + 1}: {text}. The trees before it are kept as far as the last "
                "checkpoint. A larger min_node_weight or l2_regularization (or engine='xgboost') "
                "avoids LightGBM's failing checks on small data."
            ) from None
        if booster.current_iteration() == before:
            break  # no split reaches the minimums: nothing more to learn from these rows
        done += 1
        loss = None
        if (done - start) % every == 0 or done == limit:
            value = [r[2] for r in booster.eval_train() if r[1] == metric]
            loss = float(value[0]) if value else None
        if on_tree(booster, loss, rows):
            break
    booster.free_dataset()
    return booster


def raw_margins(booster: Any, x: np.ndarray, num_threads: int | None = None) -> np.ndarray:
    """Every tree's summed output per row, ``[N, outputs]`` float64 (``best_iteration``,
    which LightGBM's predict would otherwise stop at, is ignored: all trees count), on
    ``num_threads`` threads (None: LightGBM's default)."""
    extra = {} if num_threads is None else {"num_threads": num_threads}
    m = booster.predict(x, raw_score=True, start_iteration=0, num_iteration=-1, **extra)
    return np.asarray(m, dtype=np.float64).reshape(len(x), -1)


def save(booster: Any) -> bytes:
    return booster.model_to_string(num_iteration=-1).encode()


def load(data: bytes, path: Path) -> Any:
    try:
        return lgb().Booster(model_str=data.decode())
    except Exception as err:
        raise ModelDirError(
            f"{path} is not a LightGBM model LightGBM can read ({err}). Delete it (and its "
            ".json) to go back to the previous checkpoint, or use a new model_dir."
        ) from None


def gains(booster: Any, names: list[str]) -> dict[str, float]:
    """Total split gain per matrix column (by the estimator's own column names)."""
    values = booster.feature_importance(importance_type="gain", iteration=-1)
    return {n: float(v) for n, v in zip(names, values, strict=True)}
