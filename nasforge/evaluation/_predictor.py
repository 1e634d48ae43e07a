"""A fitted surrogate (e.g. the GBDT accuracy predictor) as an objective.

Example:
    >>> import numpy as np
    >>> from nasforge.predictors import PREDICTORS
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> rng = np.random.default_rng(0)
    >>> train = [space.sample(rng) for _ in range(32)]
    >>> y = np.array([sum("conv" in e for e in a.edges) for a in train], dtype=float)
    >>> gbdt = PREDICTORS.get("gbdt")(n_estimators=20).fit(space.encode_many(train), y)
    >>> PredictorObjective(gbdt, space).evaluate_many(train[:3]).shape
    (3,)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.strategies.objectives.base import Direction
from nasforge.strategies.objectives.protocols import SurrogatePredictor

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["PredictorObjective", "check_space"]


class PredictorObjective(AccuracyObjective):
    """A fitted surrogate (e.g. GBDT accuracy predictor) on ``space.encode_many``.

    A whole batch is encoded at once and predicted in one ``predict`` call (the GBDT predictor
    answers it with one ``Booster.inplace_predict``).

    Args:
        predictor: a fitted predictor (:class:`~.protocols.SurrogatePredictor`, e.g. any
            :class:`~nasforge.predictors.base.BasePredictor`); its ``mean`` is the value.
        space: the space whose ``encode_many`` gives the predictor's features.
        name: column name.
        direction: ``maximize`` for accuracy predictors.
        lower: lower bound.
        upper: upper bound.
        cheap: surrogates are cheap, but play the expensive (accuracy) role by default.
        source: where the predictor was loaded from (recorded in provenance).

    Raises:
        IncompatibleComponentsError: ``predictor`` has no ``predict(X) -> Prediction``, or was
            fitted for another space (:func:`check_space`).
        InvalidInputError: (:meth:`evaluate_many`) the predictor answered NaN or inf.
    """

    def __init__(self, predictor: SurrogatePredictor, space: SearchSpace, *,
                 name: str = "pred_acc", direction: Direction = "maximize",
                 lower: float | None = None, upper: float | None = None,
                 cheap: bool = False, source: str | None = None) -> None:
        if not isinstance(predictor, SurrogatePredictor):
            raise IncompatibleComponentsError(
                f"PredictorObjective needs a predictor with predict(X) -> Prediction and "
                f"is_fitted; {type(predictor).__name__} lacks them: pass a fitted "
                "nasforge.predictors predictor (PREDICTORS.get(name)(...).fit(X, y))"
            )
        check_space(source or type(predictor).__name__, getattr(predictor, "fitted_space", None),
                    getattr(predictor, "n_features_", None), space.name, space.encoding_names())
        super().__init__(name, direction, lower=lower, upper=upper, cheap=cheap)
        self.predictor = predictor
        self.space = space
        self.source = source

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0)
        X = self.space.encode_many(list(archs))
        out = np.asarray(self.predictor.predict(X).mean, dtype=np.float64).reshape(-1)
        bad = ~np.isfinite(out)
        if bad.any():
            where = f"predictor {self.source}" if self.source else (
                f"the {type(self.predictor).__name__}")
            raise InvalidInputError(
                f"{where} predicted NaN or infinite {self.name} for {int(bad.sum())} of "
                f"{len(out)} architectures (first {archs[int(np.argmax(bad))].arch_id}); its "
                "weights are damaged: re-save or re-import it")
        return out

    def provenance(self) -> dict[str, Any]:
        out = {"kind": "predictor", "predictor": type(self.predictor).__name__,
               "space": self.space.name}
        return out if self.source is None else {**out, "path": self.source}


def check_space(source: str, recorded: str | None, n_features: int | None, space: str,
                encoding: Sequence[str]) -> None:
    """Refuse a predictor fitted for another space than ``space``.

    Args:
        source: the predictor (folder) named in the message.
        recorded: the space its manifest records (``None``: an older folder).
        n_features: its feature count (``None``: not a nasforge predictor; nothing to check).
        space: the space of the search.
        encoding: that space's ``encoding_names()``.

    Raises:
        IncompatibleComponentsError: another recorded space, or (no record) another feature
            count than the space encodes.
    """
    if recorded is not None:
        if recorded != space:
            raise IncompatibleComponentsError(
                f"predictor {source} was fitted for space {recorded!r}, not {space!r}; use "
                f"--space {recorded} or a predictor fitted on {space}")
        return
    if n_features is not None and n_features != len(encoding):
        raise IncompatibleComponentsError(
            f"predictor {source} records no space and reads {n_features} features; space "
            f"{space!r} encodes {len(encoding)}: it was fitted for another space (re-save it "
            "with predictor.save(path, space=NAME) to record it)")
