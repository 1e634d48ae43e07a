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

Spaces made of discrete choices (:class:`~nasforge.search_spaces.base.ChoiceSpace`) are evolved
as index matrices: the population is an (n, num_choices) matrix, children are made in numpy
(``mutate_indices``, ``crossover_indices``), cheap bounds are checked on the batch
(:meth:`~nasforge.strategies.objectives.SearchObjectives.cheap_feasible_indices`, memoised per
row) and only rejected rows are redrawn; architecture objects are built only for the accepted
children that ``ask`` hands out.

Pareto mode: survivors are the ``population_size`` best of parents + children by NSGA-II's
constrained non-dominated rank and crowding distance; the parents of each child are chosen by
binary tournament on that order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.search_spaces.base import ChoiceSpace
from nasforge.strategies._nsga2 import nsga2_select
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["EvolutionStrategy"]


@register_strategy("evolution")
class EvolutionStrategy(BaseStrategy):
    """Regularised-by-elitism evolution with rejection of over-budget candidates.

    Args:
        space: the search space (needs ``mutate`` and ``crossover``).
        objectives: the objectives; single mode maximises ``objectives.score``.
        seed: RNG seed.
        population_size: size of the first generation (and of the survivors in Pareto mode).
        parents: parents kept per generation (single mode; unused in Pareto mode).
        mutations: children made by mutation per generation.
        crossovers: children made by crossover per generation.
        mutation_prob: per-choice resampling probability of a mutation.
        mode: ``single`` or ``pareto``; defaults to ``objectives.mode``.
        max_rejections: see :class:`BaseStrategy`.

    Raises:
        InvalidInputError: non-positive sizes, more parents than the population, a
            probability outside [0, 1], an unknown mode.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 population_size: int = 100, parents: int = 25, mutations: int = 50,
                 crossovers: int = 50, mutation_prob: float = 0.1,
                 mode: Literal["single", "pareto"] | None = None,
                 max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
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
        self._queue: list[Arch] = []
        self._gen_size = 0
        self._children: list[Arch] = []
        self._children_values: list[np.ndarray] = []
        self._pop: list[Arch] = []
        self._pop_values = np.zeros((0, len(objectives)))
        # index-matrix mode (ChoiceSpace): rows parallel to _queue, _children and _pop
        self._ispace = space if isinstance(space, ChoiceSpace) else None
        width = space.num_choices() if self._ispace is not None else 0
        self._queue_idx = np.zeros((0, width), dtype=np.int64)
        self._children_idx: list[np.ndarray] = []
        self._pop_idx = np.zeros((0, width), dtype=np.int64)
        self._asked: tuple[list[Arch], np.ndarray] | None = None

    @property
    def batch_size(self) -> int:
        return self.population_size if self.generation < 0 else self.mutations + self.crossovers

    # ---- generations ---------------------------------------------------------------------
    def _new_generation(self) -> None:
        if self._ispace is not None:
            self._new_generation_indices(self._ispace)
            return
        if self.generation < 0:
            self._queue = self.feasible_batch(
                lambda k: [self.space.sample(self.rng) for _ in range(k)], self.population_size)
        else:
            self._queue = self._make_children()
        self._gen_size = len(self._queue)
        self._children, self._children_values = [], []

    def _pick_parent(self, size: int) -> np.ndarray:
        if self.mode == "single":
            return self.rng.integers(len(self._pop), size=size)
        # binary tournament on the NSGA-II order (the population is stored best first)
        a = self.rng.integers(len(self._pop), size=size)
        b = self.rng.integers(len(self._pop), size=size)
        return np.minimum(a, b)

    def _make_children(self) -> list[Arch]:
        nm, nc = self.mutations, self.crossovers
        p1 = self._pick_parent(nm + nc).tolist()
        p2 = self._pick_parent(nm + nc).tolist()
        pop, space, rng, prob = self._pop, self.space, self.rng, self.mutation_prob
        out: list[Arch | None] = [None] * (nm + nc)
        todo = list(range(nm + nc))
        rejected = 0
        while todo:
            cand = [space.mutate(pop[p1[i]], rng, prob) if i < nm else
                    space.crossover(pop[p1[i]], pop[p2[i]], rng) for i in todo]
            ok = self.objectives.cheap_feasible(cand).tolist()
            left = []
            for i, a, good in zip(todo, cand, ok, strict=True):
                if good:
                    out[i] = a
                else:
                    left.append(i)
            rejected = rejected + len(left) if len(left) == len(todo) else 0
            if rejected >= self.max_rejections:
                raise InvalidInputError(
                    f"evolution: {self.max_rejections} children in a row violated the cheap "
                    "bounds; relax the budget or seed the population with feasible archs"
                )
            todo = left
        return [a for a in out if a is not None]

    # ---- index-matrix mode ---------------------------------------------------------------
    def _new_generation_indices(self, space: ChoiceSpace) -> None:
        if self.generation < 0:
            rows = self.feasible_rows(
                space, lambda k: space.sample_indices(self.rng, k), self.population_size)
        else:
            rows = self._make_children_indices(space)
        self._queue_idx = rows
        self._queue = space.from_indices(rows, check=False)
        self._gen_size = len(self._queue)
        self._children, self._children_values, self._children_idx = [], [], []

    def _make_children_indices(self, space: ChoiceSpace) -> np.ndarray:
        """Children of one generation: (mutations + crossovers, num_choices) index rows.

        A rejected child is redrawn from the same parent(s); redraws are made several at a
        time per child (the first feasible one is kept, which is the distribution of drawing
        them one after the other), so that a generation takes a few numpy rounds.
        """
        nm, nc = self.mutations, self.crossovers
        p1 = self._pick_parent(nm + nc)
        p2 = self._pick_parent(nm + nc)
        pop, rng = self._pop_idx, self.rng
        width = pop.shape[1]
        out = np.empty((nm + nc, width), dtype=np.int64)
        todo = np.arange(nm + nc)  # ascending: mutations first, then crossovers
        reps = 1
        rejected = 0
        while todo.size:
            slots = np.repeat(todo, reps)
            mut, cro = slots[slots < nm], slots[slots >= nm]
            parts = []
            if mut.size:
                parts.append(space.mutate_indices(pop[p1[mut]], rng, self.mutation_prob))
            if cro.size:
                parts.append(space.crossover_indices(pop[p1[cro]], pop[p2[cro]], rng))
            cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
            ok = self.objectives.cheap_feasible_indices(space, cand).reshape(todo.size, reps)
            done = ok.any(axis=1)
            first = ok.argmax(axis=1)
            out[todo[done]] = cand.reshape(todo.size, reps, width)[done, first[done]]
            rejected = 0 if done.any() else rejected + cand.shape[0]
            if rejected >= self.max_rejections:
                raise InvalidInputError(
                    f"evolution: {self.max_rejections} children in a row violated the cheap "
                    "bounds; relax the budget or seed the population with feasible archs"
                )
            todo = todo[~done]
            reps = min(4 * reps, 64)
        return out

    def _rows_of(self, space: ChoiceSpace, archs: list[Arch]) -> np.ndarray:
        """Index rows of told archs: those of the last ask when they are the same objects."""
        asked, self._asked = self._asked, None
        if asked is not None and len(asked[0]) == len(archs) and all(
                x is y for x, y in zip(asked[0], archs, strict=True)):
            return asked[1]
        return space.to_indices(archs)

    # ---- ask / tell ------------------------------------------------------------------------
    def ask(self, n: int) -> list[Arch]:
        if not self._queue and len(self._children) == 0:
            self._new_generation()
        out, self._queue = self._queue[:n], self._queue[n:]
        if self._ispace is not None:
            self._asked = (out, self._queue_idx[:n])
            self._queue_idx = self._queue_idx[n:]
        return out

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        self._children.extend(archs)
        self._children_values.extend(values)
        if self._ispace is not None:
            self._children_idx.append(self._rows_of(self._ispace, archs))
        if self._queue or len(self._children) < self._gen_size:
            return
        pool = self._pop + self._children
        vals = np.concatenate([self._pop_values, np.asarray(self._children_values)], axis=0)
        if self.mode == "single":
            score = self.objectives.score(vals)
            viol = self.objectives.violation(vals)
            keep = np.lexsort((np.arange(len(pool)), viol, -score))[: self.parents]
        else:
            keep = nsga2_select(self.objectives.minimization_matrix(vals), self.population_size,
                                self.objectives.violation(vals))
        self._pop = [pool[i] for i in keep]
        self._pop_values = vals[keep]
        if self._ispace is not None:
            self._pop_idx = np.concatenate([self._pop_idx, *self._children_idx])[keep]
        self._children, self._children_values, self._children_idx = [], [], []
        self.generation += 1

    # ---- persistence -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "generation": self.generation, "gen_size": self._gen_size,
            "queue": [self.arch_to_state(a) for a in self._queue],
            "children": [self.arch_to_state(a) for a in self._children],
            "children_values": np.asarray(self._children_values).tolist(),
            "population": [self.arch_to_state(a) for a in self._pop],
            "population_values": self._pop_values.tolist(),
        }

    def _load_state(self, extra: dict[str, Any]) -> None:
        k = len(self.objectives)
        self.generation = int(extra["generation"])
        self._gen_size = int(extra["gen_size"])
        self._queue = [self.arch_from_state(d) for d in extra["queue"]]
        self._children = [self.arch_from_state(d) for d in extra["children"]]
        self._children_values = list(np.asarray(extra["children_values"], dtype=np.float64)
                                     .reshape(len(self._children), k))
        self._pop = [self.arch_from_state(d) for d in extra["population"]]
        self._pop_values = np.asarray(extra["population_values"], dtype=np.float64).reshape(
            len(self._pop), k)
        if self._ispace is not None:
            space = self._ispace
            self._queue_idx = space.to_indices(self._queue)
            self._children_idx = [space.to_indices(self._children)]
            self._pop_idx = space.to_indices(self._pop)
            self._asked = None

    def _settings(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "parents": self.parents,
                "mutations": self.mutations, "crossovers": self.crossovers,
                "mutation_prob": self.mutation_prob, "mode": self.mode}

    @property
    def population(self) -> list[Arch]:
        """The current parents (single mode) or survivors (Pareto mode), best first."""
        return list(self._pop)
