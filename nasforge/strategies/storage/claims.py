"""Claims: how several workers share one study's budget and evaluate each arch once.

Before evaluating, a worker creates its trials as ``RUNNING`` claims (Optuna numbers trials
under a lock on the study row, so trial numbers are unique and in commit order); it then reads
the study and gives up every claim whose key an earlier live trial holds (it uses that
trial's values, waiting for it if it is still running) or whose rank among live trials is at
or over the budget. A worker killed with ``kill -9`` leaves ``RUNNING`` claims; they are
released (``FAIL``, attribute ``nasforge_released``) when any worker on the same host sees
that the claiming process is gone, so their archs are evaluated again. Claims of a dead worker
on another host are released when that worker restarts on its host.

Persistence in batches: the claims of a chunk (a whole round unless the driver is given an
``eval_chunk``) are inserted, checked and the losers released in one transaction; their values
are kept in memory and written with the round's strategy state in one more transaction (or
before the next claim or wait). A claim check reads the study from the first trial that was
not finished at the previous check on: finished trials never change, so what they say (the
first live trial of each key, the number of live trials) is folded into this object once
(:meth:`StudyClaims._fold`), and a single-worker search reads each of its trials twice in
all instead of the whole study per round. ``kill -9`` loses the round in flight: its claims,
released as above, and nothing of the rounds before it.

On an RDB storage all of that goes through :mod:`~nasforge.strategies.storage._rdb_fast`;
elsewhere, and on an Optuna version that path was not tested on, through Optuna's public
storage API (same trials, one call per trial).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Hashable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from nasforge.search_spaces.arch import JSON_TEXT
from nasforge.search_spaces.arch import json_id
from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage._errors import guarded

if TYPE_CHECKING:
    from nasforge.search_spaces import ArchText
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["Claim", "StudyClaims", "arch_dict", "arch_json_and_id", "is_candidate",
           "key_text", "process_dead", "process_tag", "values_of"]

#: trial user attribute: the values of a candidate with a NaN value (a ``FAIL`` trial)
VALUES = "nasforge_values"
#: trial user attribute: why a claim was given up
RELEASED = "nasforge_released"
_POLL_S = 0.1


@dataclass(frozen=True)
class Claim:
    """What a claim gave a worker for one arch.

    Attributes:
        status: ``ours`` (evaluate it, then :meth:`StudyClaims.complete`), ``done`` (another
            trial evaluated the key: ``values``), ``busy`` (another live trial holds the key:
            wait for ``number``), ``over`` (the study's budget is spent).
        trial_id: our trial's id (``ours``) or the other trial's id (``busy``).
        values: the stored values (``done``).
    """

    status: str
    trial_id: int = -1
    values: np.ndarray | None = None


@dataclass(frozen=True)
class _Row:
    """What a claim check needs of one trial."""

    trial_id: int
    number: int
    state: TrialState
    key: str | None
    released: bool
    provenance: str | None
    has_values: bool

    @staticmethod
    def of(t: FrozenTrial) -> _Row:
        ua = t.user_attrs
        key = ua.get("key", ua.get("arch_id"))
        return _Row(t._trial_id, t.number, t.state, None if key is None else str(key),
                    RELEASED in ua, ua.get("provenance"), values_of(t) is not None)


#: the user attributes a claim check reads of every trial (fast path), in :func:`_row` order
_ROW_ATTRS = ("key", RELEASED, "provenance", VALUES, "arch_id")


def _row(tid: Any, num: Any, state: TrialState, k: str | None, r: str | None, p: str | None,
         v: str | None, a: str | None) -> _Row:
    """A :class:`_Row` from the stored JSON of :data:`_ROW_ATTRS` (the key: ``key``, else
    the ``arch_id`` of a trial whose key is its arch, see :func:`is_candidate`)."""
    k = k if k is not None else a
    return _Row(int(tid), int(num), state, None if k is None else str(json.loads(k)),
                r is not None, None if p is None else json.loads(p),
                state == TrialState.COMPLETE or v is not None)


def arch_dict(arch: Arch) -> dict[str, Any]:
    """``arch.to_dict()`` (lists for tuples), with no function call per scalar element (the
    strategy state holds a population of such dicts per round). An arch class with its own
    ``to_dict`` is asked for it."""
    from nasforge.search_spaces.arch import Arch as _Arch

    if type(arch).to_dict is not _Arch.to_dict:
        return arch.to_dict()
    return {f.name: _plain(getattr(arch, f.name)) for f in dataclasses.fields(arch)}


def _plain(value: Any) -> Any:
    if type(value) is tuple or type(value) is list:
        return [_plain(v) if type(v) is tuple or type(v) is list else v for v in value]
    return _plain_other(value) if isinstance(value, tuple | list) else value


def _plain_other(value: Any) -> Any:
    """A tuple or list subclass (a named tuple), element by element like ``Arch.to_dict``."""
    return [_plain(v) for v in value]


def arch_json_and_id(arch: Arch, encoder: ArchText | None = None) -> tuple[str, str]:
    """``arch.to_json()`` and the ``arch_id`` hashed from it (what ``Arch.arch_id`` hashes),
    which is cached on the arch (its ``cached_property``) so that nothing hashes it again.
    ``encoder``: the space's :class:`~nasforge.search_spaces.ArchText` (the same text,
    written by its template where that applies)."""
    text = (encoder(arch) if encoder is not None and JSON_TEXT not in arch.__dict__
            else None)
    if text is None:
        text = arch.to_json()
    else:  # kept as Arch.to_json keeps it (the same text: the template declines otherwise)
        arch.__dict__[JSON_TEXT] = text
    aid = arch.__dict__.get("arch_id")
    if aid is None:
        aid = json_id(text)
        arch.__dict__["arch_id"] = aid
    return text, aid


def key_text(key: Hashable) -> str:
    """The stored form of a dedupe key: an arch's ``arch_id``, else ``str(key)``."""
    arch_id = getattr(key, "arch_id", None)
    return str(arch_id) if arch_id is not None else str(key)


