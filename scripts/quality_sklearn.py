"""Every estimator family against the matching scikit-learn model, on scikit-learn's data.

Data sets (bundled with scikit-learn): breast_cancer (binary: test AUC), digits and wine
(multi-class: test accuracy), diabetes (regression: test R²). Each metric is the **mean
over ``--splits`` (default 5) repeated 75/25 splits** (seeds 0, 1, ...; stratified for the
classifiers), the same splits for trainrun and scikit-learn: wine's test split is 45 rows
(one example = 0.022 of accuracy), so a single split is too noisy to judge a 0.01 target.
Within a split the features are standardised with the training part's mean and standard
deviation, and every model sees the same arrays.

==================  ===================================  ====================================
trainrun            budget                               scikit-learn reference
==================  ===================================  ====================================
Linear*             100 epochs, batch 32, defaults        LogisticRegression(C=1) / Ridge(1)
DNN*                [64, 32], 30 epochs, batch 32         MLPClassifier / MLPRegressor
                                                          ((64, 32), max_iter=1000)
BoostedTrees*       per data set, ``TREE_BUDGETS``        HistGradientBoosting* (200, depth 3)
                    (chosen on validation, see below)
Estimator(model_fn) a residual MLP (width 64), as DNN     MLPClassifier / MLPRegressor
Baseline*           10 epochs                             DummyClassifier(prior) / DummyRegressor
==================  ===================================  ====================================

The boosted trees' budgets (tf's own arguments: ``n_trees``, ``max_depth``,
``learning_rate``, ``l1_regularization``, ``l2_regularization``, ``tree_complexity``,
``min_node_weight``, ``center_bias``) come from ``--tune-trees``: each outer split's
training part is cut into ``--folds`` (5) folds (stratified for classifiers), every budget
of the data set's grid (``TREE_GRID``; digits: ``SMALL_TREE_GRID``) is trained on the
other folds and scored on each fold, and the budget with the best mean validation metric is kept (ties: the lower
validation loss, then fewer trees, then shallower). The test parts are never read.
``--tune-trees`` prints the ranking and the dict to paste into ``TREE_BUDGETS``.

For the boosted trees the table also gives XGBoost called directly with the same
parameters, which tells the engine's own result from the wrapper's, and the estimator at
tf's defaults (100 trees, depth 6, learning rate 0.1), what a user gets without tuning.

The target (issue 12) is each family within 0.01 (AUC / accuracy) or 0.03 (R²) of its
reference; the table marks each row (on the means). Writes ``docs/results-families.md``
(``--output -`` only prints). Run: ``.venv/bin/python scripts/quality_sklearn.py`` (about
two minutes on 2 cores; ``--tune-trees --jobs 2``: 8 to 23 minutes a data set, see
docs/estimator-families.md; ``--splits 1`` for a quick look, ``--grid smoke`` for a smoke
test of the tuning).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

SEED = 0
SPLITS = 5  # the splits' seeds are SEED, SEED + 1, ...
ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = {"auc": 0.01, "accuracy": 0.01, "r2": 0.03}
DATA = ["breast_cancer", "digits", "wine", "diabetes"]

#: The budgets --tune-trees scores: tf's own BoostedTrees arguments only (n_trees are
#: prefixes of one run: free to add). A tree_complexity > 0 goes with pruning_mode "post".
TREE_GRID: dict[str, tuple] = {
    "n_trees": (50, 100, 200, 400),
    "max_depth": (2, 3, 4, 6),
    "learning_rate": (0.05, 0.1, 0.3),
    "l1_regularization": (0.0, 0.5),
    "l2_regularization": (0.0, 1.0),
    "tree_complexity": (0.0, 0.3),
    "min_node_weight": (0.0, 1.0, 2.0, 4.0, 8.0),
    "center_bias": (False, True),
}
#: digits (10 classes, 1,347 training rows: each budget costs ten times wine's) scores a
#: smaller grid: the axes that mattered there, around what the wider grid chose elsewhere.
SMALL_TREE_GRID: dict[str, tuple] = {
    "n_trees": (100, 200, 400),
    "max_depth": (2, 3),
    "learning_rate": (0.1, 0.3),
    "l1_regularization": (0.0,),
    "l2_regularization": (0.0, 1.0),
    "tree_complexity": (0.0,),
    "min_node_weight": (0.0, 1.0, 4.0),
    "center_bias": (True,),
}
#: The grid of the first tuning (a single 75/25 validation split then), kept to compare.
PREVIOUS_TREE_GRID: dict[str, tuple] = {
    "n_trees": (100, 200, 400), "max_depth": (2, 3, 4, 6), "learning_rate": (0.05, 0.1, 0.3),
    "l2_regularization": (0.0, 1.0), "min_node_weight": (0.0, 1.0, 2.0),
}  # fmt: skip
#: A few budgets, for a smoke test of --tune-trees (``--grid smoke``).
SMOKE_TREE_GRID: dict[str, tuple] = {
    "n_trees": (20, 40), "max_depth": (2,), "learning_rate": (0.3,), "l1_regularization": (0.0,),
    "l2_regularization": (0.0,), "tree_complexity": (0.0, 0.3), "min_node_weight": (0.0, 4.0),
    "center_bias": (False, True),
}  # fmt: skip
GRIDS = {
    "full": TREE_GRID,
    "small": SMALL_TREE_GRID,
    "previous": PREVIOUS_TREE_GRID,
    "smoke": SMOKE_TREE_GRID,
}
#: The grid each data set is tuned on (the others: "full").
GRID_OF = {"digits": "small"}
FOLDS = 5  # --tune-trees: stratified k-fold cross-validation on each outer training part

#: What --tune-trees chose for each data set (cross-validation on training parts; see the docstring).
TREE_BUDGETS: dict[str, dict[str, float | bool]] = {
    "breast_cancer": {"n_trees": 400, "max_depth": 2, "learning_rate": 0.3, "l1_regularization": 0.0, "l2_regularization": 1.0, "tree_complexity": 0.0, "min_node_weight": 0.0, "center_bias": False},
    "digits": {"n_trees": 400, "max_depth": 2, "learning_rate": 0.3, "l1_regularization": 0.0, "l2_regularization": 0.0, "tree_complexity": 0.0, "min_node_weight": 0.0, "center_bias": True},
    "wine": {"n_trees": 400, "max_depth": 4, "learning_rate": 0.3, "l1_regularization": 0.0, "l2_regularization": 1.0, "tree_complexity": 0.0, "min_node_weight": 4.0, "center_bias": False},
    "diabetes": {"n_trees": 100, "max_depth": 2, "learning_rate": 0.05, "l1_regularization": 0.5, "l2_regularization": 0.0, "tree_complexity": 0.0, "min_node_weight": 4.0, "center_bias": True},
}  # fmt: skip


def _residual():
    """A small residual MLP: the custom model of the table."""
    import torch

    class Residual(torch.nn.Module):
        def __init__(self, in_features: int, units: int, width: int = 64) -> None:
            super().__init__()
            self.inp = torch.nn.Linear(in_features, width)
            self.block = torch.nn.Sequential(
                torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, width)
            )
            self.out = torch.nn.Linear(width, units)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.inp(x))
            return self.out(torch.relu(h + self.block(h)))

    return Residual


def kind_of(name: str) -> str:
    return "r2" if name == "diabetes" else ("auc" if name == "breast_cancer" else "accuracy")


def standardised(Xtr, Xte):
    mean, std = Xtr.mean(axis=0), Xtr.std(axis=0)
    std[std == 0] = 1.0
    return (Xtr - mean) / std, (Xte - mean) / std


def split(X, y, kind: str, seed: int, test_size: float = 0.25):
    """One 75/25 split (stratified for classifiers), standardised on its training part."""
    from sklearn.model_selection import train_test_split

    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=None if kind == "r2" else y
    )
    Xtr, Xte = standardised(Xtr, Xte)
    return Xtr, Xte, ytr, yte


def load(name: str, seed: int = SEED):
    """(Xtr, Xte, ytr, yte, kind) of the split with ``seed``."""
    from sklearn import datasets

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    kind = kind_of(name)
    return (*split(X, y, kind, seed), kind)


def score(kind: str, model, X, y) -> float:
    from sklearn.metrics import r2_score, roc_auc_score

    if kind == "auc":
        return float(roc_auc_score(y, model.predict_proba(X)[:, 1]))
    if kind == "accuracy":
        return float((model.predict(X) == y).mean())
    return float(r2_score(y, model.predict(X)))


def families(d: int, n_classes: int, classify: bool, budget: dict):
    """(family, trainrun estimator, fit kwargs, reference name, reference estimator);
    ``budget``: the boosted trees' budget (tf's arguments)."""
    import torch
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    import trainrun as tr

    # one intra-op thread: these networks are tiny, and more threads only contend
    cfg = tr.RunConfig(seed=SEED, progress=False, tensorboard=False, num_threads=1)
    cols = [tr.numeric_column(f"x{i}") for i in range(d)]
    k = {"n_classes": n_classes} if classify else {}
    trees = dict(budget)
    if trees.get("tree_complexity", 0) > 0:
        trees["pruning_mode"] = "post"  # tf: a tree_complexity needs a pruning mode
    linear = {"epochs": 100, "batch_size": 32}
    # 30 epochs: on the smallest sets (diabetes: 331 rows) a (64, 32) network overfits by 100
    nets = {"epochs": 30, "batch_size": 32}
    mlp = (MLPClassifier if classify else MLPRegressor)(
        hidden_layer_sizes=(64, 32), max_iter=1000, random_state=SEED
    )
    if classify:
        head = tr.BinaryHead() if n_classes == 2 else tr.MultiClassHead(n_classes)
        return [
            ("Linear", tr.LinearClassifier(feature_columns=cols, config=cfg, **k), linear,
             "LogisticRegression(C=1)", LogisticRegression(max_iter=5000)),
            ("DNN", tr.DNNClassifier(hidden_units=[64, 32], feature_columns=cols, config=cfg, **k),
             nets, "MLPClassifier((64, 32))", mlp),
            ("BoostedTrees", tr.BoostedTreesClassifier(
                feature_columns=cols, **trees, config=cfg, **k), {},
             "HistGradientBoostingClassifier", HistGradientBoostingClassifier(
                max_iter=200, max_depth=3, learning_rate=0.1, random_state=SEED)),
            ("Estimator(model_fn)", tr.Estimator(model_fn=_residual(), head=head,
             feature_columns=cols, config=cfg), nets, "MLPClassifier((64, 32))", mlp),
            ("Baseline", tr.BaselineClassifier(config=cfg, **k), {"epochs": 10},
             "DummyClassifier(prior)", DummyClassifier(strategy="prior")),
        ]  # fmt: skip
    del torch
    return [
        ("Linear", tr.LinearRegressor(feature_columns=cols, config=cfg), linear,
         "Ridge(alpha=1)", Ridge(alpha=1.0)),
        ("DNN", tr.DNNRegressor(hidden_units=[64, 32], feature_columns=cols, config=cfg), nets,
         "MLPRegressor((64, 32))", mlp),
        ("BoostedTrees", tr.BoostedTreesRegressor(feature_columns=cols, **trees, config=cfg), {},
         "HistGradientBoostingRegressor", HistGradientBoostingRegressor(
            max_iter=200, max_depth=3, learning_rate=0.1, random_state=SEED)),
        ("Estimator(model_fn)", tr.Estimator(model_fn=_residual(), head=tr.RegressionHead(),
         feature_columns=cols, config=cfg), nets, "MLPRegressor((64, 32))", mlp),
        ("Baseline", tr.BaselineRegressor(config=cfg), {"epochs": 10},
         "DummyRegressor(mean)", DummyRegressor()),
    ]  # fmt: skip


def _xgboost_direct(est, kind: str, Xtr, ytr, Xte, yte) -> float:
    """XGBoost's own result with the parameters the estimator passes it."""
    import xgboost as xgb

    params = est._booster_params(len(Xtr), 128)
    params["base_score"] = _start(est, kind, ytr)  # as the estimator sets it
    booster = xgb.train(
        params, xgb.QuantileDMatrix(Xtr, ytr, max_bin=params["max_bin"]), est.n_trees
    )
    pred = booster.predict(xgb.DMatrix(Xte))

    class _Fixed:
        def predict_proba(self, X):
            return np.stack([1 - pred, pred], axis=1)

        def predict(self, X):
            return pred.argmax(axis=1) if pred.ndim == 2 else pred

    return score(kind, _Fixed(), Xte, yte)


