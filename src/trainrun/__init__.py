"""trainrun: canned PyTorch estimators from feature columns, and every training run on record.

Importing ``trainrun`` is cheap: names resolve lazily on first use, so the runs
half (flags, ls_runs, the CLI) never imports torch.

>>> import trainrun
>>> FLAGS = trainrun.flags(dropout=0.2, layer1=256)   # doctest: +SKIP
"""

from __future__ import annotations

# no typing or importlib at import time: `trainrun run` and every script that records
# into a run import this package, and those two alone cost several milliseconds
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__version__ = "0.1.0"

# `import trainrun.estimators` without torch names the extra to install (trainrun._extras)
from trainrun._extras import install_finder as _install_finder  # noqa: E402

_install_finder()

# public name -> module that defines it. One place; `__all__` is derived from it.
_EXPORTS: dict[str, str] = {
    # errors
    "ArtifactError": "trainrun.exceptions",
    "DataNotFoundError": "trainrun.exceptions",
    "FeatureColumnError": "trainrun.exceptions",
    "FilterError": "trainrun.exceptions",
    "FlagError": "trainrun.exceptions",
    "InputError": "trainrun.exceptions",
    "MissingExtraError": "trainrun.exceptions",
    "ModelDirError": "trainrun.exceptions",
    "NanLossError": "trainrun.exceptions",
    "NotTrainedError": "trainrun.exceptions",
    "RunNotFoundError": "trainrun.exceptions",
    "RunRecordError": "trainrun.exceptions",
    "ScriptNotFoundError": "trainrun.exceptions",
    "TrainrunError": "trainrun.exceptions",
    "TuningError": "trainrun.exceptions",
    "UsageError": "trainrun.exceptions",
    # bundled data and MNIST-format loaders
    "load_churn": "trainrun.data",
    "load_mnist": "trainrun.data",
    # reports and the dashboard
    "RunReport": "trainrun.runs.report",
    "compare_runs": "trainrun.runs.report",
    "comparison_report": "trainrun.runs.report",
    "run_report": "trainrun.runs.report",
    "save_run_comparison": "trainrun.runs.report",
    "save_run_view": "trainrun.runs.report",
    "view_run": "trainrun.runs.report",
    # flags, the active run, training_run (runs-launch)
    "artifacts_dir": "trainrun.runs.active",
    "log_artifact": "trainrun.runs.artifacts",
    "log_model": "trainrun.runs.artifacts",
    "flag_boolean": "trainrun.runs.flags",
    "flag_integer": "trainrun.runs.flags",
    "flag_numeric": "trainrun.runs.flags",
    "flag_string": "trainrun.runs.flags",
    "flags": "trainrun.runs.flags",
    "is_active": "trainrun.runs.active",
    "log_metrics": "trainrun.runs.active",
    "parse_flags": "trainrun.runs.flags",
    "plots_dir": "trainrun.runs.active",
    "run_dir": "trainrun.runs.active",
    "save_plot": "trainrun.runs.active",
    "start_run": "trainrun.runs.active",
    "tensorboard_dir": "trainrun.runs.active",
    "training_run": "trainrun.runs.launch",
    "unique_run_dir": "trainrun.runs.launch",
    "write_evaluation": "trainrun.runs.active",
    "write_run_metadata": "trainrun.runs.active",
    # listing and looking after runs (runs-store)
    "RunRecordWarning": "trainrun.runs.store",
    "clean_runs": "trainrun.runs.store",
    "copy_run": "trainrun.runs.store",
    "copy_run_files": "trainrun.runs.store",
    "get_run_dir": "trainrun.runs.store",
    "import_tfruns": "trainrun.runs.tfruns_import",
    "latest_run": "trainrun.runs.store",
    "ls_runs": "trainrun.runs.store",
    "mirror_runs": "trainrun.runs.store",
    "purge_runs": "trainrun.runs.store",
    "restore_runs": "trainrun.runs.store",
    "run_info": "trainrun.runs.store",
    "name_run": "trainrun.runs.store",
    "note_run": "trainrun.runs.store",
    "tag_run": "trainrun.runs.store",
    # tuning
    "optuna_search": "trainrun.runs.tuning",
    "tuning_run": "trainrun.runs.tuning",
    # feature columns and input functions
    "DenseFeatures": "trainrun.feature_columns",
    "FeatureTransform": "trainrun.feature_columns",
    "LinearFeatures": "trainrun.feature_columns",
    "bucketized_column": "trainrun.feature_columns",
    "categorical_column_with_hash_bucket": "trainrun.feature_columns",
    "categorical_column_with_identity": "trainrun.feature_columns",
    "categorical_column_with_vocabulary_file": "trainrun.feature_columns",
    "categorical_column_with_vocabulary_list": "trainrun.feature_columns",
    "columns_from_frame": "trainrun.feature_columns",
    "crossed_column": "trainrun.feature_columns",
    "embedding_column": "trainrun.feature_columns",
    "indicator_column": "trainrun.feature_columns",
    "input_fn": "trainrun.inputs",
    "numeric_column": "trainrun.feature_columns",
    "SequenceFeatures": "trainrun.feature_columns",
    "sequence_categorical_column_with_hash_bucket": "trainrun.feature_columns",
    "sequence_categorical_column_with_identity": "trainrun.feature_columns",
    "sequence_categorical_column_with_vocabulary_file": "trainrun.feature_columns",
    "sequence_categorical_column_with_vocabulary_list": "trainrun.feature_columns",
    "sequence_numeric_column": "trainrun.feature_columns",
    "shared_embeddings": "trainrun.feature_columns",
    "weighted_categorical_column": "trainrun.feature_columns",
    # estimators, their training loop and exports
    "BaselineClassifier": "trainrun.estimators",
    "BaselineRegressor": "trainrun.estimators",
    "BinaryClassHead": "trainrun.modules.heads_extra",
    "BinaryHead": "trainrun.modules.heads",
    "BoostedTreesClassifier": "trainrun.estimators",
    "BoostedTreesRegressor": "trainrun.estimators",
    "Callback": "trainrun.training.callbacks",
    "Estimator": "trainrun.estimators",
    "MultiClassHead": "trainrun.modules.heads",
    "MultiLabelHead": "trainrun.modules.heads_extra",
    "PoissonRegressionHead": "trainrun.modules.heads_extra",
    "RegressionHead": "trainrun.modules.heads",
    "DNNClassifier": "trainrun.estimators",
    "DNNLinearCombinedClassifier": "trainrun.estimators",
    "DNNLinearCombinedRegressor": "trainrun.estimators",
    "DNNRegressor": "trainrun.estimators",
    "EarlyStopping": "trainrun.training.callbacks",
    "History": "trainrun.training.callbacks",
    "LinearClassifier": "trainrun.estimators",
    "LinearRegressor": "trainrun.estimators",
    "RunConfig": "trainrun.estimators",
    "load_exported": "trainrun.model_dir.export",
    # the train/evaluate workflow (issue 11)
    "BestExporter": "trainrun.training.exporters",
    "EvalSpec": "trainrun.training.train_and_evaluate",
    "FinalExporter": "trainrun.training.exporters",
    "LatestExporter": "trainrun.training.exporters",
    "TrainSpec": "trainrun.training.train_and_evaluate",
    "VocabInfo": "trainrun.estimators.warm_start",
    "WarmStartSettings": "trainrun.estimators.warm_start",
    "stop_if_no_decrease_hook": "trainrun.training.train_and_evaluate",
    "stop_if_no_increase_hook": "trainrun.training.train_and_evaluate",
    "train_and_evaluate": "trainrun.training.train_and_evaluate",
    # metrics, optimizers, dropout (metrics-optim)
    "FastDropout": "trainrun.modules.dropout",
    "Ftrl": "trainrun.training.optimizers",
    "MetricAccumulator": "trainrun.modules.metrics",
    "binary_metrics": "trainrun.modules.metrics",
    "binary_threshold_metrics": "trainrun.modules.metrics",
    "get_optimizer": "trainrun.training.optimizers",
    "multi_label_metrics": "trainrun.modules.metrics",
    "multiclass_metrics": "trainrun.modules.metrics",
    "optimizer_names": "trainrun.training.optimizers",
    "poisson_metrics": "trainrun.modules.metrics",
    "regression_metrics": "trainrun.modules.metrics",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    import importlib

    module = _EXPORTS.get(name)
    if module is None:
        # a subpackage (`trainrun.runs.active.run_dir()` after a plain `import trainrun`)
        return _submodule(__name__, name)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def _submodule(package: str, name: str) -> Any:
    """``package.name`` imported on first attribute access, or AttributeError as usual."""
    import importlib

    if name.startswith("__"):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.{name}":
            raise  # the submodule exists but something it needs is missing: say so
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return __all__
