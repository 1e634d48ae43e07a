"""Random forest (scikit-learn), saved as plain tree arrays and predicted with numpy.

The fitted trees are stored as their arrays (``children_left``, ``children_right``,
``feature``, ``threshold``, ``value``) in an ``.npz`` (read with ``allow_pickle=False``), so a
saved forest needs neither pickle nor the scikit-learn version that fitted it. Prediction always
walks those arrays (fitted or loaded alike), so save/load round-trips exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from nasforge.errors import InvalidInputError
from nasforge.predictors.base import BasePredictor
from nasforge.predictors.base import NotFittedError
from nasforge.predictors.base import Prediction
from nasforge.predictors.registry import register_predictor

__all__ = ["RFPredictor", "TreeArrays"]

_ARRAYS_FILE = "trees.npz"
_KEYS = ("children_left", "children_right", "feature", "threshold", "value", "offsets")


class TreeArrays:
    """A forest as concatenated node arrays (tree ``t`` owns ``offsets[t]:offsets[t + 1]``).

    Attributes:
        children_left: (nodes,) global index of the left child, -1 at leaves.
        children_right: (nodes,) global index of the right child, -1 at leaves.
        feature: (nodes,) split feature, -2 at leaves.
        threshold: (nodes,) go left when ``x[feature] <= threshold`` (x rounded to float32).
        value: (nodes,) leaf value (mean target of the leaf).
        offsets: (trees + 1,) start of each tree's nodes.
    """

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.children_left = np.asarray(arrays["children_left"], dtype=np.int64)
        self.children_right = np.asarray(arrays["children_right"], dtype=np.int64)
        self.feature = np.asarray(arrays["feature"], dtype=np.int64)
        self.threshold = np.asarray(arrays["threshold"], dtype=np.float64)
        self.value = np.asarray(arrays["value"], dtype=np.float64)
        self.offsets = np.asarray(arrays["offsets"], dtype=np.int64)

    @classmethod
    def from_sklearn(cls, forest: RandomForestRegressor) -> TreeArrays:
        """Concatenate the trees of a fitted single-output forest."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in _KEYS[:-1]}
        offsets = [0]
        for est in forest.estimators_:
            t = est.tree_
            base = offsets[-1]
            left, right = t.children_left.astype(np.int64), t.children_right.astype(np.int64)
            parts["children_left"].append(np.where(left >= 0, left + base, -1))
            parts["children_right"].append(np.where(right >= 0, right + base, -1))
            parts["feature"].append(t.feature.astype(np.int64))
            parts["threshold"].append(t.threshold.astype(np.float64))
            parts["value"].append(t.value.reshape(t.node_count, -1)[:, 0].astype(np.float64))
            offsets.append(base + t.node_count)
        arrays = {k: np.concatenate(v) for k, v in parts.items()}
        arrays["offsets"] = np.asarray(offsets, dtype=np.int64)
        return cls(arrays)

    def as_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _KEYS}

    def predict_trees(self, X: np.ndarray) -> np.ndarray:
        """Per-tree predictions.

        Args:
            X: (m, d) features.

        Returns:
            (trees, m) leaf values.
        """
        Xf = X.astype(np.float32).astype(np.float64)  # scikit-learn splits on float32 inputs
        roots = self.offsets[:-1]
        node = np.repeat(roots[:, None], X.shape[0], axis=1)  # (trees, m)
        rows = np.arange(X.shape[0])[None, :]
        while True:
            left = self.children_left[node]
            inner = left >= 0
            if not inner.any():
                break
            feat = np.where(inner, self.feature[node], 0)
            go_left = Xf[rows, feat] <= self.threshold[node]
            nxt = np.where(go_left, left, self.children_right[node])
            node = np.where(inner, nxt, node)
        return self.value[node]