def values_of(t: FrozenTrial) -> list[float] | None:
    """A trial's objective values (NaN where a failed candidate had one), or None."""
    if VALUES in t.user_attrs:
        return [float("nan") if x is None else float(x) for x in t.user_attrs[VALUES]]
    if t.state == TrialState.COMPLETE and t.values is not None:
        return [float(x) for x in t.values]
    return None


def is_candidate(t: FrozenTrial) -> bool:
    """Whether ``t`` is an evaluated candidate (finished, not released, with values).

    A candidate's trial has a dedupe key: its ``key`` user attribute, or, where that is
    absent, its ``arch_id`` (a single writer stores ``key`` only where it differs from the
    ``arch_id``, :mod:`~nasforge.strategies.storage._single`)."""
    ua = t.user_attrs
    return (t.state.is_finished() and RELEASED not in ua and ("key" in ua or "arch_id" in ua)
            and values_of(t) is not None)


def process_tag() -> str:
    """This process as a claim names it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def process_dead(tag: Any) -> bool:
    """Whether ``tag`` (``host:pid``) names a process of this host that is gone."""
    if not isinstance(tag, str) or ":" not in tag:
        return False
    host, _, pid = tag.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class StudyClaims:
    """The claims protocol on one study (see the module docstring); the base of
    :class:`~nasforge.strategies.storage.study.SearchStudy`, which opens the storage and
    creates or loads the study.

    Call protocol: per chunk of new archs :meth:`claim`, evaluate the ``ours`` ones,
    :meth:`complete_many` them (or :meth:`release` on an error), :meth:`wait` for ``busy``
    ones; :meth:`flush` (with the round's state) once the round is told, and at the end.
    """

    storage: BaseStorage
    worker: int
    _study_id: int
    _tag: str
    _codec: ChoiceSpace | None
    _dists: dict[str, BaseDistribution]

    def _trials(self) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self._study_id, deepcopy=False)

    def _init_claims(self) -> None:
        """The claim checks' memory of the study (see :meth:`_fold`) and the completions not
        written yet (see :meth:`flush`)."""
        #: trials numbered below this one are finished and folded into ``_first``/``_live``
        self._lwm = 0
        self._first: dict[str, _Row] = {}
        self._live = 0
        self._pending: list[tuple[list[int], np.ndarray]] = []
        #: the trials this object completed (the driver holds their candidates)
        self._own: set[int] = set()

    @guarded
    def claim(self, keys: Sequence[Hashable], archs: Sequence[Arch], step: int,
              budget: int | None) -> list[Claim]:
        """Claim ``archs`` (distinct ``keys``) for evaluation in round ``step``.

        The completions not written yet are written first. The claims are inserted, the
        study read from the first trial not finished at the last claim on, and the losing
        claims released in one transaction holding the study's write lock (RDB storages), so
        the verdicts see every claim committed before ours.

        Returns:
            One :class:`Claim` per arch, in order.
        """
        self.flush()
        templates = self._claim_templates(keys, archs, step)
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is not None:
            got: list[list[Claim]] = []

            def decide(ids: list[int], raw: list[tuple[Any, ...]]) -> list[tuple[int, str]]:
                claims, releases = self._verdicts(ids, [_row(*r) for r in raw], budget)
                got[:] = [claims]
                return releases

            _rdb_fast.insert_claims(rdb, self._study_id, templates, _ROW_ATTRS, self._lwm,
                                    decide, RELEASED)
            claims = got[0]
        else:
            ids = [self.storage.create_new_trial(self._study_id, template_trial=t)
                   for t in templates]
            claims, releases = self._verdicts(
                ids, [_Row.of(t) for t in self._trials() if t.number >= self._lwm], budget)
            for tid, why in releases:
                self.release(tid, why)
        return [Claim("done", c.trial_id, np.asarray(values_of(self.storage.get_trial(
            c.trial_id)))) if c.status == "done" else c for c in claims]

    def _verdicts(self, ids: list[int], rows: list[_Row], budget: int | None
                  ) -> tuple[list[Claim], list[tuple[int, str]]]:
        """The claims of our new trials ``ids`` given the study's trials from ``_lwm`` on
        (``rows``), and the trials to release ``(trial_id, why)``: ours that lose to an
        earlier live trial of the same key or rank at or over the budget, and other
        workers' running claims whose process of this host is gone. ``done`` claims carry
        no values yet."""
        mine = dict(zip(ids, range(len(ids)), strict=True))
        out: list[Claim | None] = [None] * len(ids)
        releases: list[tuple[int, str]] = []
        first: dict[str, _Row] = {}
        tail = self._fold(sorted(rows, key=lambda r: (r.number, r.trial_id)))
        live = self._live
        for r in tail:
            if r.released or r.key is None:
                continue
            if (r.state == TrialState.RUNNING and r.trial_id not in mine
                    and process_dead(r.provenance)):
                releases.append((r.trial_id, "its worker process died"))
                continue
            if r.state.is_finished() and not r.has_values:
                continue
            i = mine.get(r.trial_id)
            other = first.get(r.key) or self._first.get(r.key)
            if other is not None:
                if i is not None:
                    releases.append((r.trial_id, f"duplicate of trial {other.number}"))
                    out[i] = Claim("done" if other.state.is_finished() else "busy",
                                   other.trial_id)
                continue
            first[r.key] = r
            if i is not None:
                if budget is not None and live >= budget:
                    releases.append((r.trial_id, "over the study's budget"))
                    out[i] = Claim("over")
                else:
                    out[i] = Claim("ours", r.trial_id)
            live += 1
        return [c if c is not None else Claim("over") for c in out], releases

    def _fold(self, rows: list[_Row]) -> list[_Row]:
        """Fold the leading finished trials of ``rows`` (in number order, from ``_lwm`` on)
        into what every later claim check starts from (the first live trial of each key,
        the number of live trials): a finished trial never changes, so the next claim reads
        the study from the first trial not finished. Returns the rest of ``rows``."""
        k = 0
        for r in rows:
            if not r.state.is_finished():
                break
            k += 1
            if r.released or r.key is None or not r.has_values or r.key in self._first:
                continue
            self._first[r.key] = r
            self._live += 1
        if k:
            self._lwm = rows[k].number if k < len(rows) else rows[-1].number + 1
        return rows[k:]

    def _claim_templates(self, keys: Sequence[Hashable], archs: Sequence[Arch], step: int
                         ) -> list[FrozenTrial]:
        """The ``RUNNING`` trials claiming ``archs``: params from one index matrix of the
        chunk, user attributes (see :mod:`~nasforge.strategies.storage.study`); the
        ``arch_id`` is hashed from ``arch.to_json()`` (what ``Arch.arch_id`` hashes) unless
        the arch computed it already."""
        labels = list(self._dists)
        choices = [d.choices for d in self._dists.values()]  # type: ignore[attr-defined]
        rows: list[list[int]] = (self._codec.to_indices(list(archs)).tolist()
                                 if self._codec is not None and len(archs) else
                                 [[] for _ in archs])
        now = datetime.now()
        out = []
        for key, arch, row in zip(keys, archs, rows, strict=True):
            text = arch.to_json()
            aid = arch.__dict__.get("arch_id") or json_id(text)
            out.append(FrozenTrial(
                number=0, state=TrialState.RUNNING, value=None, values=None,
                datetime_start=now, datetime_complete=None,
                params={label: c[j] for label, c, j in zip(labels, choices, row, strict=True)},
                distributions=dict(self._dists) if row else {},
                user_attrs={"arch": text, "arch_id": aid,
                            "key": aid if key is arch else key_text(key), "step": int(step),
                            "worker": self.worker, "provenance": self._tag},
                system_attrs={}, intermediate_values={}, trial_id=0))
        return out

    def complete_many(self, trial_ids: Sequence[int], values: np.ndarray) -> None:
        """Store the evaluated values of our claims ``trial_ids`` (shape (n, n_objectives)):
        kept until :meth:`flush`, which the next :meth:`claim`, :meth:`wait` or the round's
        state (:meth:`flush` with its attribute) writes in one transaction."""
        if len(trial_ids):
            self._pending.append((list(trial_ids), np.atleast_2d(np.asarray(
                values, dtype=np.float64)).reshape(len(trial_ids), -1)))

    @guarded
    def flush(self, study_attr: tuple[str, Any] | None = None) -> None:
        """Write the completions kept by :meth:`complete_many`, and the study user attribute
        ``study_attr`` (``(key, value)``): one transaction on an RDB storage
        (:func:`~nasforge.strategies.storage._rdb_fast.finish_trials`)."""
        if not self._pending and study_attr is None:
            return
        ids = [t for chunk, _ in self._pending for t in chunk]
        vals = (np.concatenate([v for _, v in self._pending]) if self._pending
                else np.zeros((0, 0)))
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is not None:
            _rdb_fast.finish_trials(rdb, ids, vals, VALUES, None if study_attr is None
                                    else (self._study_id, *study_attr))
        else:
            for tid, row in zip(ids, vals, strict=True):
                self.complete(tid, row)
            if study_attr is not None:
                self.storage.set_study_user_attr(self._study_id, *study_attr)
        self._pending.clear()
        self._own.update(ids)

    @guarded
    def complete(self, trial_id: int, values: np.ndarray) -> None:
        """Store the evaluated values of our claim ``trial_id`` (one transaction when finite)."""
        vals = [float(x) for x in np.asarray(values, dtype=np.float64).tolist()]
        if any(x != x for x in vals):
            self.storage.set_trial_user_attr(trial_id, VALUES,
                                             [None if x != x else x for x in vals])
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        else:
            self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, vals)

    @guarded
    def release(self, trial_id: int, why: str) -> None:
        """Give up a claim: its trial becomes ``FAIL`` with attribute ``nasforge_released``."""
        try:
            self.storage.set_trial_user_attr(trial_id, RELEASED, why)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except RuntimeError:  # finished meanwhile (another worker released it first)
            pass

    @guarded
    def release_dead_claims(self) -> int:
        """Release the running claims of processes of this host that are gone; how many."""
        n = 0
        for t in self._trials():
            if (t.state == TrialState.RUNNING and "key" in t.user_attrs
                    and process_dead(t.user_attrs.get("provenance"))):
                self.release(t._trial_id, "its worker process died")
                n += 1
        return n

    @guarded
    def wait(self, trial_id: int) -> np.ndarray | None:
        """Wait until another worker's claim ``trial_id`` finishes: its values, or None when
        it was released (then claim the arch again). Our completions not written yet are
        written first (the other worker may be waiting for them)."""
        self.flush()
        while True:
            t = self.storage.get_trial(trial_id)
            if t.state.is_finished():
                vals = None if RELEASED in t.user_attrs else values_of(t)
                return None if vals is None else np.asarray(vals)
            if process_dead(t.user_attrs.get("provenance")):
                self.release(trial_id, "its worker process died")
                return None
            time.sleep(_POLL_S)