def _at_tf_defaults(est):
    """The same boosted-trees estimator with tf's (and trainrun's) defaults for the
    arguments TREE_GRID tunes: what a user gets without choosing a budget."""
    import inspect

    params = est.get_params(deep=False)
    signature = inspect.signature(type(est))
    params.update({k: signature.parameters[k].default for k in [*TREE_GRID, "pruning_mode"]})
    return type(est)(**params)


def _quiet_fit(model, X, y):
    """A scikit-learn fit on one thread (OpenMP models contend with torch's threads on a
    small machine: HistGradientBoosting took 200 s on digits instead of 10), without MLP's
    ConvergenceWarning at max_iter."""
    import warnings

    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        model.fit(X, y)


def run(names: list[str], n_splits: int = SPLITS) -> list[dict]:
    """One row per data set and family: each figure the mean over ``n_splits`` splits."""
    from sklearn import datasets

    rows = []
    for name in names:
        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        kind = kind_of(name)
        classify = kind != "r2"
        n_classes = int(len(np.unique(y))) if classify else 0
        per: dict[str, dict] = {}
        for seed in range(SEED, SEED + n_splits):
            Xtr, Xte, ytr, yte = split(X, y, kind, seed)
            for family, est, fit_kw, ref_name, ref in families(
                Xtr.shape[1], n_classes, classify, TREE_BUDGETS[name]
            ):
                t = time.perf_counter()
                est.fit(Xtr, ytr, **fit_kw)
                ours, ours_s = score(kind, est, Xte, yte), time.perf_counter() - t
                t = time.perf_counter()
                _quiet_fit(ref, Xtr, ytr)
                theirs, theirs_s = score(kind, ref, Xte, yte), time.perf_counter() - t
                engine = defaults = None
                if family == "BoostedTrees":
                    engine = _xgboost_direct(est, kind, Xtr, ytr, Xte, yte)
                    plain = _at_tf_defaults(est)
                    plain.fit(Xtr, ytr)
                    defaults = score(kind, plain, Xte, yte)
                r = per.setdefault(family, {"reference": ref_name, "splits": []})
                r["splits"].append((ours, theirs, engine, defaults, ours_s, theirs_s))
                print(
                    f"{name:14} split {seed} {family:20} {kind:8} trainrun {ours:.4f} "
                    f"({ours_s:5.1f} s)  {ref_name:32} {theirs:.4f} ({theirs_s:4.1f} s)",
                    flush=True,
                )
        for family, r in per.items():
            ours, theirs, engine, defaults, ours_s, theirs_s = zip(*r["splits"], strict=True)
            diffs = np.subtract(ours, theirs)
            row = {
                "data": name, "metric": kind, "family": family, "splits": len(ours),
                "trainrun": float(np.mean(ours)), "reference": r["reference"],
                "sklearn": float(np.mean(theirs)), "diff": float(diffs.mean()),
                "diff_min": float(diffs.min()), "diff_max": float(diffs.max()),
                "engine": None if engine[0] is None else float(np.mean(engine)),
                "defaults": None if defaults[0] is None else float(np.mean(defaults)),
                "s": float(np.mean(ours_s)), "ref_s": float(np.mean(theirs_s)),
            }  # fmt: skip
            row["ok"] = row["diff"] >= -TOLERANCE[kind]
            rows.append(row)
            print(
                f"{name:14} mean of {len(ours)} {family:20} {kind:8} trainrun "
                f"{row['trainrun']:.4f}  {r['reference']:32} {row['sklearn']:.4f}  "
                f"diff {row['diff']:+.4f}  {'ok' if row['ok'] else 'BELOW'}",
                flush=True,
            )
    return rows


