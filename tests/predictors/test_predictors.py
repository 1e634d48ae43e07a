"""Predictor-specific behaviour: RF arrays vs scikit-learn, GBDT importance, GP/MLP std, loading."""

from __future__ import annotations

import abc
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import RandomForestRegressor

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError
from nasforge.predictors import PREDICTORS
from nasforge.predictors import BasePredictor
from nasforge.predictors import GBDTPredictor
from nasforge.predictors import GPPredictor
from nasforge.predictors import MLPPredictor
from nasforge.predictors import RFPredictor
from nasforge.predictors._rf import TreeArrays
from nasforge.testing.contracts import synthetic_regression


def test_rf_numpy_trees_match_sklearn() -> None:
    X, y = synthetic_regression(seed=1)
    forest = RandomForestRegressor(n_estimators=30, max_features=0.5, random_state=0).fit(X, y)
    trees = TreeArrays.from_sklearn(forest)
    Xq = np.random.default_rng(2).normal(1.0, 1.0, (100, X.shape[1]))  # off the training grid
    per_tree = trees.predict_trees(Xq)
    assert per_tree.shape == (30, 100)
    np.testing.assert_allclose(per_tree.mean(axis=0), forest.predict(Xq), rtol=0, atol=1e-12)
    ours = RFPredictor(n_estimators=30, max_features=0.5, seed=0).fit(X, y).predict(Xq)
    np.testing.assert_allclose(ours.mean, forest.predict(Xq), atol=1e-12)
    np.testing.assert_allclose(ours.std, per_tree.std(axis=0))


def test_rf_saved_as_arrays_without_pickle(tmp_path: Path) -> None:
    X, y = synthetic_regression()
    RFPredictor(n_estimators=5).fit(X, y).save(tmp_path)
    with np.load(tmp_path / "trees.npz", allow_pickle=False) as data:
        assert set(data.files) == {"children_left", "children_right", "feature", "threshold",
                                   "value", "offsets"}
        assert all(data[k].dtype != object for k in data.files)


def test_gbdt_is_xgboost_json_and_has_importance(tmp_path: Path) -> None:
    X, y = synthetic_regression()
    model = GBDTPredictor(n_estimators=100, seed=0).fit(X, y)
    imp = model.feature_importance()
    assert imp.shape == (X.shape[1],) and (imp >= 0).all()
    assert imp[0] > 0 and imp[1] > 0  # the interaction term's features
    model.save(tmp_path)
    assert "learner" in json.loads((tmp_path / "model.json").read_text())
    with pytest.raises(InvalidInputError, match="objective"):
        GBDTPredictor(objective="multi:softmax")


@pytest.mark.parametrize("objective", ["reg:squarederror", "rank:pairwise"])
def test_gbdt_predict_equals_booster_predict_on_a_dmatrix(objective: str) -> None:
    """predict runs inplace_predict (no DMatrix): the same numbers as the DMatrix path."""
    import xgboost as xgb

    X, y = synthetic_regression(seed=4)
    model = GBDTPredictor(n_estimators=60, objective=objective, seed=0).fit(X[:200], y[:200])
    assert model.booster_ is not None
    Xq = np.random.default_rng(5).normal(1.0, 1.0, (300, X.shape[1]))
    got = model.predict(Xq).mean
    assert got.dtype == np.float64 and got.shape == (300,)
    np.testing.assert_array_equal(got, model.booster_.predict(xgb.DMatrix(Xq)).astype(np.float64))
    np.testing.assert_array_equal(model.predict(Xq[:1]).mean, got[:1])


def test_uncertainty_grows_off_the_data() -> None:
    X, y = synthetic_regression()
    far = X[:20] + 25.0
    for model in (GPPredictor(seed=0), MLPPredictor(seed=0, epochs=60)):
        model.fit(X, y)
        near_std, far_std = model.predict(X[:20]).std, model.predict(far).std
        assert near_std is not None and far_std is not None
        assert far_std.mean() > near_std.mean()
    assert MLPPredictor(n_models=1, epochs=5).fit(X, y).predict(X).std is None


def test_load_errors(tmp_path: Path) -> None:
    X, y = synthetic_regression()
    RFPredictor(n_estimators=3).fit(X, y).save(tmp_path / "rf")
    with pytest.raises(IncompatibleComponentsError, match="'rf'"):
        GBDTPredictor.load(tmp_path / "rf")
    with pytest.raises(InvalidInputError, match="not a saved predictor"):
        BasePredictor.load(tmp_path / "missing")
    manifest = tmp_path / "rf" / "predictor.json"
    meta = json.loads(manifest.read_text())
    meta["predictor"] = "xgb"
    manifest.write_text(json.dumps(meta))
    with pytest.raises(UnknownNameError, match="gbdt"):
        BasePredictor.load(tmp_path / "rf")


def test_load_on_an_unregistered_base_checks_the_class(tmp_path: Path) -> None:
    class Intermediate(BasePredictor, abc.ABC):
        """An abstract family base: not registered, so ``name`` is empty."""

    X, y = synthetic_regression()
    RFPredictor(n_estimators=3).fit(X, y).save(tmp_path / "rf")
    with pytest.raises(IncompatibleComponentsError, match="not a Intermediate"):
        Intermediate.load(tmp_path / "rf")
    assert type(BasePredictor.load(tmp_path / "rf")) is RFPredictor


def test_registry_and_create() -> None:
    assert PREDICTORS.get("gbdt") is GBDTPredictor
    model = PREDICTORS.create("gp", seed=4)
    assert isinstance(model, GPPredictor) and model.seed == 4 and not model.is_fitted
    with pytest.raises(UnknownNameError, match="did you mean 'rf'"):
        PREDICTORS.get("rff")