@register_predictor("rf")
class RFPredictor(BasePredictor):
    """Random forest regressor; ``std`` is the spread of the per-tree predictions.

    Args:
        n_estimators: number of trees.
        max_depth: maximum tree depth (``None``: grow until leaves are pure / small).
        min_samples_leaf: minimum rows per leaf.
        max_features: share of features tried per split (scikit-learn's float form).
        n_jobs: threads used for fitting.
        seed: seeds bootstrap and feature sampling.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = None,
        min_samples_leaf: int = 1,
        max_features: float = 0.5,
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        if n_estimators < 1 or min_samples_leaf < 1 or not 0 < max_features <= 1:
            raise InvalidInputError(
                f"rf needs n_estimators >= 1, min_samples_leaf >= 1 and 0 < max_features <= 1, "
                f"got {n_estimators=}, {min_samples_leaf=}, {max_features=}"
            )
        self.n_estimators = int(n_estimators)
        self.max_depth = None if max_depth is None else int(max_depth)
        self.min_samples_leaf = int(min_samples_leaf)
        self.max_features = float(max_features)
        self.n_jobs = int(n_jobs)
        self.trees_: TreeArrays | None = None

    def get_config(self) -> dict[str, Any]:
        return {
            "n_estimators": self.n_estimators,
            "max_depth": self.max_depth,
            "min_samples_leaf": self.min_samples_leaf,
            "max_features": self.max_features,
            "n_jobs": self.n_jobs,
            "seed": self.seed,
        }

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf,
            max_features=self.max_features,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        ).fit(X, y)
        self.trees_ = TreeArrays.from_sklearn(forest)

    def _trees(self) -> TreeArrays:
        if self.trees_ is None:
            raise NotFittedError("rf predictor is not fitted; call fit(X, y) first")
        return self.trees_

    def _predict(self, X: np.ndarray) -> Prediction:
        per_tree = self._trees().predict_trees(X)
        return Prediction(mean=per_tree.mean(axis=0), std=per_tree.std(axis=0))

    def _save_state(self, path: Path) -> dict[str, Any]:
        arrays: dict[str, Any] = dict(self._trees().as_dict())
        np.savez(path / _ARRAYS_FILE, **arrays)
        return {"arrays_file": _ARRAYS_FILE}

    def _load_state(self, path: Path, meta: dict[str, Any]) -> None:
        with np.load(path / meta.get("arrays_file", _ARRAYS_FILE), allow_pickle=False) as data:
            self.trees_ = TreeArrays({k: data[k] for k in _KEYS})
        _check_trees(str(path), self.trees_, int(self.n_features_ or 0))


def _check_trees(source: str, t: TreeArrays, n_features: int) -> None:
    """Refuse a forest whose arrays disagree in length, whose inner nodes point backwards or
    outside the forest (a walk could loop forever), split on a feature the manifest does not
    have, or hold NaN / inf thresholds or values.

    Raises:
        InvalidInputError: one line naming the fault.
    """
    n = len(t.value)
    fault = ""
    if any(len(a) != n for a in (t.children_left, t.children_right, t.feature, t.threshold)):
        fault = "its node arrays differ in length"
    elif len(t.offsets) < 2 or t.offsets[0] != 0 or t.offsets[-1] != n or (
            np.diff(t.offsets) <= 0).any():
        fault = "its tree offsets do not cover the nodes"
    else:
        idx = np.arange(n)
        inner = t.children_left >= 0
        kids = np.concatenate([t.children_left[inner], t.children_right[inner]])
        if (kids <= np.concatenate([idx[inner], idx[inner]])).any() or (kids >= n).any():
            fault = "a node points backwards or outside the forest"
        elif ((t.feature[inner] < 0) | (t.feature[inner] >= n_features)).any():
            fault = f"a node splits on a feature outside 0..{n_features - 1} (n_features)"
        elif not (np.isfinite(t.threshold[inner]).all() and np.isfinite(t.value).all()):
            fault = "a threshold or leaf value is NaN or infinite"
    if fault:
        raise InvalidInputError(f"{source}: the rf predictor's arrays are damaged ({fault}); "
                                "re-save the predictor")
