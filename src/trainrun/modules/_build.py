"""Networks from their configs: the one code path shared by estimators and exports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from trainrun.exceptions import ModelDirError
from trainrun.modules.dnn import DNNModel
from trainrun.modules.linear import LinearModel
from trainrun.modules.wide_deep import WideDeepModel

__all__ = ["build_network", "union_columns"]


def build_network(config: Mapping[str, Any], columns: Mapping[str, Sequence[Any]]) -> nn.Module:
    """Build the network a ``to_config()`` describes over ``columns`` ({"linear": [...], "dnn": [...]})."""
    kind = config.get("type")
    for part in (config, config.get("dnn") or {}):
        if part.get("type") == "dnn" and part.get("activation_fn") is None:
            raise ModelDirError(
                "This network's activation_fn is a custom function, which a saved config cannot "
                "hold; use a named activation (e.g. 'relu') to save or export the model."
            )
    if kind == "linear":
        return LinearModel(columns["linear"], config["units"], config.get("sparse_combiner", "sum"))
    if kind == "dnn":
        return DNNModel(
            columns["dnn"],
            config["hidden_units"],
            config["units"],
            config["activation_fn"],
            config.get("dropout"),
            config.get("batch_norm", False),
        )
    if kind == "wide_deep":
        lin = config.get("linear") or {}
        dnn = config.get("dnn") or {}
        return WideDeepModel(
            columns.get("linear") if config.get("linear") else None,
            columns.get("dnn") if config.get("dnn") else None,
            dnn.get("hidden_units"),
            config["units"],
            dnn.get("activation_fn", "relu"),
            dnn.get("dropout"),
            dnn.get("batch_norm", False),
            lin.get("sparse_combiner", "sum"),
        )
    if kind == "baseline":  # BaselineClassifier / BaselineRegressor: one bias per logit
        from trainrun.modules.baseline import BaselineModel

        return BaselineModel(int(config["units"]))
    if kind == "custom":  # trainrun.Estimator(model_fn=...): imports the builder it names
        from trainrun.modules.custom import build_custom

        return build_custom(config, columns)
    raise ModelDirError(f"Unknown network type in a saved config. Received: type={kind!r}")


def union_columns(columns: Mapping[str, Sequence[Any]]) -> list[Any]:
    """All columns of all parts, exact repeats once, in first-seen order.

    Two *different* columns with one name are kept, so that FeatureTransform
    refuses them: dropping one would silently feed a part the other's encoding
    (e.g. a normalized 'tenure' in the DNN part read as the raw one).
    """
    seen: list[Any] = []
    for part in columns.values():
        for col in part or ():
            if col not in seen:
                seen.append(col)
    return seen
