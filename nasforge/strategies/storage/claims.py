"""Claims: how several workers share one study's budget and evaluate each arch once.

Before evaluating, a worker creates its trials as ``RUNNING`` claims (Optuna numbers trials
under a lock on the study row, so trial numbers are unique and in commit order); it then reads
the study and gives up every claim whose key an earlier live trial holds (it uses that
trial's values, waiting for it if it is still running) or whose rank among live trials is at
or over the budget. A worker killed with ``kill -9`` leaves ``RUNNING`` claims; they are
released (``FAIL``, attribute ``nasforge_released``) when any worker on the same host sees
that the claiming process is gone, so their archs are evaluated again. Claims of a dead worker
on another host are released when that worker restarts on its host.

On an RDB storage the claims of a chunk are inserted and checked in one transaction, and
completed in another (:mod:`~nasforge.strategies.storage._rdb_fast`); elsewhere, and on an
Optuna version that path was not tested on, through Optuna's public storage API.
"""

from __future__ import annotations

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

from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage._errors import guarded

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["Claim", "StudyClaims", "is_candidate", "key_text", "process_dead", "process_tag",
           "values_of"]

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
        return _Row(t._trial_id, t.number, t.state,
                    None if "key" not in ua else str(ua["key"]), RELEASED in ua,
                    ua.get("provenance"), values_of(t) is not None)


#: the user attributes a claim check reads of every trial (fast path), in :func:`_row` order
_ROW_ATTRS = ("key", RELEASED, "provenance", VALUES)


def _row(tid: Any, num: Any, state: TrialState, k: str | None, r: str | None, p: str | None,
         v: str | None) -> _Row:
    """A :class:`_Row` from the stored JSON of :data:`_ROW_ATTRS`."""
    return _Row(int(tid), int(num), state, None if k is None else str(json.loads(k)),
                r is not None, None if p is None else json.loads(p),
                state == TrialState.COMPLETE or v is not None)


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
    """Whether ``t`` is an evaluated candidate (finished, not released, with values)."""
    return (t.state.is_finished() and RELEASED not in t.user_attrs and "key" in t.user_attrs
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
    ones.
    """

    storage: BaseStorage
    worker: int
    _study_id: int
    _tag: str
    _codec: ChoiceSpace | None
    _dists: dict[str, BaseDistribution]

    def _trials(self) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self._study_id, deepcopy=False)

    @guarded
    def claim(self, keys: Sequence[Hashable], archs: Sequence[Arch], step: int,
              budget: int | None) -> list[Claim]:
        """Claim ``archs`` (distinct ``keys``) for evaluation in round ``step``.

        The claims are inserted and the study read in one transaction holding the study's
        write lock (RDB storages), so the verdicts see every claim committed before ours.

        Returns:
            One :class:`Claim` per arch, in order.
        """
        ids, rows = self._create_claims([self._claim_template(k, a, step)
                                         for k, a in zip(keys, archs, strict=True)])
        mine = dict(zip(ids, range(len(ids)), strict=True))
        out: list[Claim | None] = [None] * len(ids)
        first: dict[str, _Row] = {}
        live = 0
        for r in sorted(rows, key=lambda r: (r.number, r.trial_id)):
            if r.released or r.key is None:
                continue
            if (r.state == TrialState.RUNNING and r.trial_id not in mine
                    and process_dead(r.provenance)):
                self.release(r.trial_id, "its worker process died")
                continue
            if r.state.is_finished() and not r.has_values:
                continue
            i = mine.get(r.trial_id)
            if r.key in first:
                if i is not None:
                    other = first[r.key]
                    self.release(r.trial_id, f"duplicate of trial {other.number}")
                    vals = (values_of(self.storage.get_trial(other.trial_id))
                            if other.state.is_finished() else None)
                    out[i] = (Claim("done", other.trial_id, np.asarray(vals)) if vals is not None
                              else Claim("busy", other.trial_id))
                continue
            first[r.key] = r
            if i is not None:
                if budget is not None and live >= budget:
                    self.release(r.trial_id, "over the study's budget")
                    out[i] = Claim("over")
                else:
                    out[i] = Claim("ours", r.trial_id)
            live += 1
        return [c if c is not None else Claim("over") for c in out]

    def _create_claims(self, templates: list[FrozenTrial]) -> tuple[list[int], list[_Row]]:
        """Create the claim trials and read the study: on an RDB storage in one locked
        transaction (:func:`~nasforge.strategies.storage._rdb_fast.insert_claims`), else
        through the storage API."""
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is not None:
            ids, raw = _rdb_fast.insert_claims(rdb, self._study_id, templates, _ROW_ATTRS)
            return ids, [_row(*r) for r in raw]
        ids = [self.storage.create_new_trial(self._study_id, template_trial=t)
               for t in templates]
        return ids, [_Row.of(t) for t in self._trials()]

    def _claim_template(self, key: Hashable, arch: Arch, step: int) -> FrozenTrial:
        params: dict[str, Any] = {}
        if self._codec is not None:
            row = self._codec.to_indices([arch])[0]
            params = {label: self._dists[label].to_external_repr(int(j))
                      for label, j in zip(self._dists, row.tolist(), strict=True)}
        return FrozenTrial(
            number=0, state=TrialState.RUNNING, value=None, values=None,
            datetime_start=datetime.now(), datetime_complete=None, params=params,
            distributions=dict(self._dists) if params else {},
            user_attrs={"arch": arch.to_json(), "arch_id": arch.arch_id, "key": key_text(key),
                        "step": int(step), "worker": self.worker, "provenance": self._tag},
            system_attrs={}, intermediate_values={}, trial_id=0)

    @guarded
    def complete_many(self, trial_ids: Sequence[int], values: np.ndarray) -> None:
        """:meth:`complete` for several claims: one transaction on an RDB storage when every
        value is finite (:func:`~nasforge.strategies.storage._rdb_fast.finish_trials`)."""
        if not len(trial_ids):
            return
        v = np.atleast_2d(np.asarray(values, dtype=np.float64)).reshape(len(trial_ids), -1)
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is not None and np.isfinite(v).all():
            _rdb_fast.finish_trials(rdb, list(trial_ids), v)
            return
        for tid, row in zip(trial_ids, v, strict=True):
            self.complete(tid, row)

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
        it was released (then claim the arch again)."""
        while True:
            t = self.storage.get_trial(trial_id)
            if t.state.is_finished():
                vals = None if RELEASED in t.user_attrs else values_of(t)
                return None if vals is None else np.asarray(vals)
            if process_dead(t.user_attrs.get("provenance")):
                self.release(trial_id, "its worker process died")
                return None
            time.sleep(_POLL_S)
