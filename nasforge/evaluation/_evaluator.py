"""Accuracy from an evaluator outside this process (the Ray actor pool, a caller's own).

Example:
    >>> import numpy as np
    >>> class Fixed:
    ...     def evaluate_many(self, archs): return [50.0] * len(archs)
    ...     def provenance(self): return {"kind": "fixed"}
    >>> obj = EvaluatorAccuracy(Fixed())
    >>> obj.evaluate_many(["a", "b"]).tolist(), obj.provenance(), obj.metric
    ([50.0, 50.0], {'kind': 'fixed'}, 'top1')
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective

if TYPE_CHECKING:
    from nasforge.evaluation.protocols import AccuracyEvaluator
    from nasforge.search_spaces.arch import Arch

__all__ = ["EvaluatorAccuracy"]


class EvaluatorAccuracy(AccuracyObjective):
    """Top-1 (%) from an evaluator run elsewhere, maximised and batched like a supernet.

    Args:
        evaluator: anything with ``evaluate_many(archs)`` and ``provenance()``
            (:class:`~nasforge.evaluation.protocols.AccuracyEvaluator`).
        name: column name.
        owned: :meth:`close` closes the evaluator (an actor pool the resolver started).
    """

    metric_label = "top1"
    batched = True

    def __init__(self, evaluator: AccuracyEvaluator, *, name: str = "accuracy",
                 owned: bool = False) -> None:
        super().__init__(name, "maximize", cheap=False)
        self.evaluator = evaluator
        self.owned = owned
        self._provenance = dict(evaluator.provenance())

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        out = np.asarray(list(self.evaluator.evaluate_many(archs)), dtype=np.float64)
        if out.shape != (len(archs),):
            raise InvalidInputError(
                f"objective {self.name!r}: the evaluator returned shape {out.shape} for "
                f"{len(archs)} archs; it must return one float per arch")
        return out

    def provenance(self) -> dict[str, Any]:
        return dict(self._provenance)

    def close(self) -> None:
        """Close the evaluator when the resolver started it (an actor pool)."""
        close = getattr(self.evaluator, "close", None)
        if self.owned and callable(close):
            close()
            self.owned = False
