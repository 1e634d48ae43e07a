"""The search driver: resume, then rounds of ask, evaluate new candidates, persist, tell,
notify, until a stop reason holds.

Split the way Optuna splits ``_optimize`` (``_optimize`` -> ``_optimize_sequential`` ->
``_run_trial``): :func:`run_search` checks its arguments and opens the storage, :func:`_resume`
fills the :class:`~nasforge.strategies._history.History` from the two sources of earlier
evaluations (the strategy's own storage, the driver's storage) and restores the strategy,
:func:`_optimize` loops over rounds and decides when to stop (:func:`_stop_reason`),
:func:`_run_round` is one ask/tell round, :func:`_evaluate_new` evaluates the candidates not
seen before (cheap objectives filtered first, in chunks) and persists them, :func:`_notify`
calls the callbacks. Persistence goes through
:class:`~nasforge.strategies.storage.study.SearchStudy` only: an Optuna study in any Optuna
storage, shared safely by several workers (claims), written in batches (a round's claims in
one transaction, its values with the round's strategy state in another), or, for the study's
only writer (``exclusive``), each round's candidates as finished trials with the round's
state in one transaction; either way ``kill -9`` loses the round in flight and nothing before
it.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.strategies._history import History
from nasforge.strategies.result import Candidate
from nasforge.strategies.result import SearchResult
from nasforge.strategies.storage.study import SearchStudy

if TYPE_CHECKING:
    from optuna.storages import BaseStorage

    from nasforge.search_spaces.arch import Arch
    from nasforge.strategies.base import BaseStrategy
    from nasforge.strategies.storage.url import StorageURL

__all__ = ["Callback", "run_search"]

logger = logging.getLogger(__name__)

#: Called after every evaluated candidate, once it is persisted and told to the strategy.
#: Returning True stops the search cleanly (``stopped="callback"``); raising stops it like a
#: kill would, and a resume loses nothing.
Callback = Callable[[Candidate], "bool | None"]


@dataclass(frozen=True)
class _Limits:
    """When the loop stops (see :func:`run_search`'s arguments of the same names)."""

    budget: int | None
    max_steps: int | None
    max_idle_steps: int


def run_search(
    strategy: BaseStrategy,
    *,
    budget: int | None = None,
    storage: SearchStudy | StorageURL | BaseStorage | str | Path | None = None,
    study_name: str = "nasforge",
    worker: int = 0,
    meta: dict[str, Any] | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    max_steps: int | None = None,
    dedupe_key: Callable[[Arch], Hashable] | None = None,
    eval_chunk: int | None = None,
    max_idle_steps: int = 1000,
    exclusive: bool = False,
) -> SearchResult:
    """Run ``strategy`` until ``budget`` distinct candidates are evaluated.

    Every proposed arch is keyed by ``dedupe_key`` (default: its ``arch_id``); a known key is
    told its stored values and does not count against the budget (a tabular query, a supernet
    evaluation, is paid once). The objectives are ``strategy.objectives``.

    Args:
        strategy: the strategy.
        budget: number of distinct evaluations (of the whole study when several workers
            share it); None for no limit (then give ``max_steps``).
        storage: a :class:`~nasforge.strategies.SearchStudy` (then ``study_name`` and
            ``worker`` are its own), an Optuna storage, or a storage URL or SQLite file path
            (:class:`~nasforge.strategies.StorageURL`): every candidate is a trial of the
            study ``study_name``, with the strategy state (:mod:`nasforge.strategies.storage`).
            None: nothing is persisted (fastest, for searches over cheap objectives only).
        study_name: the study in ``storage``.
        worker: this process's worker number; workers sharing a study share its budget and
            evaluate each arch once, each with its own strategy state.
        meta: settings recorded with the study besides the strategy's (device, metric, ...);
            a resume with other values is refused.
        resume: continue the study found in ``storage`` (else a non-empty study raises).
        callbacks: called with each newly evaluated :class:`Candidate`; one returning True
            ends the search after the current round.
        max_steps: stop after this many ask/tell rounds (resumed rounds included).
        dedupe_key: maps an arch to its evaluation key (e.g. NB201's ``canonical_id`` to
            evaluate isomorphic cells once).
        eval_chunk: evaluate and persist new candidates in chunks of this size (None: the
            whole batch; 1: one by one, for slow objectives such as supernet accuracy).
        max_idle_steps: stop (``"stalled"``) after this many rounds in a row with nothing new.
        exclusive: this process is the study's only writer (a ``storage`` that is not a
            :class:`SearchStudy`; see that class's ``exclusive``): finished trials, no claims.

    Returns:
        The :class:`SearchResult`, resumed candidates and other workers' included.

    Raises:
        InvalidInputError: neither ``budget`` nor ``max_steps`` given, or a non-positive one;
            a non-empty study without ``resume=True``; a storage that cannot be opened.
        IncompatibleComponentsError: the stored study was run with other settings.

    Example:
        >>> from nasforge.search_spaces import get_space
        >>> from nasforge.strategies import (FlopsObjective, ParamsObjective, STRATEGIES,
        ...     SearchObjectives, run_search)
        >>> space = get_space("nasbench201")
        >>> objs = SearchObjectives([ParamsObjective(space), FlopsObjective(space, upper=150)])
        >>> strategy = STRATEGIES.get("random")(space, objs, seed=0)
        >>> result = run_search(strategy, budget=10)
        >>> result.n_evaluated, bool(result.candidates["feasible"].all())
        (10, True)
    """
    _check_arguments(budget, max_steps, eval_chunk, worker)
    store = (storage if isinstance(storage, SearchStudy) or storage is None else SearchStudy(
        storage, study_name, worker=worker, space=strategy.space, exclusive=exclusive))
    history = History(strategy.objectives, dedupe_key)
    try:
        step = _resume(strategy, history, store, resume, meta or {})
        with _loop_collector():
            return _optimize(strategy, history, store, step,
                             _Limits(budget, max_steps, max_idle_steps), callbacks, eval_chunk)
    finally:
        if store is not None:
            with contextlib.suppress(Exception):
                store.end()


#: the young generation's threshold while a loop runs (Python's default is 700)
_LOOP_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def _loop_collector() -> Iterator[None]:
    """Leave what the process holds before the loop (torch, the models, the tables) out of
    the garbage collector's passes while the loop runs (``gc.freeze``): a predictor-speed
    search allocates enough to trigger full passes, and each walks every object of those
    imports (about 0.15 s a pass; a fifth of the loop at OFA's settings,
    ``benchmarks/ofa_search.py``). What the loop allocates is collected as usual, a pass per
    :data:`_LOOP_GC_THRESHOLD` new containers rather than per 700 (a generation allocates
    thousands that live a round: 3% of the loop); what was frozen is handed back
    (``gc.unfreeze``) and the thresholds restored when the loop ends. A process that froze
    objects itself (``gc.get_freeze_count()``) keeps them frozen."""
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], _LOOP_GC_THRESHOLD), *thresholds[1:])
    frozen = not gc.get_freeze_count()
    if frozen:
        gc.freeze()
    try:
        yield
    finally:
        if frozen:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


