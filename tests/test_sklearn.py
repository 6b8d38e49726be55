"""trainrun.sklearn.log_model on real scikit-learn estimators and searches."""

import joblib
import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import trainrun  # noqa: E402
from trainrun.exceptions import InputError, NotTrainedError  # noqa: E402
from trainrun.runs import active, record  # noqa: E402
from trainrun.runs.launch import _inprocess  # noqa: E402
from trainrun.sklearn import log_model  # noqa: E402


@pytest.fixture(autouse=True)
def _no_run_left_active():
    active.deactivate()
    yield
    active.deactivate()
    _inprocess._end_open_runs()
    _inprocess._owned = None


def _classification():
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    return X[:150], X[150:], y[:150], y[150:]


def test_a_fitted_classifier_gets_flags_scores_properties_and_its_file(tmp_path):
    X_train, X_test, y_train, y_test = _classification()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X_train, y_train)
    run_dir = log_model(model, X_test, y_test, save_model=True, runs_dir=tmp_path / "runs")

    run = record.read_run(run_dir)
    assert run["status"] == "completed" and run["tags"]["integration"] == "sklearn"
    assert run["flags"]["logisticregression__C"] == 0.5
    assert "steps" not in run["flags"] and "logisticregression" not in run["flags"]
    assert run["properties"]["model"] == "Pipeline(StandardScaler, LogisticRegression)"
    assert run["properties"]["features"] == 5
    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["accuracy"] == pytest.approx(model.score(X_test, y_test))
    assert 0.5 < evaluation["auc"] <= 1.0
    assert {"average_loss", "precision", "recall", "accuracy_baseline", "prediction/mean"} <= set(
        evaluation
    )
    restored = joblib.load(run_dir / "artifacts" / "model.joblib")
    np.testing.assert_array_equal(restored.predict(X_test), model.predict(X_test))

    listed = trainrun.ls_runs(runs_dir=tmp_path / "runs")
    assert {"flag_logisticregression__C", "eval_accuracy", "eval_auc"} <= set(listed.columns)
    assert listed.iloc[0]["prop_model"] == "Pipeline(StandardScaler, LogisticRegression)"


def test_a_regressor_gets_regression_scores(tmp_path):
    X, y = make_regression(n_samples=80, n_features=3, noise=0.1, random_state=0)
    model = Ridge(alpha=0.1).fit(X[:60], y[:60])
    run_dir = log_model(model, X[60:], y[60:], runs_dir=tmp_path / "runs")
    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["r2"] == pytest.approx(model.score(X[60:], y[60:]))
    assert evaluation["average_loss"] >= 0 and "mean_absolute_error" in evaluation


def test_a_grid_search_becomes_one_run_per_candidate_beside_its_own(tmp_path):
    X_train, X_test, y_train, y_test = _classification()
    search = GridSearchCV(
        LogisticRegression(), {"C": [0.01, 0.1, 1.0], "fit_intercept": [True, False]}, cv=3
    )
    search.fit(X_train, y_train)
    runs_dir = tmp_path / "runs"
    run_dir = log_model(search, X_test, y_test, runs_dir=runs_dir)

    main = record.read_run(run_dir)
    assert main["properties"]["search"] == "GridSearchCV" and main["properties"]["candidates"] == 6
    assert main["flags"]["C"] == search.best_params_["C"]
    evaluation = record.read_json(run_dir / record.EVALUATION_FILE)
    assert evaluation["best_cv_score"] == pytest.approx(search.best_score_)
    assert evaluation["accuracy"] == pytest.approx(search.score(X_test, y_test))
    assert (run_dir / "artifacts" / "cv_results.csv").read_text().count("\n") == 7

    listed = trainrun.ls_runs(
        runs_dir=runs_dir, filter=f"tag_search == '{run_dir.name}'", order="eval_rank_test_score"
    )
    assert len(listed) == 6
    best = listed.sort_values("eval_rank_test_score").iloc[0]
    assert best["eval_rank_test_score"] == 1
    assert best["flag_C"] == search.best_params_["C"]
    assert best["eval_mean_test_score"] == pytest.approx(search.best_score_)
    folds = record.read_metrics(runs_dir / best["id"])
    assert [r["step"] for r in folds] == [0, 1, 2]
    assert np.mean([r["test_score"] for r in folds]) == pytest.approx(search.best_score_)


def test_without_candidate_runs_only_the_table_is_kept(tmp_path):
    X_train, _, y_train, _ = _classification()
    search = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=2).fit(X_train, y_train)
    runs_dir = tmp_path / "runs"
    run_dir = log_model(search, candidate_runs=False, runs_dir=runs_dir)
    assert [p.name for p in runs_dir.iterdir() if not p.name.startswith(".")] == [run_dir.name]
    assert (run_dir / "artifacts" / "cv_results.csv").is_file()


def test_mistakes_are_named(tmp_path):
    with pytest.raises(NotTrainedError, match="call .fit"):
        log_model(LogisticRegression(), runs_dir=tmp_path / "runs")
    X_train, X_test, y_train, _ = _classification()
    model = LogisticRegression().fit(X_train, y_train)
    with pytest.raises(InputError, match="both X_test and y_test"):
        log_model(model, X_test, runs_dir=tmp_path / "runs")
    with pytest.raises(InputError, match="scikit-learn estimators"):
        log_model(object(), runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()  # no run folder for a refused call


def test_inside_start_run_the_model_is_recorded_into_that_run(tmp_path):
    X_train, X_test, y_train, y_test = _classification()
    model = LogisticRegression(C=2.0).fit(X_train, y_train)
    runs_dir = tmp_path / "runs"
    with trainrun.start_run(runs_dir=runs_dir, capture_output=False, artifacts=False) as run:
        assert log_model(model, X_test, y_test, runs_dir=runs_dir) == run.run_dir
    assert [p for p in runs_dir.iterdir() if not p.name.startswith(".")] == [run.run_dir]
    info = record.read_run(run.run_dir)
    assert info["status"] == "completed" and info["flags"]["C"] == 2.0
    assert "accuracy" in record.read_json(run.run_dir / record.EVALUATION_FILE)
