"""What makes an estimator a classifier or a regressor: its head, said once.

Every canned estimator (and any family added later) mixes in one of these two
ahead of :class:`~trainrun.estimators.base.Estimator`. They read the settings the
estimator's ``__init__`` stores (``n_classes``, ``label_vocabulary`` or
``label_dimension``, ``loss_reduction``, ``standardize_labels``).
"""

from __future__ import annotations

from typing import Any

from trainrun.exceptions import UsageError

__all__ = ["ClassifierKind", "RegressorKind"]


class ClassifierKind:
    """A binary (``n_classes=2``) or multi-class head; ``label_vocabulary`` checked here only."""

    # scikit-learn reads this attribute (sklearn.base.is_classifier).
    _estimator_type = "classifier"

    def _validate_kind(self) -> None:
        from trainrun.modules.heads import label_vocabulary_problem

        problem = label_vocabulary_problem(self.label_vocabulary, self.n_classes)  # type: ignore[attr-defined]
        if problem is not None:
            raise UsageError(
                f"The 'label_vocabulary' parameter of {type(self).__name__} must be {problem}. "
                f"Got {self.label_vocabulary!r} instead."  # type: ignore[attr-defined]
            )

    def _build_head(self) -> Any:
        from trainrun.modules.heads import make_classification_head

        return make_classification_head(
            self.n_classes,  # type: ignore[attr-defined]
            self.label_vocabulary,  # type: ignore[attr-defined]
            self.loss_reduction,  # type: ignore[attr-defined]
        )


class RegressorKind:
    """A squared-error head over ``label_dimension`` targets.

    With ``standardize_labels=True`` (the default) the network learns the target
    standardised by the mean and standard deviation of the first training data, and
    predicts in the target's own units (see :class:`~trainrun.modules.heads.RegressionHead`).
    """

    # scikit-learn reads this attribute (sklearn.base.is_regressor).
    _estimator_type = "regressor"

    def _validate_kind(self) -> None:
        pass

    def _build_head(self) -> Any:
        from trainrun.modules.heads import RegressionHead

        return RegressionHead(self.label_dimension, self.loss_reduction)  # type: ignore[attr-defined]

    def _wants_label_scaling(self) -> bool:
        return bool(getattr(self, "standardize_labels", False))