def _check_arguments(budget: int | None, max_steps: int | None, eval_chunk: int | None,
                     worker: int) -> None:
    """Refuse a search that cannot stop or a non-positive limit (:func:`run_search`)."""
    if budget is None and max_steps is None:
        raise InvalidInputError("run_search needs a `budget` or `max_steps`; got neither")
    for label, v in (("budget", budget), ("max_steps", max_steps), ("eval_chunk", eval_chunk)):
        if v is not None and v < 1:
            raise InvalidInputError(f"run_search: `{label} >= 1` must hold, but got {label}={v}")
    if worker < 0:
        raise InvalidInputError(f"run_search: `worker >= 0` must hold, but got worker={worker}")


class _BudgetSpent(Exception):
    """Other workers of the study claimed the rest of its budget."""


# ---- resume ------------------------------------------------------------------------------------
def _study_meta(strategy: BaseStrategy, extra: dict[str, Any]) -> dict[str, Any]:
    return {"strategy": strategy.name, "seed": strategy.seed, "space": strategy.space.name,
            "objectives": [{k: v for k, v in d.items() if k != "provenance"}
                           for d in strategy.objectives.describe()],
            "settings": strategy.describe()["settings"], **extra}


def _resume(strategy: BaseStrategy, history: History, store: SearchStudy | None,
            resume: bool, meta: dict[str, Any]) -> int:
    """Fill ``history`` with what was evaluated before, from the strategy's own storage and
    from ``store``, and restore the strategy to the last round saved in ``store``.

    Returns:
        The number of the next round.
    """
    _resume_from_strategy(strategy, history)
    if store is None:
        return 0
    return _resume_from_storage(strategy, history, store, resume, meta)


