"""The outcome of a search: every evaluated candidate, the Pareto front, the best feasible one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.strategies._nsga2 import pareto_mask
from nasforge.strategies.storage.claims import arch_json_and_id

if TYPE_CHECKING:
    import pandas as pd

    from nasforge.search_spaces.arch import Arch
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["Candidate", "SearchResult"]


@dataclass(frozen=True)
class Candidate:
    """One evaluated architecture.

    Attributes:
        index: evaluation order (0-based, over the whole study, resumed parts included).
        step: the ask/tell round that evaluated it.
        arch: the architecture.
        values: objective name -> value.
        feasible: whether every bound holds.
    """

    index: int
    step: int
    arch: Arch
    values: dict[str, float]
    feasible: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``arch`` as its plain dict, plus ``arch_id``)."""
        return {"index": self.index, "step": self.step, "arch_id": self.arch.arch_id,
                "arch": self.arch.to_dict(), "values": dict(self.values),
                "feasible": self.feasible}


@dataclass
class SearchResult:
    """All candidates of a search with their objective values.

    Tables are built lazily (a search over a predictor may evaluate tens of thousands).

    Attributes:
        archs: evaluated architectures, in evaluation order.
        values: shape ``(len(archs), len(objectives))``, columns ``objectives.names``.
        steps: the round of each candidate, shape ``(len(archs),)``.
        objectives: the search's objectives.
        strategy: :meth:`BaseStrategy.describe` of the strategy.
        stopped: why the search ended (``budget``, ``max_steps``, ``exhausted``, ``stalled``,
            ``callback``).
        n_asked: architectures proposed, duplicates of evaluated ones included.
        seconds: wall-clock time of the search loop.
    """

    archs: list[Arch]
    values: np.ndarray
    steps: np.ndarray
    objectives: SearchObjectives
    strategy: dict[str, Any] = field(default_factory=dict)
    stopped: str = ""
    n_asked: int = 0
    seconds: float = 0.0

    @property
    def n_evaluated(self) -> int:
        """Number of evaluated (distinct) candidates."""
        return len(self.archs)

    @cached_property
    def feasible(self) -> np.ndarray:
        """Mask of the candidates satisfying every bound."""
        return self.objectives.feasible(self.values) if len(self.archs) else np.zeros(0, bool)

    @cached_property
    def scores(self) -> np.ndarray:
        """Single-objective scores (larger is better, ``-inf`` if infeasible)."""
        return self.objectives.score(self.values) if len(self.archs) else np.zeros(0)

    @cached_property
    def pareto_indices(self) -> np.ndarray:
        """Indices of the feasible non-dominated candidates over ``objectives.pareto_names``,
        sorted by the first Pareto objective."""
        idx = np.flatnonzero(self.feasible)
        if idx.size == 0:
            return idx
        F = self.objectives.minimization_matrix(self.values[idx])
        front = idx[pareto_mask(F)]
        return front[np.argsort(self.objectives.minimization_matrix(self.values[front])[:, 0],
                                kind="stable")]

    @property
    def best_index(self) -> int | None:
        """Index of the best feasible candidate by score (the earliest on ties), or None."""
        if not len(self.archs) or not np.isfinite(self.scores).any():
            return None
        return int(np.argmax(self.scores))

    def candidate(self, i: int) -> Candidate:
        """The ``i``-th evaluated candidate."""
        return Candidate(index=i, step=int(self.steps[i]), arch=self.archs[i],
                         values=dict(zip(self.objectives.names, self.values[i].tolist(),
                                         strict=True)),
                         feasible=bool(self.feasible[i]))

    @property
    def best(self) -> Candidate | None:
        """The best candidate under every bound (single-objective score), or None."""
        i = self.best_index
        return None if i is None else self.candidate(i)

    @property
    def pareto(self) -> list[Candidate]:
        """The feasible Pareto front, sorted by the first Pareto objective."""
        return [self.candidate(int(i)) for i in self.pareto_indices]

    def _frame(self, rows: Sequence[int] | np.ndarray) -> pd.DataFrame:
        import pandas as pd

        rows = np.asarray(rows, dtype=np.int64)
        data: dict[str, Any] = {
            "index": rows,
            "step": self.steps[rows] if len(rows) else np.zeros(0, np.int64),
        }
        texts = [arch_json_and_id(self.archs[i]) for i in rows]
        data["arch_id"] = [aid for _, aid in texts]
        if self.archs and getattr(self.archs[0], "resolution", None) is not None:
            # input resolution: accuracy and latency both depend on it (elastic resolution)
            data["resolution"] = [getattr(self.archs[i], "resolution", None) for i in rows]
        for j, n in enumerate(self.objectives.names):
            data[n] = self.values[rows, j] if len(rows) else np.zeros(0)
        data["feasible"] = self.feasible[rows] if len(rows) else np.zeros(0, bool)
        data["score"] = self.scores[rows] if len(rows) else np.zeros(0)
        data["arch"] = [text for text, _ in texts]
        return pd.DataFrame(data)

    @cached_property
    def candidates(self) -> pd.DataFrame:
        """Every candidate: ``index, step, arch_id, [resolution,] <objective columns>, feasible,
        score, arch`` (``resolution`` for spaces whose archs have one; ``arch`` is the canonical
        JSON)."""
        return self._frame(np.arange(len(self.archs)))

    @property
    def pareto_frame(self) -> pd.DataFrame:
        """The Pareto front as a table (same columns as :attr:`candidates`)."""
        return self._frame(self.pareto_indices)

    def best_so_far(self) -> np.ndarray:
        """Running maximum of the score after each evaluation (a regret curve)."""
        return np.maximum.accumulate(self.scores) if len(self.archs) else np.zeros(0)

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: counts, strategy, objectives, best candidate, front size."""
        best = self.best
        return {
            "strategy": self.strategy,
            "objectives": self.objectives.describe(),
            "n_evaluated": self.n_evaluated,
            "n_feasible": int(self.feasible.sum()) if len(self.archs) else 0,
            "n_asked": self.n_asked,
            "stopped": self.stopped,
            "seconds": self.seconds,
            "best": None if best is None else best.to_dict(),
            "pareto_size": int(self.pareto_indices.size),
        }

    def to_json(self) -> str:
        """:meth:`summary` as JSON text."""
        return json.dumps(self.summary(), indent=2, sort_keys=True)
