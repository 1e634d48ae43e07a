"""Evolutionary search: constrained single-objective (OFA / HAT) and Pareto (NSGA-II).

Papers:
    Once-for-All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791 (evolution over a predictor under an efficiency bound)
    HAT: Hardware-Aware Transformers for Efficient Natural Language Processing,
    https://arxiv.org/abs/2005.14187 (same recipe with a latency predictor)
    A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II, Deb et al. 2002,
    https://doi.org/10.1109/4235.996017

Single mode, per generation (OFA's ``EvolutionFinder`` defaults): keep the ``parents`` best
(25) of parents + children by score; make ``mutations`` (50) children by mutating a uniformly
chosen parent with per-choice probability ``mutation_prob`` (0.1) and ``crossovers`` (50) by
uniform crossover of two uniformly chosen parents. A child violating a cheap bound (latency,
FLOPs over the budget) is rejected and redrawn from the same parent(s) before any expensive
objective runs. The first generation is ``population_size`` (100) feasible random archs.

The search works on the space's index codec (a
:class:`~nasforge.search_spaces.choice_space.ChoiceSpace` and its index matrix): the population
is an (n, num_choices) matrix, children are made in numpy by the GA operators of
:mod:`nasforge.strategies._ga` (on the codec's ``mutate_indices``, ``crossover_indices``),
cheap bounds are checked on the batch
(:meth:`~nasforge.strategies.objectives.SearchObjectives.cheap_feasible_indices`, memoised per
row) and only rejected rows are redrawn; architecture objects are built only for the children
that ``ask`` hands out.

Pareto mode: survivors are the ``population_size`` best of parents + children by NSGA-II's
constrained non-dominated rank and crowding distance; the parents of each child are chosen by
binary tournament on that order.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.strategies import FlopsObjective, SearchObjectives, run_search
    >>> space = get_space("nasbench201")
    >>> objs = SearchObjectives([FlopsObjective(space, upper=100)])
    >>> strategy = EvolutionStrategy(space, objs, seed=0, population_size=8, parents=2,
    ...                              mutations=4, crossovers=4)
    >>> result = run_search(strategy, budget=20)
    >>> result.n_evaluated, len(strategy.population)
    (20, 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.strategies._ga import make_children
from nasforge.strategies._ga import select_parents
from nasforge.strategies._nsga2 import nsga2_select
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy
from nasforge.strategies.base import require_choice_space

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["EVOLUTION_PRESETS", "EvolutionStrategy"]

#: Published evolution settings, one row per source; a setting passed explicitly overrides the
#: row. ``ofa``: Once-for-All's search (``ofa/nas/search_algorithm/evolution.py`` and its
#: tutorial). ``hat``: HAT's ``configs/*/evo_search/*.yml`` (``evo-iter 30``, population 125,
#: parents 25, 50 mutations + 50 crossovers, mutation prob 0.3); HAT's 30 iterations are
#: ``--budget 3025`` here (125 + 29 x 100 candidates).
EVOLUTION_PRESETS: dict[str, dict[str, float]] = {
    "ofa": {"population_size": 100, "parents": 25, "mutations": 50, "crossovers": 50,
            "mutation_prob": 0.1},
    "hat": {"population_size": 125, "parents": 25, "mutations": 50, "crossovers": 50,
            "mutation_prob": 0.3},
}


@register_strategy("evolution")
class EvolutionStrategy(BaseStrategy):
    """Regularised-by-elitism evolution with rejection of over-budget candidates.

    Args:
        space: the search space (a ChoiceSpace: evolution works on its index matrix).
        objectives: the objectives; single mode maximises ``objectives.score``.
        seed: RNG seed.
        preset: the row of :data:`EVOLUTION_PRESETS` that unset settings come from.
        population_size: size of the first generation (and of the survivors in Pareto mode).
        parents: parents kept per generation (single mode; unused in Pareto mode).
        mutations: children made by mutation per generation.
        crossovers: children made by crossover per generation.
        mutation_prob: per-choice resampling probability of a mutation.
        mode: ``single`` or ``pareto``; defaults to ``objectives.mode``.
        max_rejections: see :class:`BaseStrategy`.

    Example:
        >>> from nasforge.search_spaces import get_space
        >>> from nasforge.strategies import FlopsObjective, SearchObjectives
        >>> objs = SearchObjectives([FlopsObjective(get_space("hat_wmt14ende"))])
        >>> s = EvolutionStrategy(get_space("hat_wmt14ende"), objs, preset="hat", parents=20)
        >>> (s.population_size, s.parents, s.mutation_prob)
        (125, 20, 0.3)

    Raises:
        IncompatibleComponentsError: ``space`` is not a ChoiceSpace.
        InvalidInputError: an unknown preset, non-positive sizes, more parents than the
            population, a probability outside [0, 1], an unknown mode.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 preset: str = "ofa", population_size: int | None = None,
                 parents: int | None = None, mutations: int | None = None,
                 crossovers: int | None = None, mutation_prob: float | None = None,
                 mode: Literal["single", "pareto"] | None = None,
                 max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
        self._codec = require_choice_space(space, type(self).__name__)  # = space
        if preset not in EVOLUTION_PRESETS:
            raise InvalidInputError(
                f"evolution preset must be one of {sorted(EVOLUTION_PRESETS)}, got {preset!r}")
        row = EVOLUTION_PRESETS[preset]
        population_size = int(row["population_size"]) if population_size is None \
            else population_size
        parents = int(row["parents"]) if parents is None else parents
        mutations = int(row["mutations"]) if mutations is None else mutations
        crossovers = int(row["crossovers"]) if crossovers is None else crossovers
        mutation_prob = float(row["mutation_prob"]) if mutation_prob is None else mutation_prob
        if population_size < 1 or parents < 1 or mutations < 0 or crossovers < 0 or (
                mutations + crossovers) < 1:
            raise InvalidInputError(
                "evolution needs population_size >= 1, parents >= 1, mutations + crossovers >= "
                f"1; got {population_size=}, {parents=}, {mutations=}, {crossovers=}"
            )
        mode = mode or objectives.mode
        if mode == "single" and parents > population_size:
            raise InvalidInputError(
                f"evolution: `parents <= population_size` must hold, got {parents=}, "
                f"{population_size=}"
            )
        if not 0.0 <= mutation_prob <= 1.0:
            raise InvalidInputError(f"`0 <= mutation_prob <= 1` must hold, got {mutation_prob=}")
        if mode not in ("single", "pareto"):
            raise InvalidInputError(f"evolution mode must be 'single' or 'pareto', got {mode!r}")
        self.population_size = population_size
        self.parents = parents
        self.mutations = mutations
        self.crossovers = crossovers
        self.mutation_prob = mutation_prob
        self.mode = mode
        self.generation = -1  # -1: the random initial generation has not been made yet
        self._gen_size = 0
        empty = np.zeros((0, self._codec.num_choices()), dtype=np.int64)
        self._queue_idx = empty  # rows of this generation not asked yet
        self._asked_idx = empty  # rows asked and not told yet, in ask order
        self._children_idx = empty  # rows of this generation told so far
        self._children_values = np.zeros((0, len(objectives)))
        self._pop_idx = empty  # parents (single mode) or survivors (Pareto mode), best first
        self._pop_values = np.zeros((0, len(objectives)))

    @property
    def batch_size(self) -> int:
        return self.population_size if self.generation < 0 else self.mutations + self.crossovers

    # ---- generations ---------------------------------------------------------------------
    def _new_generation(self) -> None:
        space = self._codec
        if self.generation < 0:
            self._queue_idx = self.feasible_rows(
                space, lambda k: space.sample_indices(self.rng, k), self.population_size)
        else:
            self._queue_idx = self._make_children()
        self._gen_size = len(self._queue_idx)

    def _make_children(self) -> np.ndarray:
        """Children of one generation: (mutations + crossovers, num_choices) index rows
        (:func:`~nasforge.strategies._ga.make_children`; parents by
        :func:`~nasforge.strategies._ga.select_parents`, a binary tournament in Pareto mode)."""
        nm, nc = self.mutations, self.crossovers
        tournament = self.mode != "single"
        p1 = select_parents(self.rng, len(self._pop_idx), nm + nc, tournament)
        p2 = select_parents(self.rng, len(self._pop_idx), nm + nc, tournament)
        space = self._codec
        return make_children(
            space, self._pop_idx, p1, p2, nm, self.rng, self.mutation_prob,
            lambda cand: self.objectives.cheap_feasible_indices(space, cand),
            self.max_rejections)

    # ---- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Arch]:
        if not len(self._queue_idx) and not len(self._asked_idx) and not len(
                self._children_idx):
            self._new_generation()
        rows, self._queue_idx = self._queue_idx[:n], self._queue_idx[n:]
        self._asked_idx = np.concatenate([self._asked_idx, rows])
        return self._codec.from_indices(rows, check=False)

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        if len(archs) > len(self._asked_idx):
            raise InvalidInputError(
                f"EvolutionStrategy.tell: told {len(archs)} archs but {len(self._asked_idx)} "
                "were asked and not told yet; tell each batch of ask once, in ask order"
            )
        told, self._asked_idx = self._asked_idx[:len(archs)], self._asked_idx[len(archs):]
        self._children_idx = np.concatenate([self._children_idx, told])
        self._children_values = np.concatenate([self._children_values, values])
        if len(self._queue_idx) or len(self._children_idx) < self._gen_size:
            return
        rows = np.concatenate([self._pop_idx, self._children_idx])
        vals = np.concatenate([self._pop_values, self._children_values], axis=0)
        if self.mode == "single":
            score = self.objectives.score(vals)
            viol = self.objectives.violation(vals)
            keep = np.lexsort((np.arange(len(rows)), viol, -score))[: self.parents]
        else:
            keep = nsga2_select(self.objectives.minimization_matrix(vals), self.population_size,
                                self.objectives.violation(vals))
        self._pop_idx, self._pop_values = rows[keep], vals[keep]
        self._children_idx = self._children_idx[:0]
        self._children_values = self._children_values[:0]
        self.generation += 1

    # ---- persistence -------------------------------------------------------------------
    def _rows_to_state(self, rows: np.ndarray) -> list[dict[str, Any]]:
        return [self.arch_to_state(a) for a in self._codec.from_indices(rows, check=False)]

    def _rows_from_state(self, data: list[dict[str, Any]]) -> np.ndarray:
        return self._codec.to_indices([self.arch_from_state(d) for d in data])

    def _state(self) -> dict[str, Any]:
        return {
            "generation": self.generation, "gen_size": self._gen_size,
            "queue": self._rows_to_state(self._queue_idx),
            "children": self._rows_to_state(self._children_idx),
            "children_values": self._children_values.tolist(),
            "population": self._rows_to_state(self._pop_idx),
            "population_values": self._pop_values.tolist(),
        }

    def _load_state(self, extra: dict[str, Any]) -> None:
        k = len(self.objectives)
        self.generation = int(extra["generation"])
        self._gen_size = int(extra["gen_size"])
        self._queue_idx = self._rows_from_state(extra["queue"])
        self._asked_idx = self._queue_idx[:0]
        self._children_idx = self._rows_from_state(extra["children"])
        self._children_values = np.asarray(extra["children_values"], dtype=np.float64).reshape(
            len(self._children_idx), k)
        self._pop_idx = self._rows_from_state(extra["population"])
        self._pop_values = np.asarray(extra["population_values"], dtype=np.float64).reshape(
            len(self._pop_idx), k)

    def _settings(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "parents": self.parents,
                "mutations": self.mutations, "crossovers": self.crossovers,
                "mutation_prob": self.mutation_prob, "mode": self.mode}

    @property
    def population(self) -> list[Arch]:
        """The current parents (single mode) or survivors (Pareto mode), best first."""
        return self._codec.from_indices(self._pop_idx, check=False)
