"""Directional feature contributions of the boosted trees (tf's ``experimental_predict_with_explanations``).

Each tree is read as a walk from its root to the leaf an example lands in. Every node has
a value: a leaf its output, an inner node the mean of its leaves' outputs weighted by the
training rows' hessian sums (the engine's *cover*), as Saabas' method and XGBoost's
``approx_contribs`` take it. A step from a node to its child changes the value by
``child - parent``, and that change belongs to the feature the node splits on.

The walk starts at the *bias*: the engine's base margin plus every tree's root value, the
same for every example (for a classifier about the training rows' average logit). It then
goes through the trees in the order they were grown, step by step, adding each change to a
running logit. As tf does, a classifier's contributions are differences of the sigmoid of
that running logit, so that ``bias + sum(dfc)`` is the example's probability of class 1
(``bias`` the sigmoid of the start); a regressor's are the changes themselves, summing to
the prediction. In logit units the contributions are XGBoost's own ``approx_contribs``
grouped by feature column (the tests check it); unlike SHAP values they depend on the
order of the splits, which is tf's definition.

Each step is taken for a whole batch at once (numpy over the examples, a loop over trees
and depths), from the leaves the engine reports (``pred_leaf``): no split is re-evaluated
here, so missing values and categorical splits go exactly where the engine sends them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["TreePaths"]


class _Tree:
    """One tree's paths: for each leaf id, the split features and value changes from the root."""

    def __init__(self, paths: dict[int, tuple[list[int], list[float], float]], root: float) -> None:
        self.root = root
        depth = max((len(f) for f, _, _ in paths.values()), default=0)
        size = max(paths) + 1 if paths else 1
        self.features = np.zeros((size, max(depth, 1)), dtype=np.int64)
        self.deltas = np.zeros((size, max(depth, 1)), dtype=np.float64)
        self.leaf_values = np.zeros(size, dtype=np.float64)
        for leaf_id, (feats, deltas, value) in paths.items():
            self.features[leaf_id, : len(feats)] = feats
            self.deltas[leaf_id, : len(deltas)] = deltas
            self.leaf_values[leaf_id] = value


def _paths(
    node: dict[str, Any],
    leaf_id: Callable[[dict[str, Any]], int],
    feature: Callable[[dict[str, Any]], int],
    leaf: Callable[[dict[str, Any]], tuple[float, float]],
    children: Callable[[dict[str, Any]], list[dict[str, Any]]],
) -> _Tree:
    values: dict[int, float] = {}  # by id() of the node: each node's value, computed once

    def value_and_cover(n: dict[str, Any]) -> tuple[float, float]:
        kids = children(n)
        if not kids:
            v, c = leaf(n)
        else:
            parts = [value_and_cover(k) for k in kids]
            c = sum(cover for _, cover in parts)
            v = (
                sum(v * cover for v, cover in parts) / c
                if c > 0
                else float(np.mean([v for v, _ in parts]))
            )
        values[id(n)] = v
        return v, c

    root, _ = value_and_cover(node)
    paths: dict[int, tuple[list[int], list[float], float]] = {}
    stack: list[tuple[dict[str, Any], list[int], list[float]]] = [(node, [], [])]
    while stack:
        n, feats, deltas = stack.pop()
        kids = children(n)
        if not kids:
            paths[leaf_id(n)] = (feats, deltas, values[id(n)])
        for kid in kids:
            stack.append((kid, [*feats, feature(n)], [*deltas, values[id(kid)] - values[id(n)]]))
    return _Tree(paths, root)


class TreePaths:
    """Every tree of a trained booster as paths, and the contributions of a matrix's rows."""

    def __init__(self, trees: list[_Tree], leaves: Callable[[np.ndarray], np.ndarray]) -> None:
        self.trees = trees
        self.leaves = leaves
        self.base: float | None = None  # the engine's base margin, from the first row seen

    @classmethod
    def from_lightgbm(cls, booster: Any, num_threads: int | None) -> TreePaths:
        info = booster.dump_model(num_iteration=-1)["tree_info"]

        def children(n: dict[str, Any]) -> list[dict[str, Any]]:
            return [n["left_child"], n["right_child"]] if "left_child" in n else []

        trees = [
            _paths(
                t["tree_structure"],
                lambda n: int(n.get("leaf_index", 0)),  # a one-leaf tree's leaf has no index
                lambda n: int(n["split_feature"]),
                lambda n: (float(n["leaf_value"]), float(n.get("leaf_weight", 0.0))),
                children,
            )
            for t in info
        ]
        extra = {} if num_threads is None else {"num_threads": num_threads}

        def leaves(x: np.ndarray) -> np.ndarray:
            ids = booster.predict(x, pred_leaf=True, start_iteration=0, num_iteration=-1, **extra)
            return np.asarray(ids, dtype=np.int64).reshape(len(x), len(trees))

        return cls(trees, leaves)

    @classmethod
    def from_xgboost(cls, booster: Any, names: list[str], types: list[str]) -> TreePaths:
        import xgboost as xgb

        index = {name: i for i, name in enumerate(names)}

        def children(n: dict[str, Any]) -> list[dict[str, Any]]:
            return list(n.get("children", ()))

        trees = [
            _paths(
                json.loads(text),
                lambda n: int(n["nodeid"]),
                lambda n: index[n["split"]],
                lambda n: (float(n["leaf"]), float(n.get("cover", 0.0))),
                children,
            )
            for text in booster.get_dump(dump_format="json", with_stats=True)
        ]

        def leaves(x: np.ndarray) -> np.ndarray:
            d = xgb.DMatrix(x, feature_names=names, feature_types=types, enable_categorical=True)
            return np.asarray(booster.predict(d, pred_leaf=True), dtype=np.int64).reshape(
                len(x), len(trees)
            )

        return cls(trees, leaves)

    def contributions(
        self, x: np.ndarray, margins: np.ndarray, n_features: int, probability: bool
    ) -> tuple[float, np.ndarray]:
        """(bias, contributions ``[N, n_features]``) for the rows of ``x`` whose margins (the
        engine's raw outputs, one per row) are ``margins``.

        The base margin is the margin less the trees' leaves, the same for every row: it is
        taken from the first row this object sees, so that every batch has the same bias.
        The walk ends at each row's margin (up to rounding).
        """
        n = len(x)
        ids = self.leaves(x)
        rows = np.arange(n)
        leaf_sum = np.zeros(n)
        for t, tree in enumerate(self.trees):
            leaf_sum += tree.leaf_values[ids[:, t]]
        if self.base is None and n:
            self.base = float(margins[0] - leaf_sum[0])
        start = (self.base or 0.0) + sum(tree.root for tree in self.trees)
        act = _sigmoid if probability else _identity
        logit = np.full(n, start)
        level = act(logit)
        contrib = np.zeros((n, n_features))
        for t, tree in enumerate(self.trees):
            feats, deltas = tree.features[ids[:, t]], tree.deltas[ids[:, t]]
            for k in range(feats.shape[1]):
                logit = logit + deltas[:, k]
                now = act(logit)
                contrib[rows, feats[:, k]] += now - level
                level = now
        return float(act(np.asarray([start]))[0]), contrib


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out: np.ndarray = 0.5 + 0.5 * np.tanh(0.5 * z)  # 1 / (1 + e^-z), with no overflow
    return out


def _identity(z: np.ndarray) -> np.ndarray:
    return z
