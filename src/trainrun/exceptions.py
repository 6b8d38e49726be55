"""Errors raised by trainrun.

Every error is a :class:`TrainrunError` and also subclasses the built-in
exception users already catch::

    TrainrunError
    ├── FlagError ............ ValueError          a flag undeclared, mistyped, out of its choices
    ├── FilterError .......... ValueError          a bad `ls_runs(filter=...)` expression
    ├── RunRecordError ....... ValueError          a run folder that is corrupt or half-written
    ├── RunNotFoundError ..... FileNotFoundError   no run by that id or path
    ├── ScriptNotFoundError .. FileNotFoundError   no training script at that path
    ├── DataNotFoundError .... FileNotFoundError   no data file there (bundled data, MNIST-format files)
    ├── UsageError ........... ValueError          an argument malformed or out of range
    ├── FeatureColumnError ... ValueError          a feature column misdeclared or fed bad data
    ├── InputError ........... ValueError          an input_fn given unusable data
    ├── ModelDirError ........ ValueError          a model directory holding an incompatible model
    ├── NotTrainedError ...... RuntimeError        evaluate/predict/export before train
    ├── NanLossError ......... FloatingPointError  training diverged: the loss became NaN or infinite
    ├── TuningError .......... RuntimeError        a tuning that cannot go on
    ├── ArtifactError ........ ValueError          log_artifact / log_model given a bad path, name or model
    └── MissingExtraError .... ImportError         an optional extra (estimators, board, ray...) not installed

Messages say what happened, what was expected and how to fix it, and end
with the value received.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "DataNotFoundError",
    "FeatureColumnError",
    "FilterError",
    "FlagError",
    "InputError",
    "MissingExtraError",
    "ModelDirError",
    "NanLossError",
    "NotTrainedError",
    "RunNotFoundError",
    "RunRecordError",
    "ScriptNotFoundError",
    "TrainrunError",
    "TuningError",
    "UsageError",
]


class TrainrunError(Exception):
    """Base class of every error trainrun raises."""


class FlagError(TrainrunError, ValueError):
    """A flag was not declared, does not convert to its type, or is outside its choices."""


class FilterError(TrainrunError, ValueError):
    """A run filter expression could not be parsed or evaluated."""


class RunRecordError(TrainrunError, ValueError):
    """A run folder is corrupt or half-written."""


class RunNotFoundError(TrainrunError, FileNotFoundError):
    """No run matches the given id or path."""


class ScriptNotFoundError(TrainrunError, FileNotFoundError):
    """No training script at the path given (or no default script in the folder)."""


class DataNotFoundError(TrainrunError, FileNotFoundError):
    """A data file trainrun was asked to load is not there (bundled data, MNIST-format files)."""


class UsageError(TrainrunError, ValueError):
    """An argument that is malformed or out of range: a function's (``hidden_units=[0]``,
    ``dropout=1.5``) or a command's (``--flag`` without ``=``)."""


class FeatureColumnError(TrainrunError, ValueError):
    """A feature column is misdeclared or the data does not fit it."""


class InputError(TrainrunError, ValueError):
    """An input function was given data it cannot use."""


class ModelDirError(TrainrunError, ValueError):
    """A model directory holds a model that does not match this estimator."""


class NotTrainedError(TrainrunError, RuntimeError):
    """The estimator has no trained weights yet."""


class NanLossError(TrainrunError, FloatingPointError):
    """The training loss became NaN or infinite (tf.estimator's NanLossDuringTrainingError)."""


class TuningError(TrainrunError, RuntimeError):
    """A tuning could not be started or continued."""


class ArtifactError(TrainrunError, ValueError):
    """A file, name or model that log_artifact / log_model cannot keep with a run."""


class MissingExtraError(TrainrunError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, feature: str, hint: str = "") -> None:
        super().__init__(
            f"{feature} needs the optional package '{package}', which is not installed. "
            f"Install it with: pip install 'trainrun[{extra}]'{hint}"
        )
        self.package = package
        self.extra = extra
