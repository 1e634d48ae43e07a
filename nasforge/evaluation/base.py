"""The accuracy-source interface: :class:`AccuracyObjective` and :class:`SourceRequest`, the
request one source is built from.

An accuracy source is an :class:`~nasforge.strategies.objectives.Objective` (maximised) that
also says how a run labels its numbers (``top1``, a benchmark column, ``acc``), whether a search
evaluates it in chunks (a supernet, a proxy: batched work) and what it holds open (an actor
pool). Every source is built by a builder of the ``ACCURACY_SOURCES`` registry
(:mod:`.sources`) from one :class:`SourceRequest`; the knobs of expensive evaluation travel as
one frozen :class:`~nasforge.evaluation.settings.EvalSettings`.

Example:
    >>> from nasforge.evaluation import ProxyObjective, TabularBenchmark
    >>> ProxyObjective.batched, TabularBenchmark.batched, ProxyObjective.metric_label
    (True, False, 'acc')
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import ClassVar

from nasforge.evaluation.settings import EvalSettings
from nasforge.strategies.objectives.base import Objective

if TYPE_CHECKING:
    from nasforge.evaluation.protocols import AccuracyEvaluator
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["AccuracyObjective", "SourceRequest"]


@dataclass(frozen=True)
class SourceRequest:
    """What a builder of ``ACCURACY_SOURCES`` gets: the spec and what the caller knows.

    Attributes:
        spec: the whole spec (``csv:t.csv:acc``), for messages.
        scheme: the part before the first ``:`` (the registry key).
        rest: the part after it, or None (``standalone``, ``quick``).
        space: the search space.
        name: the objective's name (search: ``accuracy``; rank: the spec).
        seed: seed of initialisation, proxy batches, data order and (unless the
            checkpoint's is kept) BN recalibration.
        settings: the evaluation knobs.
        data: dataset spec of stand-alone training and of data proxies.
        supernet: a checkpoint (or ``quick``) for the bare ``supernet`` scheme and whose data
            stand-alone training reuses.
        steps: stand-alone training steps.
        progress: show progress bars.
        table: a benchmark table already read (shared with a latency column), or None.
        evaluator: an evaluator replacing an in-process supernet (a caller's Ray actor pool).
        checkpoint_seed: recalibrate BN with the checkpoint's training seed (``nas search``)
            instead of ``seed`` (``nas rank``).
    """

    spec: str
    scheme: str
    rest: str | None
    space: SearchSpace
    name: str
    seed: int = 0
    settings: EvalSettings = field(default_factory=EvalSettings)
    data: str | None = None
    supernet: str | None = None
    steps: int = 100
    progress: bool = False
    table: Any = None
    evaluator: AccuracyEvaluator | None = None
    checkpoint_seed: bool = False


class AccuracyObjective(Objective):
    """Base of every accuracy source: an objective plus what a run asks of its source.

    Class attributes (subclasses override):
        metric_label: how run names label the number (``top1``, ``acc``; a benchmark column
            gives its own name).
        batched: the source does batched work (a supernet, a proxy, stand-alone training), so
            a search hands it ``EvalSettings.eval_chunk_for(True)`` candidates at a time.
    """

    metric_label: ClassVar[str] = "acc"
    batched: ClassVar[bool] = False

    @property
    def metric(self) -> str:
        """The label of the number in run names (``pixel7_lat@24.6ms_top1@71.3``)."""
        return self.metric_label

    def close(self) -> None:
        """Release what the source holds open (an actor pool); a no-op by default."""
