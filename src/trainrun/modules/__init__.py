"""The networks of the estimators, and their heads.

Third step of the estimators' flow (feature columns, then inputs, then these modules, then
the estimators, their training loop and the model directory): ``linear``, ``dnn`` and
``wide_deep`` map encoded features (from :class:`trainrun.feature_columns.FeatureTransform`)
to logits; ``heads`` turns logits into losses, predictions and metrics.
"""
