"""Predictor-guided search (GBDT-NAS): evaluate a seed set, fit, search the predictor, evaluate
its top-k, refit.

Paper:
    Neural Architecture Search with GBDT (GBDT-NAS), R. Luo, X. Tan, R. Wang, T. Qin, E. Chen,
    T.-Y. Liu, https://arxiv.org/abs/2007.04785

Round 0 evaluates ``init_samples`` random feasible archs. Every later round refits the
predictor (GBDT by default) from scratch on all evaluations (features ``space.encode``, target
the primary objective turned into "larger is better") and proposes the ``top_k`` archs with the
best predicted score that were not evaluated yet, one per ``dedupe_key`` class:

* when the space has at most ``exhaustive_below`` archs (NAS-Bench-201: 15,625), or a
  ``candidate_pool`` is given (e.g. a tabular benchmark's rows), the predictor scores the whole
  un-queried pool — exact search of the surrogate, legitimate for small spaces;
* otherwise an evolution runs *inside* the predictor (population ``inner_population``,
  ``inner_generations`` generations of mutation + crossover with cheap-bound rejection) and its
  best unseen archs are proposed.

Both work on the space's index codec (a :class:`~nasforge.search_spaces.choice_space.ChoiceSpace`):
pool and inner population are index matrices, features come from ``encode_indices``, and
architecture objects are built for the pool once and for the inner evolution's candidates only.

Optional pruning (``prune=True``) applies GBDT-NAS's feature-importance pruning
(:func:`nasforge.predictors.prune_by_importance`): the most important encoding features are
fixed to the values the best-predicted archs agree on, and proposals must match them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.strategies._ga import mutate_and_cross
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy
from nasforge.strategies.base import require_choice_space

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["PredictorStrategy"]


def _default_predictor(seed: int) -> Any:
    from nasforge.predictors import PREDICTORS

    return PREDICTORS.get("gbdt")(seed=seed)


class _Pool(NamedTuple):
    """The candidates scored exhaustively, with what ``ask`` needs of them."""

    archs: list[Arch]
    X: np.ndarray  # (n, len(encoding_names())) features
    keys: list[Hashable]  # dedupe key of each arch
    cheap_ok: np.ndarray  # (n,) bool: every cheap bound holds


@register_strategy("predictor")
class PredictorStrategy(BaseStrategy):
    """GBDT-guided search (see the module docstring).

    Args:
        space: the search space (a ChoiceSpace; ``encode_indices`` gives the features).
        objectives: the objectives; the predictor models the primary objective.
        seed: RNG seed (also seeds the predictor).
        predictor: ``factory(seed) -> unfitted predictor`` (default: the registered ``gbdt``).
        init_samples: random archs evaluated before the first fit.
        top_k: archs evaluated per round.
        candidate_pool: archs to score exhaustively (default: the whole space when it has at
            most ``exhaustive_below`` archs).
        exhaustive_below: largest space that is enumerated and scored exhaustively.
        inner_population: population of the inner evolution (large spaces).
        inner_generations: generations of the inner evolution per round.
        mutation_prob: per-choice mutation probability of the inner evolution.
        dedupe_key: arch -> class key; one arch per class is proposed per round and classes
            already evaluated are skipped (e.g. NB201's ``canonical_id``; default: the arch).
        prune: apply feature-importance pruning from round ``prune_after_rounds`` on.
        prune_features: how many important features pruning may fix.
        prune_after_rounds: first round where pruning applies.
        max_rejections: see :class:`BaseStrategy`.

    Raises:
        IncompatibleComponentsError: ``space`` is not a ChoiceSpace.
        InvalidInputError: ``init_samples < 2`` or ``top_k < 1``.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 predictor: Callable[[int], Any] | None = None, init_samples: int = 20,
                 top_k: int = 10, candidate_pool: Sequence[Arch] | None = None,
                 exhaustive_below: int = 20_000, inner_population: int = 100,
                 inner_generations: int = 20, mutation_prob: float = 0.1,
                 dedupe_key: Callable[[Arch], Hashable] | None = None, prune: bool = False,
                 prune_features: int = 3, prune_after_rounds: int = 3,
                 max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
        self._codec = require_choice_space(space, type(self).__name__)  # = space
        if init_samples < 2 or top_k < 1:
            raise InvalidInputError(
                f"predictor strategy needs init_samples >= 2 and top_k >= 1, got "
                f"{init_samples=}, {top_k=}"
            )
        self.make_predictor = predictor or _default_predictor
        self.init_samples = init_samples
        self.top_k = top_k
        self.exhaustive_below = exhaustive_below
        self.inner_population = inner_population
        self.inner_generations = inner_generations
        self.mutation_prob = mutation_prob
        self.key: Callable[[Arch], Hashable] = dedupe_key or (lambda a: a)
        self.prune = prune
        self.prune_features = prune_features
        self.prune_after_rounds = prune_after_rounds
        self._pool_given = candidate_pool is not None
        self._pool_archs: list[Arch] | None = (
            list(candidate_pool) if candidate_pool is not None else None)
        self._pool: _Pool | None = None
        self._pool_ready = False
        self.round = 0
        self.last_pruning: Any = None

    @property
    def batch_size(self) -> int:
        return self.init_samples if self.round == 0 else self.top_k

    # ---- pool ------------------------------------------------------------------------------
    def _ensure_pool(self) -> _Pool | None:
        """The scored-exhaustively pool: the given one, else the whole space when it is small
        enough, else None (then the inner evolution searches the predictor)."""
        if not self._pool_ready:
            space = self._codec
            rows = (space.to_indices(self._pool_archs) if self._pool_archs is not None
                    else space.enumerate_indices(self.exhaustive_below))
            if rows is not None:
                archs = (self._pool_archs if self._pool_archs is not None
                         else space.from_indices(rows, check=False))
                self._pool = _Pool(archs, space.encode_indices(rows),
                                   [self.key(a) for a in archs],
                                   self.objectives.cheap_feasible_indices(space, rows))
            self._pool_ready = True
        return self._pool

    # ---- proposals ---------------------------------------------------------------------------
    def ask(self, n: int) -> list[Arch]:
        if self.round == 0:
            seen: set[Hashable] = set()
            out: list[Arch] = []
            while len(out) < n:
                for a in self.feasible_batch(
                        lambda k: [self.space.sample(self.rng) for _ in range(k)], n - len(out)):
                    if self.key(a) not in seen:
                        seen.add(self.key(a))
                        out.append(a)
            return out
        X = self.space.encode_many(self.history_archs)
        y = self.objectives.signs[self.objectives.primary_index] * \
            self.history_values[:, self.objectives.primary_index]
        good = np.isfinite(y)
        model = self.make_predictor(self.seed + self.round).fit(X[good], y[good])
        evaluated = {self.key(a) for a in self.history_archs}
        pool = self._ensure_pool()
        pruning = None
        if self.prune and self.round >= self.prune_after_rounds:
            from nasforge.predictors import prune_by_importance

            pruning = prune_by_importance(
                self.space.encoding_names(), X[good], y[good], top_features=self.prune_features,
                candidates=None if pool is None else pool.X, seed=self.seed)
            self.last_pruning = pruning
        if pool is not None:
            ok = pool.cheap_ok.copy()
            if pruning is not None:
                ok &= pruning.mask(pool.X)
            idx = np.flatnonzero(ok)
            pred = np.asarray(model.predict(pool.X[idx]).mean)
            order = idx[np.argsort(-pred, kind="stable")]
            cands, keys = pool.archs, pool.keys
        else:
            cands, pred_all = self._inner_evolution(model, pruning)
            order = np.argsort(-pred_all, kind="stable")
            keys = [self.key(a) for a in cands]
        out = []
        taken: set[Hashable] = set()
        for i in order.tolist():
            k = keys[i]
            if k in evaluated or k in taken:
                continue
            taken.add(k)
            out.append(cands[i])
            if len(out) >= n:
                break
        if not out:  # pool exhausted (every class evaluated)
            return []
        return out

    def _inner_evolution(self, model: Any, pruning: Any) -> tuple[list[Arch], np.ndarray]:
        """Evolution on the predictor's scores (large spaces): children made in numpy,
        features by ``encode_indices``, architectures built only for the returned candidates.

        Returns:
            Every distinct candidate scored, and its predicted score: shape (n,).
        """
        space, rng, size = self._codec, self.rng, self.inner_population
        seen: dict[bytes, int] = {}
        rows: list[np.ndarray] = []
        preds: list[float] = []

        def score(m: np.ndarray) -> np.ndarray:
            X = space.encode_indices(m)
            p = np.asarray(model.predict(X).mean, dtype=np.float64)
            if pruning is not None:
                p = np.where(pruning.mask(X), p, -np.inf)
            for k, row, v in zip(space.row_keys(m), m, p.tolist(), strict=True):
                if k not in seen:
                    seen[k] = len(rows)
                    rows.append(row)
                    preds.append(v)
            return p

        hist_scores = self.objectives.score(self.history_values)
        top = np.argsort(-hist_scores, kind="stable")[: size // 2]
        pop = space.to_indices([self.history_archs[i] for i in top])
        pop = np.concatenate([pop, self.feasible_rows(
            space, lambda k: space.sample_indices(rng, k), size - len(pop))])
        pop_pred = score(pop)
        half = size // 2
        for _ in range(self.inner_generations):
            parents = np.argsort(-pop_pred, kind="stable")[: max(2, size // 4)]

            def make(k: int, parents: np.ndarray = parents, pop: np.ndarray = pop) -> np.ndarray:
                return mutate_and_cross(space, pop, parents, k, half, rng, self.mutation_prob)

            children = self.feasible_rows(space, make, size)
            child_pred = score(children)
            allp = np.concatenate([pop, children])
            allv = np.concatenate([pop_pred, child_pred])
            keep = np.argsort(-allv, kind="stable")[:size]
            pop, pop_pred = allp[keep], allv[keep]
        if not rows:
            return [], np.zeros(0)
        return space.from_indices(np.stack(rows), check=False), np.asarray(preds)

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        self.round += 1

    # ---- persistence -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"round": self.round}

    def _load_state(self, extra: dict[str, Any]) -> None:
        self.round = int(extra["round"])

    def _settings(self) -> dict[str, Any]:
        return {"init_samples": self.init_samples, "top_k": self.top_k,
                "exhaustive_below": self.exhaustive_below, "pool_given": self._pool_given,
                "inner_population": self.inner_population,
                "inner_generations": self.inner_generations, "prune": self.prune}
