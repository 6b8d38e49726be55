"""scikit-learn models recorded as trainrun runs: one call after ``fit``.

>>> from sklearn.linear_model import LogisticRegression          # doctest: +SKIP
>>> import trainrun.sklearn                                     # doctest: +SKIP
>>> model = LogisticRegression(C=0.5).fit(X_train, y_train)     # doctest: +SKIP
>>> trainrun.sklearn.log_model(model, X_test, y_test)            # doctest: +SKIP

What lands in the run:

- ``flags.json``: ``get_params(deep=True)``, plain values only (a pipeline's
  ``clf__C``; nested estimators are described by their own parameters): ``flag_*``.
- ``evaluation.json``: the model's scores on ``X_test, y_test``, under the names a
  trainrun estimator's ``evaluate`` uses: ``score`` (the estimator's own
  ``score``), and for classifiers ``accuracy``, ``accuracy_baseline``,
  ``average_loss`` (log loss) and, with two classes, ``auc``,
  ``auc_precision_recall``, ``precision``, ``recall``, ``label/mean``,
  ``prediction/mean``; for regressors ``average_loss`` (mean squared error),
  ``mean_absolute_error``, ``r2``, ``label/mean``, ``prediction/mean``.
- properties: ``model`` (the class, or a pipeline's steps), ``samples``
  (training rows, when the estimator knows), ``features``.
- with ``save_model=True``, ``artifacts/model.joblib`` (a pickle: load it only
  from runs you trust).

A fitted ``GridSearchCV`` or ``RandomizedSearchCV`` is recorded as **one run per
candidate** plus the search's own run. Each candidate run has the candidate's
parameters as flags, its cross-validation results as evaluation
(``mean_test_score``, ``std_test_score``, ``rank_test_score``, ``mean_fit_time``,
one set per scorer with several) and each fold's score as a metrics row, and the
tags ``search`` (the search's run id) and ``candidate``. That is what
``tuning_run`` gives a flag grid, so the candidates are listed, filtered,
sorted and compared like any other runs
(``ls_runs(filter="tag_search == '...'", order="eval_rank_test_score")``), which
one table inside a run would not allow. The search's run records the best
estimator as above, ``best_cv_score``, and the whole ``cv_results_`` table as
``artifacts/cv_results.csv``. ``candidate_runs=False`` keeps only the table.

Inside ``trainrun run train.py`` the active run is the model's (or the
search's) run and candidate runs go beside it in the same runs folder.
Otherwise each call starts an in-process run under ``runs/`` (``runs_dir=``),
completed when the call returns.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainrun._extras import require

require("sklearn", "sklearn", "trainrun.sklearn", package="scikit-learn")

from sklearn.base import is_classifier, is_regressor  # noqa: E402

from trainrun.exceptions import InputError, NotTrainedError  # noqa: E402
from trainrun.runs import active  # noqa: E402
from trainrun.runs.artifacts import log_model as _save_model  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402

__all__ = ["log_model", "scores"]

#: above this many candidates a search is recorded as its table only (one run folder each
#: would be more than a listing is for); pass candidate_runs=True to insist
MAX_CANDIDATE_RUNS = 1_000


def _plain(value: Any) -> tuple[bool, Any]:
    if value is None or isinstance(value, (bool, str)):
        return True, value
    if isinstance(value, (int, float)):
        return True, value
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return True, item()
    return False, None


def _holds_estimator(value: Any) -> bool:
    if hasattr(value, "get_params"):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_estimator(v) for v in value)
    return False


def _flags(params: Mapping[str, Any]) -> dict[str, Any]:
    """Plain parameter values; nested estimators are described by their own ``a__b`` entries."""
    flags: dict[str, Any] = {}
    for name, value in params.items():
        ok, plain = _plain(value)
        if ok:
            flags[name] = plain
        elif _holds_estimator(value):
            continue  # an estimator (or a pipeline's steps): its parameters follow as name__param
        elif isinstance(value, (list, tuple)) and all(_plain(v)[0] for v in value):
            flags[name] = [_plain(v)[1] for v in value]
        elif callable(value):
            flags[name] = getattr(value, "__name__", type(value).__name__)
        else:
            text = repr(value)
            flags[name] = text if len(text) <= 200 else text[:197] + "..."
    return flags


def _describe(model: Any) -> str:
    steps = getattr(model, "steps", None)
    if isinstance(steps, list) and all(isinstance(s, tuple) and len(s) == 2 for s in steps):
        return "Pipeline(" + ", ".join(_describe(step) for _, step in steps) + ")"
    return type(model).__name__


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _classifier_scores(model: Any, X: Any, y: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics

    y = np.asarray(y)
    out: dict[str, Any] = {}
    pred = model.predict(X)
    out["accuracy"] = metrics.accuracy_score(y, pred)
    _, counts = np.unique(y, return_counts=True)
    out["accuracy_baseline"] = counts.max() / counts.sum()
    classes = getattr(model, "classes_", None)
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    if proba is not None and classes is not None:
        out["average_loss"] = metrics.log_loss(y, proba, labels=classes)
        out["loss"] = out["average_loss"]
    if classes is not None and len(classes) == 2:
        positive = classes[1]
        truth = (y == positive).astype(float)
        if proba is not None:
            score = proba[:, 1]
        elif hasattr(model, "decision_function"):
            score = model.decision_function(X)
        else:
            score = None
        if score is not None and 0 < truth.sum() < len(truth):
            out["auc"] = metrics.roc_auc_score(truth, score)
            out["auc_precision_recall"] = metrics.average_precision_score(truth, score)
        out["precision"] = metrics.precision_score(y, pred, pos_label=positive, zero_division=0)
        out["recall"] = metrics.recall_score(y, pred, pos_label=positive, zero_division=0)
        out["label/mean"] = truth.mean()
        if proba is not None:
            out["prediction/mean"] = proba[:, 1].mean()
    return out


def _regressor_scores(model: Any, X: Any, y: Any) -> dict[str, Any]:
    import numpy as np
    from sklearn import metrics

    y = np.asarray(y)
    pred = model.predict(X)
    return {
        "average_loss": metrics.mean_squared_error(y, pred),
        "mean_absolute_error": metrics.mean_absolute_error(y, pred),
        "r2": metrics.r2_score(y, pred),
        "label/mean": y.mean(),
        "prediction/mean": np.asarray(pred).mean(),
    }


def scores(model: Any, X: Any, y: Any) -> dict[str, float]:
    """A fitted model's scores on ``X, y`` under trainrun's evaluation names (see the module)."""
    out: dict[str, Any] = {}
    if hasattr(model, "score"):
        out["score"] = model.score(X, y)
    if is_classifier(model):
        out.update(_classifier_scores(model, X, y))
    elif is_regressor(model):
        out.update(_regressor_scores(model, X, y))
    return {k: n for k, v in out.items() if (n := _number(v)) is not None}


def _check_fitted(estimator: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "get_params") or not hasattr(estimator, "fit"):
        raise InputError(
            "trainrun.sklearn.log_model() records scikit-learn estimators (objects with fit "
            "and get_params); for other models use trainrun.log_model(). "
            f"Received: a {type(estimator).__module__}.{type(estimator).__qualname__}"
        )
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        raise NotTrainedError(
            f"trainrun.sklearn.log_model() records a fitted estimator; call .fit(X, y) "
            f"first. Received: {_describe(estimator)} (not fitted)"
        ) from None


def _properties(model: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"model": _describe(model)}
    features = getattr(model, "n_features_in_", None)
    if isinstance(features, int):
        props["features"] = features
    return props


def log_model(
    estimator: Any,
    X_test: Any = None,
    y_test: Any = None,
    *,
    save_model: bool = False,
    name: str = "model",
    candidate_runs: bool | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
) -> Path | None:
    """Record a fitted estimator (or search) into the active run, or a new in-process one.

    Returns the run folder it wrote to (None if no run could be written).

    Args:
        estimator: a fitted scikit-learn estimator, pipeline, ``GridSearchCV`` or
            ``RandomizedSearchCV``.
        X_test, y_test: held-out data to score on (both or neither).
        save_model: also keep the model as ``artifacts/<name>.joblib``.
        candidate_runs: a search's candidates as one run each (default: yes, up to
            1,000 candidates) or only as ``artifacts/cv_results.csv``.
        runs_dir: where in-process runs go when no run is active (default ``runs``).
    """
    _check_fitted(estimator)
    if (X_test is None) != (y_test is None):
        raise InputError(
            "trainrun.sklearn.log_model() scores on held-out data given as both X_test and "
            "y_test; pass both, or neither to record parameters only. "
            f"Received: X_test={'None' if X_test is None else '...'}, "
            f"y_test={'None' if y_test is None else '...'}"
        )
    is_search = hasattr(estimator, "cv_results_")
    model = getattr(estimator, "best_estimator_", None) if is_search else estimator
    _inprocess.ensure_run(estimator, runs_dir=runs_dir, integration="sklearn")
    folder = active.run_dir()
    if folder is None:
        return None
    try:
        if model is not None:
            active.write_run_metadata("flags", _flags(model.get_params(deep=True)))
            active.write_run_metadata("properties", _properties(model))
        if is_search:
            _record_search(estimator, folder, candidate_runs)
        if X_test is not None and model is not None:
            active.write_evaluation(scores(model, X_test, y_test))
        if save_model and model is not None:
            _save_model(model, name)
    finally:
        _inprocess.end_owned(estimator)
    return folder


# ---------------------------------------------------------------- searches


def _record_search(search: Any, folder: Path, candidate_runs: bool | None) -> None:
    import pandas as pd

    results = search.cv_results_
    n = len(results["params"])
    props: dict[str, Any] = {"search": type(search).__name__, "candidates": n}
    splits = getattr(search, "n_splits_", None)
    if isinstance(splits, int):
        props["cv_folds"] = splits
    active.write_run_metadata("properties", props)
    best = _number(getattr(search, "best_score_", None))
    if best is not None:
        active.write_evaluation(best_cv_score=best)
    table = pd.DataFrame(results)
    table["params"] = [repr(p) for p in table["params"]]
    artifacts = active.artifacts_dir()
    if artifacts is not None:
        table.to_csv(artifacts / "cv_results.csv", index=False)
    if candidate_runs is None:
        candidate_runs = n <= MAX_CANDIDATE_RUNS
    if candidate_runs:
        for i in range(n):
            try:
                _candidate_run(folder, search, results, i, splits)
            except OSError as exc:
                active._warn_once(
                    "sklearn-candidates",
                    f"could not write the search's candidate runs beside {folder} ({exc}); "
                    f"{i} of {n} written, the whole table is in artifacts/cv_results.csv.",
                )
                break


def _candidate_run(
    parent: Path, search: Any, results: Mapping[str, Any], i: int, splits: Any
) -> None:
    evaluation: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for key, values in results.items():
        if key == "params" or key.startswith("param_"):
            continue
        if key.startswith("split"):
            # "split3_test_score" -> row 3, "test_score"
            index, _, metric = key[len("split") :].partition("_")
            if index.isdigit():
                while len(rows) <= int(index):
                    rows.append({"step": len(rows)})
                if (number := _number(values[i])) is not None:
                    rows[int(index)][metric] = number
            continue
        if (number := _number(values[i])) is not None:
            evaluation[key] = int(number) if key.startswith("rank_") else number
    fit = _number(results.get("mean_fit_time", [None] * (i + 1))[i]) or 0.0
    score = _number(results.get("mean_score_time", [None] * (i + 1))[i]) or 0.0
    _inprocess.write_finished_run(
        parent.parent,
        integration="sklearn",
        flags=_flags(results["params"][i]),
        evaluation=evaluation,
        metrics=rows,
        properties={"model": _describe(search.estimator), "search": type(search).__name__},
        tags={"search": parent.name, "candidate": str(i)},
        duration=(fit + score) * (splits if isinstance(splits, int) else 1),
    )