def _tree_estimator(kind: str, n_classes: int, budget: dict, cfg):
    """The boosted-trees estimator of ``budget`` (tf's arguments), its head built."""
    import trainrun as tr

    budget = dict(budget)
    if budget.get("tree_complexity", 0) > 0:
        budget["pruning_mode"] = "post"  # tf: a tree_complexity needs a pruning mode
    est = (
        tr.BoostedTreesRegressor(**budget, config=cfg)
        if kind == "r2"
        else tr.BoostedTreesClassifier(n_classes=n_classes, **budget, config=cfg)
    )
    est.head_ = est._build_head()
    return est


def _start(est, kind: str, y) -> float | list[float]:
    """XGBoost's base_score as the estimator sets it (center_bias: from the labels)."""
    return est._base_score(y) if est.center_bias else (0.5 if kind == "auc" else 0.0)


def _fold_scores(task: tuple) -> dict[tuple, tuple[float, float]]:
    """(validation metric, validation loss) of every budget of ``grid`` on one fold of one
    outer training part: {(n_trees, *other values): ...}. The outer test part is dropped
    unread; each budget is one XGBoost run whose prefixes give the smaller n_trees."""
    import itertools

    import xgboost as xgb
    from sklearn import datasets
    from sklearn.model_selection import KFold, StratifiedKFold

    import trainrun as tr

    name, seed, fold, folds, grid = task
    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    kind = kind_of(name)
    n_classes = int(len(np.unique(y)))
    Xtr, _, ytr, _ = split(X, y, kind, seed)  # the test part is dropped unread
    cv = (KFold if kind == "r2" else StratifiedKFold)(folds, shuffle=True, random_state=1000 + seed)
    fit, val = list(cv.split(Xtr, ytr))[fold]
    cfg = tr.RunConfig(seed=SEED, progress=False, tensorboard=False, num_threads=1)
    others = [k for k in grid if k != "n_trees"]
    most = max(grid["n_trees"])
    dfit = dval = None
    out = {}
    for values in itertools.product(*(grid[k] for k in others)):
        est = _tree_estimator(kind, n_classes, dict(zip(others, values, strict=True)), cfg)
        params = est._booster_params(len(fit), 128)
        if dfit is None:  # the same bins for every budget (max_bin does not vary)
            dfit = xgb.QuantileDMatrix(Xtr[fit], ytr[fit], max_bin=params["max_bin"])
            dval = xgb.DMatrix(Xtr[val])
        params["base_score"] = _start(est, kind, ytr[fit])
        booster = xgb.train(params, dfit, most)
        for n in grid["n_trees"]:
            pred = booster.predict(dval, iteration_range=(0, n))
            out[(n, *values)] = _score_pred(kind, ytr[val], pred, n_classes)
    out[("reference",)] = _reference_on_fold(kind, Xtr[fit], ytr[fit], Xtr[val], ytr[val])
    return out


