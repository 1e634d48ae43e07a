"""A search's study: created or loaded in an Optuna storage, with its settings, and read back.

Every evaluated candidate is one trial of the study ``study_name`` in the storage given (a
:class:`~nasforge.strategies.storage.url.StorageURL`: ``sqlite:///PATH``, ``postgresql://...``,
``mysql://...``, ``journal:PATH``, a plain path for SQLite, or an
``optuna.storages.BaseStorage``), or, written by a single writer on an RDB storage without
``trial_params``, part of a row of nasforge's candidate table in the same database
(:mod:`~nasforge.strategies.storage._candidate_table`: a round a row, a fraction of a
trial's cost), which becomes such a trial when claims workers join or
:func:`~nasforge.strategies.storage._outside.write_trials` is called
(``nas trials``; what optuna-dashboard needs). Readers here see both, in number order. A
trial holds:

* trial params: the architecture's choices (one ``CategoricalDistribution`` per column of a
  :class:`~nasforge.search_spaces.base.ChoiceSpace` index codec; none for other spaces, and
  none from a single writer unless it is given ``trial_params=True``, see
  :mod:`~nasforge.strategies.storage._single`);
* trial values: every objective value, in ``objectives.names`` order (the study has one
  direction per objective). A candidate with a NaN value is a ``FAIL`` trial whose values are
  kept in the user attribute ``nasforge_values`` (Optuna stores no NaN);
* trial user attributes: ``arch`` (canonical JSON), ``arch_id``, ``key`` (the dedupe key),
  ``step`` (ask/tell round), ``worker`` (worker number) and ``provenance`` (``host:pid`` of
  the process that evaluated it). A single writer's trials
  (:mod:`~nasforge.strategies.storage._single`) leave out what they would share: ``key``
  where it is the ``arch_id``, ``worker`` 0, and ``provenance`` (the study's
  ``nasforge_worker:<worker>`` attribute names the writer's process); readers take those
  defaults;
* study user attributes: ``nasforge_meta`` (strategy, space, objectives, settings, seed, and
  what the caller adds: device, metric, ...; a resume with other settings is refused, naming
  the old and new values), ``nasforge_provenance`` (the objectives' provenance) and
  ``nasforge_state:<worker>`` (the strategy state after its last completed round).

Several workers share one study through claims (:mod:`~nasforge.strategies.storage.claims`).
A SQLite file written by the previous format (tables ``studies``/``candidates``/``steps``)
is refused in one line.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces.choice_space import ChoiceSpace
from nasforge.strategies.storage import _candidate_table
from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage._errors import connection_lost
from nasforge.strategies.storage._errors import database_locked
from nasforge.strategies.storage._errors import guarded
from nasforge.strategies.storage._single import SingleWriter
from nasforge.strategies.storage.claims import RELEASED
from nasforge.strategies.storage.claims import VALUES
from nasforge.strategies.storage.claims import StudyClaims
from nasforge.strategies.storage.claims import is_candidate
from nasforge.strategies.storage.claims import process_dead
from nasforge.strategies.storage.claims import process_tag
from nasforge.strategies.storage.claims import values_of
from nasforge.strategies.storage.url import StorageURL
from nasforge.strategies.storage.url import open_storage

if TYPE_CHECKING:
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["EXCLUSIVE", "META", "SearchStudy", "StoredCandidate"]

logger = logging.getLogger(__name__)

#: study user attribute: the search settings (what marks a nasforge study)
META = "nasforge_meta"
_PROVENANCE = "nasforge_provenance"
_STATE = "nasforge_state:"
_OWNER = "nasforge_worker:"
#: study user attribute: the ``host:pid`` of a single writer running on the study (None: none)
EXCLUSIVE = "nasforge_exclusive"
#: seconds waited before each new try of creating a study whose SQLite file is locked
_LOCKED_WAITS_S = (0.1, 0.3, 1.0, 2.0)
#: the user attributes :meth:`SearchStudy.new_candidates` reads (fast path), in this order
_CANDIDATE_ATTRS = ("key", RELEASED, VALUES, "arch", "arch_id", "step", "worker")


# ---- what is stored ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredCandidate:
    """One completed trial, as the driver reads it back.

    Attributes:
        number: the trial number (the study's sequence number, unique).
        arch_id: the arch's id.
        arch: the architecture as a plain dict.
        values: objective values in the study's column order.
        step: the ask/tell round that evaluated it.
        worker: the worker that evaluated it.
    """

    number: int
    arch_id: str
    arch: dict[str, Any]
    values: list[float]
    step: int
    worker: int


class SearchStudy(StudyClaims, SingleWriter):
    """One search's study in an Optuna storage (see the module docstring).

    Call protocol (what :func:`~nasforge.strategies.run_search` does): :meth:`init` once;
    :meth:`new_candidates` and :meth:`last_state` on resume; per chunk of new archs
    :meth:`claim`, evaluate the ``ours`` ones, :meth:`complete_many` them (or :meth:`release`
    on an error); :meth:`save_state` once a round is told (it writes the round's values and
    the state in one transaction); :meth:`new_candidates` for other workers' candidates;
    :meth:`flush` at the end (the claims are
    :class:`~nasforge.strategies.storage.claims.StudyClaims`).

    Args:
        storage: a URL, a path or an Optuna storage (see
            :func:`~nasforge.strategies.storage.url.open_storage`).
        study_name: the study.
        worker: this worker's number (several workers share one study; each keeps its own
            strategy state).
        space: the search space (its index codec gives the trial params).
        commit_every: a single writer writes its candidates and state at most every this many
            seconds (0: after every round); ``kill -9`` loses what was evaluated since.
        trial_params: a single writer also writes each arch as Optuna params (claims always
            do); by default the arch is stored once, as the ``arch`` user attribute.
        exclusive: this process is the study's only writer: each round's candidates are
            written as finished trials in one transaction, without claims
            (:mod:`~nasforge.strategies.storage._single`), and the study is not re-read per
            round. :meth:`init` falls back to claims when other live workers are registered
            on the study; a worker joining while a single writer runs is refused (one line);
            once the single writer ended (or died on this host) workers may join with claims.
            :attr:`exclusive` says which mode :meth:`init` chose.

    Raises:
        InvalidInputError: see :meth:`~nasforge.strategies.storage.url.StorageURL.open`.
    """

    def __init__(self, storage: BaseStorage | StorageURL | str | Path, study_name: str, *,
                 worker: int = 0, space: SearchSpace | None = None,
                 exclusive: bool = False, commit_every: float = 1.0,
                 trial_params: bool = False) -> None:
        self.storage, self.label = open_storage(storage)
        #: the file of a SQLite or journal storage (None for a server or a storage object)
        self.path = (None if isinstance(storage, BaseStorage)
                     else StorageURL.parse(storage).path)
        self._guard_depth = 0
        self.study_name = study_name
        self.worker = int(worker)
        self._tag = process_tag()
        self._study_id = -1
        self.exclusive = bool(exclusive)
        self._init_claims()
        self._init_single(commit_every, trial_params)
        self._init_sync()
        self._dists: dict[str, BaseDistribution] = {}
        self._codec = space if isinstance(space, ChoiceSpace) else None
        if self._codec is not None:
            self._dists = {label: CategoricalDistribution(options) for label, options in zip(
                self._codec.index_names(), self._codec.index_options(), strict=True)}

    def __repr__(self) -> str:
        return f"SearchStudy({self.label!r}, study={self.study_name!r}, worker={self.worker})"

    # ---- the study and its settings ---------------------------------------------------------
    @guarded
    def init(self, meta: dict[str, Any], directions: Sequence[str], *, resume: bool,
             provenance: Any = None) -> None:
        """Create the study, or check that ``meta`` matches the stored one.

        A study without completed candidates takes the new settings (a failed start does not
        block the corrected rerun).

        Raises:
            IncompatibleComponentsError: the study holds candidates of other settings (the
                message names the differing fields with stored and new values), or is not a
                nasforge study.
            InvalidInputError: the study holds candidates and ``resume`` is False; another
                live process runs this worker number.
        """
        fresh = json.loads(json.dumps(meta, sort_keys=True, default=str))
        rdb = _rdb_fast.rdb_backend(self.storage)
        created = self._create(directions)
        if created is None:
            self._study_id = self.storage.get_study_id_from_name(self.study_name)
        else:
            self._study_id = created
            if rdb is not None:
                _candidate_table.forget(rdb, self._study_id)
        # trials first: a study's creator stores its settings before its first trial, so a
        # worker joining meanwhile never sees trials without settings
        trials = list(self._trials())
        attrs = self.storage.get_study_user_attrs(self._study_id)
        old = attrs.get(META)
        n_done = sum(1 for t in trials if is_candidate(t))
        if rdb is not None:
            n_done += _candidate_table.count(rdb, self._study_id)
        if old is None and trials:
            raise IncompatibleComponentsError(
                f"study {self.study_name!r} in {self.label!r} holds {len(trials)} trials not "
                "written by nas search; give another study name (--study)")
        if old is not None and old != fresh:
            diff = sorted(k for k in set(old) | set(fresh) if old.get(k) != fresh.get(k))
            if n_done:
                raise IncompatibleComponentsError(
                    f"study {self.study_name!r} in {self.label!r} was run with other settings "
                    f"({', '.join(diff)} differ: stored {[old.get(k) for k in diff]}, now "
                    f"{[fresh.get(k) for k in diff]}); resume with the same settings or use a "
                    "new study name (--study) or storage"
                )
            logger.info("study %r holds no candidate; its settings are replaced", self.study_name)
            old = None
        if old is None:
            self.storage.set_study_user_attr(self._study_id, META, fresh)
            self.storage.set_study_user_attr(
                self._study_id, _PROVENANCE, json.loads(json.dumps(provenance, default=str)))
            for k in attrs:
                if k.startswith(_STATE):
                    self.storage.set_study_user_attr(self._study_id, k, None)
        if n_done and not resume:
            raise InvalidInputError(
                f"{self!r} already holds {n_done} candidates; pass resume=True "
                "(nas search --resume) or use a new study/file")
        self._own_worker_slot(attrs)
        self.release_dead_claims()
        self._choose_mode()
        if rdb is not None and not (self.exclusive and self._as_rows()):
            _candidate_table.to_trials(rdb, self._study_id, VALUES)
        self._init_sync()

    def _create(self, directions: Sequence[str]) -> int | None:
        """Create the study; its id, or None when it exists. SQLite's "database is locked"
        (another worker writing the file as this one starts) is retried a few times.

        Raises:
            InvalidInputError: the study cannot be created (one line).
        """
        waits = iter(_LOCKED_WAITS_S)
        while True:
            try:
                return self.storage.create_new_study(
                    [_direction(d) for d in directions], self.study_name)
            except optuna.exceptions.DuplicatedStudyError:
                return None
            except Exception as exc:
                if connection_lost(exc):
                    raise
                wait = next(waits, None) if database_locked(exc) else None
                if wait is None:
                    raise InvalidInputError(
                        f"cannot create study {self.study_name!r} in {self.label!r}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                    ) from None
                time.sleep(wait)

    def _choose_mode(self) -> None:
        """Take the single-writer flag (:attr:`exclusive`), or check that no single writer
        runs on the study (claims). Each side writes its mark before reading the other's
        (worker slot, then flag; flag, then worker slots), so of two processes starting
        together at least one sees the other.

        Raises:
            InvalidInputError: joining with claims a study whose single writer still runs.
        """
        attrs = self.storage.get_study_user_attrs(self._study_id)
        holder = attrs.get(EXCLUSIVE)
        if holder and holder != self._tag and not process_dead(holder):
            raise InvalidInputError(
                f"study {self.study_name!r} in {self.label!r} is being written by a "
                f"single-worker search (process {holder}, started without --study and "
                "--worker); wait for it to end, or start every worker with --study NAME")
        if not self.exclusive:
            if holder:
                self.storage.set_study_user_attr(self._study_id, EXCLUSIVE, None)
            return
        self.storage.set_study_user_attr(self._study_id, EXCLUSIVE, self._tag)
        others = self._other_workers(self.storage.get_study_user_attrs(self._study_id))
        running = self.storage.get_all_trials(self._study_id, deepcopy=False,
                                              states=(TrialState.RUNNING,))
        if others or running or self._slot_elsewhere:
            logger.info("study %r is shared (workers %s, running trials %d): claims are used",
                        self.study_name, others, len(running))
            self.storage.set_study_user_attr(self._study_id, EXCLUSIVE, None)
            self.exclusive = False

    def _other_workers(self, attrs: dict[str, Any]) -> list[int]:
        """The other worker numbers of the study whose process may still run."""
        return sorted(int(k[len(_OWNER):]) for k, v in attrs.items()
                      if k.startswith(_OWNER) and k != _OWNER + str(self.worker) and v
                      and v != self._tag and not process_dead(v))

    @guarded
    def end(self) -> None:
        """Give the single-writer flag back (a no-op with claims): workers may join."""
        if self.exclusive and self._study_id >= 0:
            self.storage.set_study_user_attr(self._study_id, EXCLUSIVE, None)

    @guarded
    def flush(self, study_attr: tuple[str, Any] | None = None, *, final: bool = False) -> None:
        """Write what is kept (a single writer's new trials, or the claims' completions) and
        the study user attribute ``study_attr`` (``(key, value)``), in one transaction on an
        RDB storage.

        Args:
            final: the search ended after a completed round (nothing asked since): a single
                writer's last unwritten state (:meth:`save_state`) is written too.
        """
        if self.exclusive:
            kept = self.unsaved_state() if final and study_attr is None else None
            if kept is not None:
                study_attr = (_STATE + str(self.worker), {"step": int(kept[0]), "state": kept[1]})
            self.write_new(study_attr)
        else:
            StudyClaims.flush(self, study_attr)

    @guarded
    def stored_meta(self) -> dict[str, Any] | None:
        """The settings stored with the study (None for a study not created yet)."""
        try:
            study_id = self.storage.get_study_id_from_name(self.study_name)
        except KeyError:
            return None
        got = self.storage.get_study_user_attrs(study_id).get(META)
        return dict(got) if isinstance(got, dict) else None

    def _own_worker_slot(self, attrs: dict[str, Any]) -> None:
        owner = attrs.get(_OWNER + str(self.worker))
        #: the slot's last owner is a process of another host that may still run
        self._slot_elsewhere = bool(owner and owner != self._tag and not process_dead(owner))
        if owner and owner != self._tag and not process_dead(owner):
            host, _, _ = str(owner).rpartition(":")
            if host == socket.gethostname():
                raise InvalidInputError(
                    f"worker {self.worker} of study {self.study_name!r} in {self.label!r} is "
                    f"already running (process {owner}); give this process another "
                    "--worker number")
        self.storage.set_study_user_attr(self._study_id, _OWNER + str(self.worker), self._tag)

    # ---- reading ----------------------------------------------------------------------------
    @guarded
    def candidates(self, after: int = -1) -> list[StoredCandidate]:
        """Completed candidates with a trial number over ``after``, in number order."""
        got = [_from_trial(t) for t in self._trials() if t.number > after]
        got += self._stored_rows(after + 1)
        return sorted((c for c in got if c is not None), key=lambda c: c.number)

    def _stored_rows(self, since: int) -> list[StoredCandidate]:
        """The candidates numbered ``since`` and on that are rows of the candidate table
        (:mod:`~nasforge.strategies.storage._candidate_table`), in number order."""
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is None:
            return []
        return [StoredCandidate(r.number, r.arch_id, json.loads(r.arch), r.values, r.step,
                                r.worker)
                for r in _candidate_table.read(rdb, self._study_id, since)]

    def _init_sync(self) -> None:
        #: trials numbered below this one are finished and were read by new_candidates
        self._sync_from = 0
        #: finished trials from ``_sync_from`` on that new_candidates returned already
        self._seen: set[int] = set()

    @guarded
    def new_candidates(self) -> list[StoredCandidate]:
        """The completed candidates not returned by an earlier call since :meth:`init`,
        except those this object completed (the driver holds them), in number order.

        Reads the study from the first trial that was not finished at the last call on:
        one query per call on an RDB storage, however many trials the study holds before it.
        """
        rdb = _rdb_fast.rdb_backend(self.storage)
        rows: list[tuple[int, int, Any, Any]] = (
            [(t._trial_id, t.number, t.state, t) for t in self._trials()
             if t.number >= self._sync_from] if rdb is None
            else [(r[0], r[1], r[2], r) for r in _rdb_fast.read_trials(
                rdb, self._study_id, self._sync_from, _CANDIDATE_ATTRS)])
        out: list[StoredCandidate] = []
        low = None
        for tid, number, state, raw in sorted(rows, key=lambda r: r[1]):
            if not state.is_finished():
                low = number if low is None else low
                continue
            if number in self._seen or tid in self._own:
                continue
            self._seen.add(number)
            got = _from_row(raw) if rdb is not None else _from_trial(raw)
            if got is not None:
                out.append(got)
        if rows:
            self._sync_from = low if low is not None else max(r[1] for r in rows) + 1
            self._seen = {n for n in self._seen if n >= self._sync_from}
        if low is None and self.exclusive and self._as_rows():
            # a single writer's rows (claims turned them into trials at init): after the
            # trials, all finished
            kept = [c for c in self._stored_rows(self._sync_from) if c.number not in self._seen]
            out += kept
            if kept:
                self._sync_from = kept[-1].number + 1
        return out

    def save_state(self, step: int, state: Callable[[], dict[str, Any]]) -> None:
        """Store this worker's strategy state after round ``step`` (``state()``, called
        before the next round is asked), in one transaction with the completions not written
        yet (:meth:`flush`). A single writer does so once ``commit_every`` seconds have
        passed since its last write, else keeps the round's state for a later one (the
        ``final`` :meth:`flush` writes the last)."""
        if self.exclusive and self.defer_state(step, state):
            return
        self.flush((_STATE + str(self.worker), {"step": int(step), "state": state()}))

    @guarded
    def last_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of this worker's last completed round, or None."""
        got = self.storage.get_study_user_attrs(self._study_id).get(_STATE + str(self.worker))
        return None if not got else (int(got["step"]), got["state"])


