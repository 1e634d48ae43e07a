"""The search driver: ask, evaluate (cheap objectives filtered first), persist, tell."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.strategies.result import Candidate
from nasforge.strategies.result import SearchResult
from nasforge.strategies.storage import SQLiteStorage

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.strategies.base import BaseStrategy
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["Callback", "run_search"]

#: Called after every evaluated candidate, once it is persisted and told to the strategy.
#: Returning True stops the search cleanly (``stopped="callback"``); raising stops it like a
#: kill would, and a resume loses nothing.
Callback = Callable[[Candidate], "bool | None"]


def _study_meta(strategy: BaseStrategy, objectives: SearchObjectives) -> dict[str, Any]:
    return {"strategy": strategy.name, "seed": strategy.seed, "space": strategy.space.name,
            "objectives": [{k: v for k, v in d.items() if k != "provenance"}
                           for d in objectives.describe()],
            "settings": strategy._settings()}


def run_search(
    strategy: BaseStrategy,
    objectives: SearchObjectives | None = None,
    budget: int | None = None,
    *,
    storage: SQLiteStorage | str | Path | None = None,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    max_steps: int | None = None,
    dedupe_key: Callable[[Arch], Hashable] | None = None,
    eval_chunk: int | None = None,
    max_idle_steps: int = 1000,
) -> SearchResult:
    """Run ``strategy`` until ``budget`` distinct candidates are evaluated.

    Every proposed arch is keyed by ``dedupe_key`` (default: the arch itself, i.e. its
    ``arch_id``); an arch whose key was already evaluated is told its stored values and does
    not count against the budget (a tabular query, a supernet evaluation, is paid once).

    Args:
        strategy: the strategy (constructed with the same ``objectives``).
        objectives: the strategy's objectives (None: ``strategy.objectives``).
        budget: number of distinct evaluations; None for no limit (then give ``max_steps``).
        storage: a :class:`SQLiteStorage` or a path to its SQLite file: every candidate is
            persisted as it is evaluated, and the strategy state after every round.
        resume: continue the study found in ``storage`` (else a non-empty study raises).
        callbacks: called with each newly evaluated :class:`Candidate`; one returning True
            ends the search after the current round.
        max_steps: stop after this many ask/tell rounds (resumed rounds included).
        dedupe_key: maps an arch to its evaluation key (e.g. NB201's ``canonical_id`` to
            evaluate isomorphic cells once).
        eval_chunk: evaluate and persist new candidates in chunks of this size (None: the
            whole batch at once, fastest for vectorised objectives; 1: persist one by one,
            for slow objectives such as supernet accuracy).
        max_idle_steps: stop (``stopped="stalled"``) after this many rounds in a row that
            evaluated nothing new (a strategy that keeps proposing known archs).

    Returns:
        The :class:`SearchResult` (resumed candidates included).

    Raises:
        InvalidInputError: neither ``budget`` nor ``max_steps`` given, or a non-positive one;
            a non-empty study without ``resume=True``.
        IncompatibleComponentsError: ``objectives`` is not the strategy's, or the stored study
            was run with other settings.

    Example:
        >>> import numpy as np
        >>> from nasforge.search_spaces import get_space
        >>> from nasforge.strategies import (FlopsObjective, ParamsObjective, STRATEGIES,
        ...     SearchObjectives, run_search)
        >>> space = get_space("nasbench201")
        >>> objs = SearchObjectives([ParamsObjective(space), FlopsObjective(space, upper=150)])
        >>> strategy = STRATEGIES.get("random")(space, objs, seed=0)
        >>> result = run_search(strategy, objs, budget=10)
        >>> result.n_evaluated, bool(result.candidates["feasible"].all())
        (10, True)
    """
    objs = strategy.objectives if objectives is None else objectives
    if objs is not strategy.objectives:
        raise IncompatibleComponentsError(
            "run_search: `objectives` must be the SearchObjectives the strategy was built with; "
            "pass the same object (or None)"
        )
    if budget is None and max_steps is None:
        raise InvalidInputError("run_search needs a `budget` or `max_steps`; got neither")
    for label, v in (("budget", budget), ("max_steps", max_steps), ("eval_chunk", eval_chunk)):
        if v is not None and v < 1:
            raise InvalidInputError(f"run_search: `{label} >= 1` must hold, but got {label}={v}")
    key_of: Callable[[Arch], Hashable] = dedupe_key if dedupe_key is not None else (lambda a: a)
    store = (SQLiteStorage(storage) if isinstance(storage, str | Path) else storage)

    archs: list[Arch] = []
    rows: list[np.ndarray] = []
    steps: list[int] = []
    cache: dict[Hashable, np.ndarray] = {}
    step = 0

    # ---- resume ----------------------------------------------------------------------------
    prev_archs, prev_values = strategy.resumed_history()
    for a, v in zip(prev_archs, prev_values, strict=True):
        k = key_of(a)
        if k not in cache:
            cache[k] = v
            archs.append(a)
            rows.append(v)
            steps.append(-1)
    if store is not None:
        store.init_study(_study_meta(strategy, objs))
        stored = store.candidates()
        if stored and not resume:
            raise InvalidInputError(
                f"study {store.study!r} in {str(store.path)!r} already holds {len(stored)} "
                "candidates; pass resume=True (nas search --resume) or use a new study/file"
            )
        for c in stored:
            a = strategy.space.arch_from_dict(c.arch)
            vals = np.asarray(c.values, dtype=np.float64)
            cache[key_of(a)] = vals
            archs.append(a)
            rows.append(vals)
            steps.append(c.step)
        last = store.last_state()
        if last is not None:
            step = last[0] + 1
            told = [i for i, s in enumerate(steps) if 0 <= s <= last[0]]
            strategy.load_state_dict(last[1], [archs[i] for i in told],
                                     np.asarray([rows[i] for i in told]).reshape(
                                         len(told), len(objs)))

    # ---- the loop ------------------------------------------------------------------------------
    t0 = time.perf_counter()
    n_asked = 0
    idle = 0
    stopped = "budget"
    while True:
        if budget is not None and len(archs) >= budget:
            stopped = "budget"
            break
        if max_steps is not None and step >= max_steps:
            stopped = "max_steps"
            break
        n = strategy.batch_size
        if budget is not None:
            n = min(n, budget - len(archs))
        batch = strategy.ask(n)
        if not batch:
            stopped = "exhausted"
            break
        n_asked += len(batch)
        keys = [key_of(a) for a in batch]
        values = np.empty((len(batch), len(objs)))
        todo: list[int] = []
        pending: set[Hashable] = set()
        for i, k in enumerate(keys):
            hit = cache.get(k)
            if hit is not None:
                values[i] = hit
            elif k not in pending:
                pending.add(k)
                todo.append(i)
        first_new = len(archs)
        chunk = eval_chunk or max(len(todo), 1)
        for c0 in range(0, len(todo), chunk):
            sub = todo[c0:c0 + chunk]
            sub_archs = [batch[i] for i in sub]
            vals = objs.evaluate(sub_archs)
            if store is not None:
                store.add_candidates([a.arch_id for a in sub_archs], sub_archs, vals, step)
            for i, v in zip(sub, vals, strict=True):
                cache[keys[i]] = v
                archs.append(batch[i])
                rows.append(v)
                steps.append(step)
        for i, k in enumerate(keys):  # duplicates inside the batch
            values[i] = cache[k]
        strategy.tell(batch, values)
        if store is not None:
            store.save_state(step, strategy.state_dict())
        step += 1
        idle = 0 if todo else idle + 1
        stop = False
        if callbacks:
            feas: np.ndarray | list[bool] = (
                objs.feasible(np.asarray(rows[first_new:])) if todo else [])
            for off, ok in enumerate(feas):
                i = first_new + off
                cand = Candidate(index=i, step=steps[i], arch=archs[i],
                                 values=dict(zip(objs.names, rows[i].tolist(), strict=True)),
                                 feasible=bool(ok))
                for cb in callbacks:
                    stop = bool(cb(cand)) or stop
        if stop:
            stopped = "callback"
            break
        if idle >= max_idle_steps:
            stopped = "stalled"
            break

    values_all = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(objs))
    return SearchResult(archs=archs, values=values_all, steps=np.asarray(steps, dtype=np.int64),
                        objectives=objs, strategy=strategy.describe(), stopped=stopped,
                        n_asked=n_asked, seconds=time.perf_counter() - t0)
