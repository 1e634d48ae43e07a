"""GBDT-importance pruning finds the choices that matter on a planted problem and on NB201."""

from __future__ import annotations

import numpy as np

from nasforge.predictors import prune_by_importance
from nasforge.search_spaces import get_space


def test_pruning_recovers_planted_choice() -> None:
    space = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(400)]
    X = space.encode_many(archs)
    names = space.encoding_names()
    # objective: rewards a 3x3 conv on edge 3<-0 (edges[3]) most, a 1x1 on edge 1<-0 less
    y = (3.0 * X[:, names.index("edges[3]=nor_conv_3x3")]
         + 1.0 * X[:, names.index("edges[0]=nor_conv_1x1")] + 0.1 * rng.standard_normal(400))
    result = prune_by_importance(names, X, y, top_features=2, top_fraction=0.1, seed=0)
    top = result.choices[0]
    assert top.name == "edges[3]=nor_conv_3x3" and top.value == 1.0
    assert top.support == 1.0 and top.gain > 2.5
    assert result.importance.shape == (len(names),)
    assert abs(result.importance.sum() - 1.0) < 1e-9
    kept = result.mask(X)
    assert kept.any() and (y[kept].mean() > y.mean() + 1.0)
    assert "edges[3]=nor_conv_3x3" in result.describe()
    # minimising flips the preferred value
    low = prune_by_importance(names, X, y, top_features=1, maximize=False, seed=0)
    assert low.choices[0].value == 0.0
