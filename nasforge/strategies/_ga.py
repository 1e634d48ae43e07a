"""Genetic operators as the strategies use them: parent selection and offspring on index rows.

Optuna keeps its GA machinery with the samplers (``samplers/_ga``, ``samplers/nsgaii/
_crossovers``), not in the search space; so does nasforge. The space supplies only its index
codec (:class:`~nasforge.search_spaces.codec.IndexCodec`): the choice counts per column, the
uniform per-row operators ``mutate_indices`` / ``crossover_indices`` and the cross-field repair
they end with (space knowledge). What a search does with them lives here:

* :func:`select_parents`: uniform, or binary tournament on a population stored best first
  (NSGA-II's crowded-comparison order);
* :func:`make_children`: a generation of mutation and crossover children, a child that breaks
  a cheap bound redrawn from the same parent(s), several redraws per round in numpy;
* :func:`mutate_and_cross`: ``k`` children of a parent set, mutations first (the predictor
  strategy's inner evolution).

Every function draws from the generator it is given, in a fixed order, so a search is a
deterministic function of its seed.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> codec = get_space("nasbench201")
    >>> rng = np.random.default_rng(0)
    >>> pop = codec.sample_indices(rng, 4)
    >>> mutate_and_cross(codec, pop, np.arange(4), 6, 3, rng, 0.5).shape
    (6, 6)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    from nasforge.search_spaces.codec import IndexCodec

__all__ = ["make_children", "mutate_and_cross", "select_parents"]

#: Most redraws of one rejected child per round of :func:`make_children`.
_MAX_REDRAWS = 64


def select_parents(rng: np.random.Generator, population: int, size: int,
                   tournament: bool) -> np.ndarray:
    """Row numbers of ``size`` parents drawn from a population of ``population`` rows.

    Args:
        rng: the random generator.
        population: rows in the population (stored best first when ``tournament``).
        size: parents to draw.
        tournament: binary tournament (the better, i.e. lower, of two uniform draws) instead of
            one uniform draw.

    Returns:
        int64 array of shape (size,).
    """
    if not tournament:
        return rng.integers(population, size=size)
    a = rng.integers(population, size=size)
    b = rng.integers(population, size=size)
    return np.minimum(a, b)


def make_children(codec: IndexCodec, pop: np.ndarray, p1: np.ndarray, p2: np.ndarray,
                  n_mutations: int, rng: np.random.Generator, mutation_prob: float,
                  feasible: Callable[[np.ndarray], np.ndarray],
                  max_rejections: int) -> np.ndarray:
    """One generation of children: rows ``0..n_mutations-1`` mutate parent ``p1[i]``, the
    others cross ``p1[i]`` with ``p2[i]``.

    A rejected child is redrawn from the same parent(s); redraws are made several at a time
    per child (the first feasible one is kept, which is the distribution of drawing them one
    after the other), so that a generation takes a few numpy rounds.

    Args:
        codec: the space's index codec.
        pop: (n, num_choices) parent rows.
        p1: first parent of each child, shape (children,).
        p2: second parent of each child (crossover children), shape (children,).
        n_mutations: how many of the children are mutations (the first ones).
        rng: the random generator.
        mutation_prob: per-choice resampling probability of a mutation.
        feasible: bool mask of the candidate rows that satisfy every cheap bound.
        max_rejections: raise after this many rejected candidates in a row.

    Returns:
        (children, num_choices) int64 rows.

    Raises:
        InvalidInputError: ``max_rejections`` candidates in a row were rejected.
    """
    n = len(p1)
    width = pop.shape[1]
    out = np.empty((n, width), dtype=np.int64)
    todo = np.arange(n)  # ascending: mutations first, then crossovers
    reps = 1
    rejected = 0
    while todo.size:
        slots = np.repeat(todo, reps)
        mut, cro = slots[slots < n_mutations], slots[slots >= n_mutations]
        parts = []
        if mut.size:
            parts.append(codec.mutate_indices(pop[p1[mut]], rng, mutation_prob))
        if cro.size:
            parts.append(codec.crossover_indices(pop[p1[cro]], pop[p2[cro]], rng))
        cand = np.concatenate(parts) if len(parts) > 1 else parts[0]
        ok = feasible(cand).reshape(todo.size, reps)
        done = ok.any(axis=1)
        first = ok.argmax(axis=1)
        out[todo[done]] = cand.reshape(todo.size, reps, width)[done, first[done]]
        rejected = 0 if done.any() else rejected + cand.shape[0]
        if rejected >= max_rejections:
            raise InvalidInputError(
                f"evolution: {max_rejections} children in a row violated the cheap "
                "bounds; relax the budget or seed the population with feasible archs"
            )
        todo = todo[~done]
        reps = min(4 * reps, _MAX_REDRAWS)
    return out


def mutate_and_cross(codec: IndexCodec, pop: np.ndarray, parents: np.ndarray, k: int,
                     max_mutations: int, rng: np.random.Generator,
                     mutation_prob: float) -> np.ndarray:
    """``k`` children of uniformly drawn parents: ``min(k, max_mutations)`` mutations, then
    crossovers of a second uniformly drawn parent.

    Args:
        codec: the space's index codec.
        pop: (n, num_choices) population rows.
        parents: the rows of ``pop`` that may be parents.
        k: children to make.
        max_mutations: most children made by mutation.
        rng: the random generator.
        mutation_prob: per-choice resampling probability of a mutation.

    Returns:
        (k, num_choices) int64 rows (not checked against any bound).
    """
    a = pop[parents[rng.integers(len(parents), size=k)]]
    nm = min(k, max_mutations)
    b = pop[parents[rng.integers(len(parents), size=k - nm)]]
    return np.concatenate([codec.mutate_indices(a[:nm], rng, mutation_prob),
                           codec.crossover_indices(a[nm:], b, rng)])