def _reference_on_fold(kind: str, Xfit, yfit, Xval, yval) -> tuple[float, float]:
    """The table's HistGradientBoosting on the same fold: what the tuned trees' validation
    metric compares with (the test parts stay unread)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    cls = HistGradientBoostingRegressor if kind == "r2" else HistGradientBoostingClassifier
    ref = cls(max_iter=200, max_depth=3, learning_rate=0.1, random_state=SEED)
    _quiet_fit(ref, Xfit, yfit)
    pred = ref.predict(Xval) if kind == "r2" else ref.predict_proba(Xval)
    return _score_pred(kind, yval, pred[:, 1] if kind == "auc" else pred, len(np.unique(yfit)))


def tune_trees(
    names: list[str],
    n_splits: int = SPLITS,
    folds: int = FOLDS,
    grid_name: str | None = None,
    jobs: int = 1,
) -> dict[str, dict]:
    """The boosted trees' budget per data set, chosen by cross-validation on training parts.

    For each outer split (the same as the table's), its training part is cut into ``folds``
    stratified folds; XGBoost is run with the parameters the estimator derives from each
    budget of the data set's grid (``GRID_OF``; ``grid_name`` for all) on every fold's
    complement and scored on the fold (``n_trees`` as prefixes of one run). The budget
    with the best mean validation metric over the n_splits x folds parts wins; ties go
    to the lower mean validation loss (log loss; squared error), then fewer trees, then
    shallower. The test parts are never read. ``jobs`` processes share the folds.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    chosen = {}
    pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) if jobs > 1 else None
    try:
        for name in names:
            grid = GRIDS[grid_name or GRID_OF.get(name, "full")]
            others = [k for k in grid if k != "n_trees"]
            t, cpu = time.perf_counter(), time.process_time()
            tasks = [
                (name, seed, fold, folds, grid)
                for seed in range(SEED, SEED + n_splits)
                for fold in range(folds)
            ]
            parts = pool.map(_fold_scores, tasks) if pool else map(_fold_scores, tasks)
            scores: dict[tuple, list[tuple[float, float]]] = {}
            for part in parts:
                for key, value in part.items():
                    scores.setdefault(key, []).append(value)
            reference = np.mean(scores.pop(("reference",)), axis=0)
            mean = {key: np.mean(v, axis=0) for key, v in scores.items()}
            ranked = sorted(mean, key=lambda k: (-mean[k][0], mean[k][1], k[0], k[1]))
            kind = kind_of(name)
            print(
                f"{name}: {len(scores)} budgets x {n_splits} training parts x {folds} folds "
                f"({time.perf_counter() - t:.0f} s wall, {time.process_time() - cpu:.0f} s CPU "
                f"here, {jobs} jobs); best first:",
                flush=True,
            )
            for key in ranked[:8]:
                print(
                    f"  {dict(zip(['n_trees', *others], key, strict=True))}  validation "
                    f"{kind} {mean[key][0]:.4f}  loss {mean[key][1]:.4f}",
                    flush=True,
                )
            print(
                f"  HistGradientBoosting (the table's reference) on the same folds: validation "
                f"{kind} {reference[0]:.4f}  loss {reference[1]:.4f}",
                flush=True,
            )
            chosen[name] = dict(zip(["n_trees", *others], ranked[0], strict=True))
    finally:
        if pool is not None:
            pool.shutdown()
    print("TREE_BUDGETS = {")
    for name, budget in chosen.items():
        print(f"    {name!r}: {budget},")
    print("}")
    return chosen