def _resume_from_strategy(strategy: BaseStrategy, history: History) -> None:
    """Candidates of the strategy's own storage (Optuna RDB), round -1, one per key."""
    archs, values = strategy.resumed_history()
    for a, v in zip(archs, values, strict=True):
        k = history.key_of(a)
        if history.values_of(k) is None:
            history.add(a, v, -1, key=k)


def _resume_from_storage(strategy: BaseStrategy, history: History, store: SearchStudy,
                         resume: bool, meta: dict[str, Any]) -> int:
    """Candidates of ``store`` and this worker's strategy state of its last round.

    Returns:
        The number of the next round.

    Raises:
        InvalidInputError: ``store`` holds candidates and ``resume`` is False.
        IncompatibleComponentsError: the stored study was run with other settings.
    """
    described = strategy.objectives.describe()
    store.init(_study_meta(strategy, meta), [d["direction"] for d in described], resume=resume,
               provenance={d["name"]: d.get("provenance") for d in described})
    n = _sync(strategy, history, store)
    last = store.last_state()
    if last is None:
        return 0
    told_archs, told_values = history.told_until(last[0])
    strategy.load_state_dict(last[1], told_archs, told_values)
    logger.info("resumed %d stored candidates; continuing at round %d", n, last[0] + 1)
    return last[0] + 1


def _sync(strategy: BaseStrategy, history: History, store: SearchStudy) -> int:
    """Add the study's candidates not yet in ``history`` (this worker's with their round,
    other workers' with round -1); how many were added."""
    n = 0
    for c in store.new_candidates():
        arch = strategy.space.arch_from_dict(c.arch)
        k = history.key_of(arch)
        if history.values_of(k) is None:
            history.add(arch, np.asarray(c.values), c.step if c.worker == store.worker else -1,
                        key=k)
            n += 1
    return n


# ---- the loop ----------------------------------------------------------------------------------
def _optimize(strategy: BaseStrategy, history: History, store: SearchStudy | None, step: int,
              limits: _Limits, callbacks: Sequence[Callback],
              eval_chunk: int | None) -> SearchResult:
    """Rounds until a stop reason holds (budget, max_steps, exhausted, callback, stalled);
    the result of everything in ``history``."""
    t0 = time.perf_counter()
    n_asked = idle = 0
    notified = len(history)
    while (stopped := _stop_reason(history, step, limits)) is None:
        n = strategy.batch_size
        if limits.budget is not None:
            n = min(n, limits.budget - len(history))
        batch = strategy.ask(n)
        if not batch:
            stopped = "exhausted"
            break
        n_asked += len(batch)
        first_new = len(history)
        try:
            _run_round(strategy, batch, history, store, step, eval_chunk, limits.budget)
        except _BudgetSpent:
            stopped = "budget"
            break
        except BaseException:
            if store is not None:  # store what was evaluated; the error is the one raised
                with contextlib.suppress(Exception):
                    store.flush()
            raise
        step += 1
        idle = 0 if len(history) > first_new else idle + 1
        stop = _notify(callbacks, history, notified)
        notified = len(history)
        if stop:
            stopped = "callback"
            break
        if idle >= limits.max_idle_steps:
            stopped = "stalled"
            break
        if store is not None and idle == 0 and not store.exclusive:
            _sync(strategy, history, store)  # other workers' candidates
    if store is not None:
        # the last rounds' completions; a single writer's last state unless a round was asked
        # since (exhausted; with claims: the budget spent by others, a round without a state)
        store.flush(final=stopped != "exhausted")
        if not store.exclusive:
            _sync(strategy, history, store)
    logger.debug("search stopped (%s) after %d rounds, %d candidates", stopped, step,
                 len(history))
    return history.to_result(strategy=strategy.describe(), stopped=stopped, n_asked=n_asked,
                             seconds=time.perf_counter() - t0)


def _stop_reason(history: History, step: int, limits: _Limits) -> str | None:
    """Why the search stops before round ``step`` (budget spent, enough rounds), or None."""
    if limits.budget is not None and len(history) >= limits.budget:
        return "budget"
    if limits.max_steps is not None and step >= limits.max_steps:
        return "max_steps"
    return None


