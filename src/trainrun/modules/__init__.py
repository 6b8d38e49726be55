"""Layer 3: torch modules — the linear, DNN and wide-and-deep networks, and the heads.

``linear``, ``dnn`` and ``wide_deep`` map encoded features (from
:class:`trainrun.feature_columns.FeatureTransform`) to logits; ``heads`` turns
logits into losses, predictions and metrics.
"""