def _from_trial(t: FrozenTrial) -> StoredCandidate | None:
    """The candidate of a trial read through the storage API (None: not a candidate)."""
    if not is_candidate(t):
        return None
    ua = t.user_attrs
    return StoredCandidate(t.number, str(ua["arch_id"]), json.loads(ua["arch"]),
                           values_of(t) or [], int(ua["step"]), int(ua.get("worker", 0)))


def _from_row(row: tuple[Any, ...]) -> StoredCandidate | None:
    """The candidate of a row of :func:`~nasforge.strategies.storage._rdb_fast.read_trials`
    with :data:`_CANDIDATE_ATTRS` (None: not a candidate; as :func:`is_candidate`)."""
    _, number, state, values, key, released, nan_values, arch, arch_id, step, worker = row
    if not state.is_finished() or released is not None or (key is None and arch_id is None):
        return None
    if nan_values is not None:
        values = [float("nan") if x is None else float(x) for x in json.loads(nan_values)]
    elif state != TrialState.COMPLETE or not values:
        return None
    return StoredCandidate(int(number), str(json.loads(arch_id)),
                           json.loads(json.loads(arch)), [float(x) for x in values],
                           int(json.loads(step)), int(json.loads(worker or "0")))


def _direction(d: str) -> optuna.study.StudyDirection:
    return (optuna.study.StudyDirection.MAXIMIZE if d == "maximize"
            else optuna.study.StudyDirection.MINIMIZE)