def _score_pred(kind: str, y, pred, n_classes: int = 0) -> tuple[float, float]:
    """(metric, loss) of predicted probabilities / values: the loss breaks the metric's ties."""
    from sklearn.metrics import log_loss, mean_squared_error, r2_score, roc_auc_score

    if kind == "auc":
        return float(roc_auc_score(y, pred)), float(log_loss(y, pred, labels=[0, 1]))
    if kind == "accuracy":
        loss = float(log_loss(y, pred, labels=list(range(n_classes))))
        return float((pred.argmax(axis=1) == y).mean()), loss
    return float(r2_score(y, pred)), float(mean_squared_error(y, pred))


_SHORT = {"n_trees": "trees", "max_depth": "depth", "learning_rate": "lr",
          "l1_regularization": "l1", "l2_regularization": "l2"}  # fmt: skip


def _budget(b: dict) -> str:
    return ", ".join(f"{b[k]} trees" if k == "n_trees" else f"{_SHORT.get(k, k)} {b[k]}" for k in b)


def _grid_text(grid: dict) -> str:
    n = int(np.prod([len(v) for v in grid.values()]))
    axes = ", ".join(f"{k} {'/'.join(str(v) for v in vals)}" for k, vals in grid.items())
    return f"{axes}: {n} budgets"


