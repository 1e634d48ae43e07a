"""What an accuracy source may be handed from outside, as structural types.

* :class:`AccuracyEvaluator`: an evaluator run outside this process that replaces the
  in-process supernet (``run_experiment(evaluator=...)``; the Ray actor pool of
  :class:`~nasforge.evaluation.pool.SupernetActorPool` satisfies it).

Example:
    >>> from nasforge.evaluation import SupernetActorPool
    >>> isinstance(object(), AccuracyEvaluator), hasattr(SupernetActorPool, "evaluate_many")
    (False, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["AccuracyEvaluator"]


@runtime_checkable
class AccuracyEvaluator(Protocol):
    """An accuracy evaluator run outside this process (e.g. the Ray actor pool)."""

    def evaluate_many(self, archs: Sequence[Arch]) -> Any:
        """Top-1 (%) of each architecture."""

    def provenance(self) -> dict[str, Any]:
        """What produced the numbers (recorded in ``run.json``)."""
