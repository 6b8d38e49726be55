"""The canned estimators over one base class: they take feature columns and input functions,
build a network from ``modules``, train it with ``training`` and keep it in a ``model_dir``.

==============================  ==========================================  ==================
estimator                       network                                     default optimizer
==============================  ==========================================  ==================
LinearClassifier / Regressor    linear over feature columns                 FTRL 0.2
DNNClassifier / Regressor       dense features -> hidden layers              Adam 0.001
DNNLinearCombined...            linear + DNN, logits summed                 FTRL 0.2 + Adam 0.001
==============================  ==========================================  ==================
"""

from trainrun.estimators.base import Estimator
from trainrun.estimators.baseline import BaselineClassifier, BaselineRegressor
from trainrun.estimators.boosted_trees import BoostedTreesClassifier, BoostedTreesRegressor
from trainrun.estimators.combined import DNNLinearCombinedClassifier, DNNLinearCombinedRegressor
from trainrun.estimators.custom import CustomEstimator
from trainrun.estimators.dnn import DNNClassifier, DNNRegressor
from trainrun.estimators.linear import LinearClassifier, LinearRegressor
from trainrun.estimators.run_config import RunConfig

__all__ = [
    "BaselineClassifier",
    "BaselineRegressor",
    "BoostedTreesClassifier",
    "BoostedTreesRegressor",
    "CustomEstimator",
    "DNNClassifier",
    "DNNLinearCombinedClassifier",
    "DNNLinearCombinedRegressor",
    "DNNRegressor",
    "Estimator",
    "LinearClassifier",
    "LinearRegressor",
    "RunConfig",
]