#: Each family's budget and reference, as the docs state them (see ``families``).
BUDGETS = [
    ("Linear*", "100 epochs, batch 32, default optimizer (Ftrl)",
     "LogisticRegression(C=1, max_iter=5000) / Ridge(alpha=1)"),
    ("DNN*", "hidden units [64, 32], 30 epochs, batch 32, Adam 0.001",
     "MLPClassifier / MLPRegressor((64, 32), max_iter=1000)"),
    ("BoostedTrees*", "per data set, below", "HistGradientBoosting*(max_iter=200, max_depth=3, "
     "learning_rate=0.1)"),
    ("Estimator(model_fn)", "a residual MLP (width 64), 30 epochs, batch 32, Adam 0.001",
     "MLPClassifier / MLPRegressor((64, 32), max_iter=1000)"),
    ("Baseline*", "10 epochs", "DummyClassifier(prior) / DummyRegressor(mean)"),
]  # fmt: skip


def table(rows: list[dict]) -> str:
    n = rows[0]["splits"] if rows else SPLITS
    lines = [
        "# Estimator families against scikit-learn",
        "",
        "Written by `.venv/bin/python scripts/quality_sklearn.py` (all four data sets, "
        f"{n} splits: about two minutes on 2 cores). Every figure is the **mean over {n} "
        f"repeated 75/25 splits** (split seeds {SEED}..{SEED + n - 1}, stratified for the "
        "classifiers; the same splits for trainrun and scikit-learn; features standardised "
        "with each training part's mean and deviation; model seed "
        f"{SEED}): wine's test part is 45 rows, so one example moves its accuracy by 0.022 "
        "and one split is too noisy for a 0.01 target. The target (issue 12): each family "
        "within 0.01 (AUC, accuracy) or 0.03 (R²) of the matching scikit-learn model, on the "
        "means; a family that *beats* its reference by more is fine. *diff per split* is the "
        "lowest and highest of the paired differences. The script's exit status is the "
        "verdict (0: every row within target).",
        "",
        "For BoostedTrees, *XGBoost direct* is XGBoost called with the parameters the "
        "estimator passes it, on the same arrays: equal to *trainrun* means a gap is the "
        "engine's at these settings, not the wrapper's. *tf defaults* is the same estimator "
        "at tf's (and trainrun's) defaults: 100 trees, depth 6, learning rate 0.1, no L2, "
        "min_node_weight 0. Fit times (mean per split) come from a shared 2-core machine "
        "and are no benchmark (see `bench/`).",
        "",
        "| data | metric | family | trainrun | scikit-learn model | scikit-learn | diff | diff per split | within target | XGBoost direct | tf defaults | fit s (trainrun / sklearn) |",
        "|---|---|---|---:|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        extra = [r.get(k) for k in ("engine", "defaults")]
        lines.append(
            f"| {r['data']} | {r['metric']} | {r['family']} | {r['trainrun']:.4f} | "
            f"{r['reference']} | {r['sklearn']:.4f} | {r['diff']:+.4f} | "
            f"{r['diff_min']:+.3f} .. {r['diff_max']:+.3f} | "
            f"{'yes' if r['ok'] else '**no**'} | "
            + " | ".join("" if v is None else format(v, ".4f") for v in extra)
            + f" | {r['s']:.1f} / {r['ref_s']:.1f} |"
        )
    misses = [r for r in rows if not r["ok"]]
    lines += ["", "**Verdict.** " + (
        "Every family is within its target on every data set." if not misses else
        "Below target: " + "; ".join(
            f"{r['data']} {r['family']} {r['diff']:+.4f} ({r['trainrun']:.4f} against "
            f"{r['sklearn']:.4f}" + (
                f"; XGBoost direct {r['engine']:.4f}: "
                + ("the engine's result, not the wrapper's)" if abs(r["engine"] - r["trainrun"])
                   < 1e-4 else "the wrapper differs from the engine)")
                if r.get("engine") is not None else ")")
            for r in misses) + ". Everything else is within target."
    )]  # fmt: skip
    names = list(dict.fromkeys(r["data"] for r in rows))
    lines += [
        "",
        "## Budgets",
        "",
        "| family | trainrun budget | scikit-learn reference |",
        "|---|---|---|",
        *(f"| {f} | {b} | {ref} |" for f, b, ref in BUDGETS),
        "",
        "The boosted trees' budgets (tf's own BoostedTrees arguments only: no XGBoost knob "
        "the tf API lacks) were chosen by `scripts/quality_sklearn.py --tune-trees`, **on "
        "validation data only**, by cross-validation: the training part of each of the same "
        f"{n} splits is cut into {FOLDS} folds (stratified for the classifiers; seed 1000 + "
        "split seed), every "
        "budget of the grid is trained on four folds and scored on the fifth (XGBoost with "
        "the parameters and start the estimator passes it; `n_trees` as prefixes of one "
        f"run), and the budget with the best mean validation metric over the {n} x {FOLDS} "
        "folds wins (ties: the lower mean validation loss, log loss or squared error, then "
        "fewer trees, then shallower). The test parts are never read by the tuning. A "
        "`tree_complexity` above 0 goes with `pruning_mode='post'` (tf requires a pruning "
        "mode with it). The grids:",
        "",
        f"- breast_cancer, wine, diabetes (`TREE_GRID`): {_grid_text(TREE_GRID)}",
        f"- digits (`SMALL_TREE_GRID`: ten classes make each budget about ten times dearer): "
        f"{_grid_text(SMALL_TREE_GRID)}",
        "",
        "The chosen budgets differ from one data set to the next, so no single one replaces "
        "tf's defaults as the estimator's; the tuning is the recommendation:",
        "",
        *(f"- {name}: {_budget(TREE_BUDGETS[name])}" for name in names),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=DATA, choices=DATA)
    parser.add_argument(
        "--splits", type=int, default=SPLITS, help="repeated splits to average over"
    )
    parser.add_argument(
        "--tune-trees", action="store_true", help="choose TREE_BUDGETS by cross-validation"
    )
    parser.add_argument("--folds", type=int, default=FOLDS, help="--tune-trees: CV folds")
    parser.add_argument(
        "--grid", choices=sorted(GRIDS), help="--tune-trees: this grid for every data set"
    )
    parser.add_argument("--jobs", type=int, default=1, help="--tune-trees: processes")
    parser.add_argument("--output", default=str(ROOT / "docs" / "results-families.md"))
    args = parser.parse_args(argv)
    if args.splits < 1:
        parser.error(f"--splits must be at least 1. Received: {args.splits}")
    logging.getLogger("trainrun").setLevel(logging.ERROR)
    if args.folds < 2 or args.jobs < 1:
        parser.error(
            f"--folds must be at least 2 and --jobs at least 1. Received: --folds {args.folds} "
            f"--jobs {args.jobs}"
        )
    if args.tune_trees:
        tune_trees(args.data, args.splits, args.folds, args.grid, args.jobs)
        return 0
    rows = run(args.data, args.splits)
    text = table(rows)
    if args.output == "-":
        print(text)
    else:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