def _run_round(strategy: BaseStrategy, batch: list[Arch], history: History,
               store: SearchStudy | None, step: int, eval_chunk: int | None,
               budget: int | None) -> None:
    """Evaluate (and persist) the new archs of ``batch``, tell the strategy, save its state.

    With claims, the state is saved only after a round that evaluated something new: a round
    served entirely from ``history`` is replayed exactly on resume from the previous state
    (the strategy proposes the same archs and is told the same stored values), and a strategy
    proposing mostly known archs (evolution on a small space) would otherwise write its
    state thousands of times. A single writer is handed every round's state and writes one
    at most every ``commit_every`` seconds.
    """
    n0 = len(history)
    values = _evaluate_new(strategy, batch, history, store, step, eval_chunk, budget)
    strategy.tell(batch, values)
    if store is not None and (len(history) > n0 or store.exclusive):
        store.save_state(step, strategy.state_dict)


def _evaluate_new(strategy: BaseStrategy, batch: list[Arch], history: History,
                  store: SearchStudy | None, step: int, eval_chunk: int | None,
                  budget: int | None) -> np.ndarray:
    """Values of every arch of ``batch``: known keys are served from ``history``, the first
    arch of each new key is evaluated, persisted and added, in chunks of ``eval_chunk``.

    Returns:
        Shape (len(batch), len(objectives)).

    Raises:
        _BudgetSpent: other workers of the study claimed the rest of its budget.
    """
    keys = [history.key_of(a) for a in batch]
    out = np.empty((len(batch), len(strategy.objectives)))
    todo: list[int] = []  # first arch of each new key
    later: list[int] = []  # every arch of a new key, filled once evaluated
    pending: set[Hashable] = set()
    for i, k in enumerate(keys):
        known = history.values_of(k)
        if known is not None:
            out[i] = known
            continue
        later.append(i)
        if k not in pending:
            pending.add(k)
            todo.append(i)
    chunk = eval_chunk or max(len(todo), 1)
    for c0 in range(0, len(todo), chunk):
        sub = todo[c0:c0 + chunk]
        if store is None or store.exclusive:
            start = datetime.now()
            vals = strategy.objectives.evaluate([batch[i] for i in sub])
            for i, v in zip(sub, vals, strict=True):
                history.add(batch[i], v, step, key=keys[i])
            if store is not None:  # written with the round's state (or now, chunk by chunk)
                store.add_finished([keys[i] for i in sub], [batch[i] for i in sub], vals,
                                   step, start)
                if eval_chunk is not None:
                    store.flush()
        else:
            _evaluate_claimed(strategy, batch, keys, sub, history, store, step, budget)
    for i in later:
        out[i] = history.values_of(keys[i])
    return out


def _evaluate_claimed(strategy: BaseStrategy, batch: list[Arch], keys: list[Hashable],
                      sub: list[int], history: History, store: SearchStudy, step: int,
                      budget: int | None) -> None:
    """Claim the archs ``batch[sub]`` in the study, evaluate and complete ours, take the
    values of those another worker evaluated (waiting for running ones), add all to
    ``history``.

    Raises:
        _BudgetSpent: a claim was over the study's budget.
    """
    left = list(sub)
    while left:
        claims = store.claim([keys[i] for i in left], [batch[i] for i in left], step, budget)
        ours = [(i, c) for i, c in zip(left, claims, strict=True) if c.status == "ours"]
        try:
            vals = (strategy.objectives.evaluate([batch[i] for i, _ in ours]) if ours
                    else np.zeros((0, len(strategy.objectives))))
        except BaseException:
            for _, c in ours:
                store.release(c.trial_id, "its evaluation raised")
            raise
        store.complete_many([c.trial_id for _, c in ours], vals)
        for (i, _), v in zip(ours, vals, strict=True):
            history.add(batch[i], v, step, key=keys[i])
        again = []
        for i, c in zip(left, claims, strict=True):
            got = c.values if c.status == "done" else (
                store.wait(c.trial_id) if c.status == "busy" else None)
            if got is not None and history.values_of(keys[i]) is None:
                history.add(batch[i], got, -1, key=keys[i])
            elif c.status == "busy" and got is None:
                again.append(i)
        if any(c.status == "over" for c in claims):
            raise _BudgetSpent
        left = again


def _notify(callbacks: Sequence[Callback], history: History, start: int) -> bool:
    """Call every callback with each candidate from index ``start`` on; whether one asked to
    stop (every callback still sees every candidate)."""
    if not callbacks:
        return False
    stop = False
    for cand in history.candidates(start):
        for cb in callbacks:
            stop = bool(cb(cand)) or stop
    return stop
