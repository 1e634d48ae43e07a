"""Persistence of a search: an Optuna study in any Optuna storage.

Every evaluated candidate is one trial of the study ``study_name`` in the storage given
(``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``, ``journal:PATH`` for a
JournalStorage file, a plain path for SQLite, or an ``optuna.storages.BaseStorage``):

* trial params: the architecture's choices (one ``CategoricalDistribution`` per column of a
  :class:`~nasforge.search_spaces.base.ChoiceSpace` index codec; none for other spaces);
* trial values: every objective value, in ``objectives.names`` order (the study has one
  direction per objective). A candidate with a NaN value is a ``FAIL`` trial whose values are
  kept in the user attribute ``nasforge_values`` (Optuna stores no NaN);
* trial user attributes: ``arch`` (canonical JSON), ``arch_id``, ``key`` (the dedupe key),
  ``step`` (ask/tell round), ``worker`` (worker number) and ``provenance`` (``host:pid`` of
  the process that evaluated it);
* study user attributes: ``nasforge_meta`` (strategy, space, objectives, settings, seed, and
  what the caller adds: device, metric, ...; a resume with other settings is refused, naming
  the old and new values), ``nasforge_provenance`` (the objectives' provenance) and
  ``nasforge_state:<worker>`` (the strategy state after its last completed round).

Claims make one study safe for several workers: before evaluating, a worker creates its
trials as ``RUNNING`` claims (Optuna numbers trials under a lock on the study row, so trial
numbers are unique and in commit order); it then reads the study and gives up every claim
whose key an earlier live trial holds (it uses that trial's values, waiting for it if it is
still running) or whose rank among live trials is at or over the budget. A worker killed
with ``kill -9`` leaves ``RUNNING`` claims; they are released (``FAIL``, attribute
``nasforge_released``) when any worker on the same host sees that the claiming process is
gone, so their archs are evaluated again. Claims of a dead worker on another host are
released when that worker restarts on its host.

A SQLite file written by the previous format (tables ``studies``/``candidates``/``steps``)
is refused with one line.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import time
from collections.abc import Hashable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces.choice_space import ChoiceSpace

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["Claim", "SearchStudy", "StoredCandidate", "dashboard_command", "open_storage",
           "read_study", "storage_label"]

logger = logging.getLogger(__name__)


def route_optuna_logs() -> None:
    """Send Optuna's messages ("A new study created ...") through Python logging like ours,
    so the application decides what a person sees; Optuna's own handler would hold on to
    whatever ``sys.stderr`` was when it was first used. Called where nasforge opens a study
    (importing nasforge leaves Optuna's logging alone)."""
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()

_META = "nasforge_meta"
_PROVENANCE = "nasforge_provenance"
_STATE = "nasforge_state:"
_OWNER = "nasforge_worker:"
_VALUES = "nasforge_values"
_RELEASED = "nasforge_released"
_POLL_S = 0.1


# ---- opening a storage -------------------------------------------------------------------------
def storage_label(url: str) -> str:
    """``url`` with any password hidden (for messages).

    Example:
        >>> storage_label("postgresql://me:secret@db:5432/nas")
        'postgresql://me:***@db:5432/nas'
    """
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def dashboard_command(url: str) -> str:
    """The ``optuna-dashboard`` command that shows the studies of storage ``url``.

    Example:
        >>> dashboard_command("runs/a/search.db"), dashboard_command("journal:runs/j.log")
        ('optuna-dashboard sqlite:///runs/a/search.db', 'optuna-dashboard runs/j.log')
    """
    if url.startswith("journal:"):
        return f"optuna-dashboard {url[len('journal:'):].removeprefix('//')}"
    return f"optuna-dashboard {storage_label(url if '://' in url else f'sqlite:///{url}')}"


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not SQLite, or a SQLite file of the previous nasforge format."""
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE "
                                                "type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInputError(
            f"search storage {str(path)!r} is not a SQLite database ({exc}); give another file"
        ) from None
    if {"candidates", "steps", "studies"} <= tables and "trials" not in tables:
        raise InvalidInputError(
            f"search storage {str(path)!r} is in nasforge's previous format (SQLite tables "
            "studies/candidates/steps), which this version does not read; rerun the search "
            "into a new file (searches are Optuna studies now)"
        )


def open_storage(storage: BaseStorage | str | Path) -> tuple[BaseStorage, str]:
    """An Optuna storage and its label from a URL, a path or a storage.

    Args:
        storage: ``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``, ``journal:PATH``,
            a plain path (SQLite file; its folder is created) or an Optuna storage.

    Returns:
        The storage (RDB storages are Optuna's cached ones) and a label (password hidden).

    Raises:
        InvalidInputError: an unknown URL scheme, a missing database driver, an unreachable
            server, a file that is not an Optuna SQLite database (the previous format named).
    """
    route_optuna_logs()
    if isinstance(storage, BaseStorage):
        return storage, type(storage).__name__
    text = str(storage)
    if text.startswith("journal:"):
        path = Path(text[len("journal:"):].removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        from optuna.storages.journal import JournalFileBackend

        try:
            backend = JournalFileBackend(str(path))
        except OSError as exc:
            raise InvalidInputError(f"cannot open journal storage {str(path)!r}: {exc}") from None
        return optuna.storages.JournalStorage(backend), text
    if "://" not in text:
        text = f"sqlite:///{text}"
    if text.startswith("sqlite:///"):
        path = Path(text[len("sqlite:///"):])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInputError(
                f"cannot create the folder of search storage {str(path)!r}: {exc}") from None
        _check_sqlite_file(path)
    label = storage_label(text)
    return _rdb_storage(text, label), label


def _sqlite_fast(storage: BaseStorage) -> BaseStorage:
    """WAL journal and ``synchronous=NORMAL`` for a SQLite storage: readers (other workers,
    optuna-dashboard) no longer block writers, and a commit costs no fsync of its own. A
    committed trial still survives ``kill -9`` of any process (only a power cut may lose the
    last commits)."""
    backend = getattr(storage, "_backend", storage)
    engine = getattr(backend, "engine", None)
    if engine is None or engine.name != "sqlite":
        return storage
    from sqlalchemy import event

    def pragmas(con: Any, _record: Any) -> None:
        cur = con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(engine, "connect", pragmas)
    engine.dispose()  # connections opened from now on get the pragmas
    return storage


def _rdb_storage(url: str, label: str, tries: int = 4) -> BaseStorage:
    scheme = url.split("://", 1)[0]
    try:
        return _sqlite_fast(optuna.storages.get_storage(url))
    except ModuleNotFoundError as exc:
        raise InvalidInputError(
            f"storage {label!r} needs the database driver {exc.name!r}, which is not "
            "installed: pip install 'nasforge[postgres]' (PostgreSQL) or the driver for "
            f"{scheme!r}"
        ) from None
    except Exception as exc:
        import sqlalchemy.exc as sa_exc

        cause: BaseException = exc
        while cause.__cause__ is not None and not isinstance(cause, sa_exc.SQLAlchemyError):
            cause = cause.__cause__
        if isinstance(cause, sa_exc.NoSuchModuleError | sa_exc.ArgumentError):
            raise InvalidInputError(
                f"storage URL scheme {scheme!r} is not one Optuna knows ({label!r}); use "
                "sqlite:///PATH, postgresql://USER@HOST:PORT/DB, mysql://..., or journal:PATH"
            ) from None
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if tries > 1 and (isinstance(cause, sa_exc.IntegrityError) or (
                isinstance(cause, sa_exc.OperationalError) and any(
                    m in first for m in ("already exists", "closed the connection", "locked")))):
            # workers creating the schema of a fresh database at once: one wins, retry
            time.sleep(0.5)
            return _rdb_storage(url, label, tries - 1)
        raise InvalidInputError(
            f"cannot open search storage {label!r}: {first}; check that the database server "
            "runs and the URL (host, port, user, database) is right"
        ) from None


def read_study(url: str, study_name: str | None = None
               ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A search's study read back: its name, its settings and its candidates in trial-number
    order (each ``arch_id``, ``arch`` JSON, ``step``, ``values`` in objective order).

    Args:
        url: the storage (see :func:`open_storage`).
        study_name: the study; None picks the storage's only nasforge study.

    Raises:
        InvalidInputError: the storage cannot be opened, the study does not exist or is not
            a nasforge search, or several nasforge studies and no ``study_name``.
    """
    storage, label = open_storage(url)
    studies = {s.study_name: s for s in storage.get_all_studies()}
    ours = sorted(n for n, s in studies.items() if _META in s.user_attrs)
    if study_name is None:
        if len(ours) != 1:
            raise InvalidInputError(
                f"storage {label!r} holds {len(ours)} nasforge studies ({', '.join(ours)}); "
                "name one as URL#STUDY")
        study_name = ours[0]
    if study_name not in ours:
        raise InvalidInputError(
            f"storage {label!r} has no nasforge study {study_name!r}; its nasforge studies: "
            f"{', '.join(ours) or 'none'}")
    study_id = storage.get_study_id_from_name(study_name)
    rows = [{"arch_id": t.user_attrs["arch_id"], "arch": t.user_attrs["arch"],
             "step": int(t.user_attrs["step"]), "values": _values_of(t)}
            for t in sorted(storage.get_all_trials(study_id, deepcopy=False),
                            key=lambda t: t.number) if _is_candidate(t)]
    return study_name, dict(studies[study_name].user_attrs[_META]), rows


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


@dataclass(frozen=True)
class Claim:
    """What a claim gave a worker for one arch.

    Attributes:
        status: ``ours`` (evaluate it, then :meth:`SearchStudy.complete`), ``done`` (another
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
                    None if "key" not in ua else str(ua["key"]), _RELEASED in ua,
                    ua.get("provenance"), _values_of(t) is not None)


def key_text(key: Hashable) -> str:
    """The stored form of a dedupe key: an arch's ``arch_id``, else ``str(key)``."""
    arch_id = getattr(key, "arch_id", None)
    return str(arch_id) if arch_id is not None else str(key)


def _values_of(t: FrozenTrial) -> list[float] | None:
    if _VALUES in t.user_attrs:
        return [float("nan") if x is None else float(x) for x in t.user_attrs[_VALUES]]
    if t.state == TrialState.COMPLETE and t.values is not None:
        return [float(x) for x in t.values]
    return None


def _is_candidate(t: FrozenTrial) -> bool:
    return (t.state.is_finished() and _RELEASED not in t.user_attrs and "key" in t.user_attrs
            and _values_of(t) is not None)


def _tag() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _dead(tag: Any) -> bool:
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


class SearchStudy:
    """One search's study in an Optuna storage (see the module docstring).

    Call protocol (what :func:`~nasforge.strategies.run_search` does): :meth:`init` once;
    :meth:`candidates` and :meth:`last_state` on resume; per chunk of new archs :meth:`claim`,
    evaluate the ``ours`` ones, :meth:`complete` them (or :meth:`release` on an error);
    :meth:`save_state` once a round is told.

    Args:
        storage: a URL, a path or an Optuna storage (see :func:`open_storage`).
        study_name: the study.
        worker: this worker's number (several workers share one study; each keeps its own
            strategy state).
        space: the search space (its index codec gives the trial params).

    Raises:
        InvalidInputError: see :func:`open_storage`.
    """

    def __init__(self, storage: BaseStorage | str | Path, study_name: str, *, worker: int = 0,
                 space: SearchSpace | None = None) -> None:
        self.storage, self.label = open_storage(storage)
        self.study_name = study_name
        self.worker = int(worker)
        self._tag = _tag()
        self._study_id = -1
        #: the highest trial number the driver has read back (see ``candidates(after=...)``)
        self.synced = -1
        self._dists: dict[str, BaseDistribution] = {}
        self._codec = space if isinstance(space, ChoiceSpace) else None
        if self._codec is not None:
            self._dists = {label: CategoricalDistribution(options) for label, options in zip(
                self._codec.index_names(), self._codec.index_options(), strict=True)}

    def __repr__(self) -> str:
        return f"SearchStudy({self.label!r}, study={self.study_name!r}, worker={self.worker})"

    # ---- the study and its settings ---------------------------------------------------------
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
        try:
            self._study_id = self.storage.create_new_study(
                [_direction(d) for d in directions], self.study_name)
        except optuna.exceptions.DuplicatedStudyError:
            self._study_id = self.storage.get_study_id_from_name(self.study_name)
        except Exception as exc:
            raise InvalidInputError(
                f"cannot create study {self.study_name!r} in {self.label!r}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        # trials first: a study's creator stores its settings before its first trial, so a
        # worker joining meanwhile never sees trials without settings
        trials = list(self._trials())
        attrs = self.storage.get_study_user_attrs(self._study_id)
        old = attrs.get(_META)
        n_done = sum(1 for t in trials if _is_candidate(t))
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
            self.storage.set_study_user_attr(self._study_id, _META, fresh)
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

    def stored_meta(self) -> dict[str, Any] | None:
        """The settings stored with the study (None for a study not created yet)."""
        try:
            study_id = self.storage.get_study_id_from_name(self.study_name)
        except KeyError:
            return None
        got = self.storage.get_study_user_attrs(study_id).get(_META)
        return dict(got) if isinstance(got, dict) else None

    def _own_worker_slot(self, attrs: dict[str, Any]) -> None:
        owner = attrs.get(_OWNER + str(self.worker))
        if owner and owner != self._tag and not _dead(owner):
            host, _, _ = str(owner).rpartition(":")
            if host == socket.gethostname():
                raise InvalidInputError(
                    f"worker {self.worker} of study {self.study_name!r} in {self.label!r} is "
                    f"already running (process {owner}); give this process another "
                    "--worker number")
        self.storage.set_study_user_attr(self._study_id, _OWNER + str(self.worker), self._tag)

    def _trials(self) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self._study_id, deepcopy=False)

    # ---- reading ----------------------------------------------------------------------------
    def candidates(self, after: int = -1) -> list[StoredCandidate]:
        """Completed candidates with a trial number over ``after``, in number order."""
        out = []
        for t in self._trials():
            if t.number <= after or not _is_candidate(t):
                continue
            ua = t.user_attrs
            out.append(StoredCandidate(t.number, str(ua["arch_id"]), json.loads(ua["arch"]),
                                       _values_of(t) or [], int(ua["step"]),
                                       int(ua.get("worker", 0))))
        return out

    def save_state(self, step: int, state: dict[str, Any]) -> None:
        """Store this worker's strategy state after round ``step``."""
        self.storage.set_study_user_attr(self._study_id, _STATE + str(self.worker),
                                         {"step": int(step), "state": state})

    def last_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of this worker's last completed round, or None."""
        got = self.storage.get_study_user_attrs(self._study_id).get(_STATE + str(self.worker))
        return None if not got else (int(got["step"]), got["state"])

    # ---- claims -----------------------------------------------------------------------------
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
            if r.state == TrialState.RUNNING and r.trial_id not in mine and _dead(r.provenance):
                self.release(r.trial_id, "its worker process died")
                continue
            if r.state.is_finished() and not r.has_values:
                continue
            i = mine.get(r.trial_id)
            if r.key in first:
                if i is not None:
                    other = first[r.key]
                    self.release(r.trial_id, f"duplicate of trial {other.number}")
                    vals = (_values_of(self.storage.get_trial(other.trial_id))
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
        transaction (:func:`_insert_claims`), else through the storage API."""
        backend = getattr(self.storage, "_backend", None)
        if isinstance(backend, optuna.storages.RDBStorage):
            try:
                return _insert_claims(backend, self._study_id, templates)
            except ImportError:  # another Optuna layout: the public path below
                pass
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

    def complete_many(self, trial_ids: Sequence[int], values: np.ndarray) -> None:
        """:meth:`complete` for several claims: one transaction on an RDB storage when every
        value is finite (:func:`_finish_trials`)."""
        if not len(trial_ids):
            return
        v = np.atleast_2d(np.asarray(values, dtype=np.float64)).reshape(len(trial_ids), -1)
        backend = getattr(self.storage, "_backend", None)
        if isinstance(backend, optuna.storages.RDBStorage) and np.isfinite(v).all():
            try:
                _finish_trials(backend, list(trial_ids), v)
                return
            except ImportError:  # another Optuna layout: one by one below
                pass
        for tid, row in zip(trial_ids, v, strict=True):
            self.complete(tid, row)

    def complete(self, trial_id: int, values: np.ndarray) -> None:
        """Store the evaluated values of our claim ``trial_id`` (one transaction when finite)."""
        vals = [float(x) for x in np.asarray(values, dtype=np.float64).tolist()]
        if any(x != x for x in vals):
            self.storage.set_trial_user_attr(trial_id, _VALUES,
                                             [None if x != x else x for x in vals])
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        else:
            self.storage.set_trial_state_values(trial_id, TrialState.COMPLETE, vals)

    def release(self, trial_id: int, why: str) -> None:
        """Give up a claim: its trial becomes ``FAIL`` with attribute ``nasforge_released``."""
        try:
            self.storage.set_trial_user_attr(trial_id, _RELEASED, why)
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)
        except RuntimeError:  # finished meanwhile (another worker released it first)
            pass

    def release_dead_claims(self) -> int:
        """Release the running claims of processes of this host that are gone; how many."""
        n = 0
        for t in self._trials():
            if (t.state == TrialState.RUNNING and "key" in t.user_attrs
                    and _dead(t.user_attrs.get("provenance"))):
                self.release(t._trial_id, "its worker process died")
                n += 1
        return n

    def wait(self, trial_id: int) -> np.ndarray | None:
        """Wait until another worker's claim ``trial_id`` finishes: its values, or None when
        it was released (then claim the arch again)."""
        while True:
            t = self.storage.get_trial(trial_id)
            if t.state.is_finished():
                vals = None if _RELEASED in t.user_attrs else _values_of(t)
                return None if vals is None else np.asarray(vals)
            if _dead(t.user_attrs.get("provenance")):
                self.release(trial_id, "its worker process died")
                return None
            time.sleep(_POLL_S)


def _insert_claims(rdb: optuna.storages.RDBStorage, study_id: int,
                   templates: list[FrozenTrial]) -> tuple[list[int], list[_Row]]:
    """Insert ``RUNNING`` trials with their params and user attributes into an RDB storage and
    read what a claim check needs of every trial of the study, in one transaction that holds
    the study's write lock from the start (a no-op update of its row: the row lock on a
    server database, the database's write lock on SQLite), so trial numbers are unique and
    the read sees every claim committed before ours. Optuna's own ORM models, with one
    batched insert per table instead of Optuna's two queries per param and attribute. The
    params' distributions are the study's fixed ones, so Optuna's compatibility check has
    nothing to check.

    Returns:
        The new trials' ids, and one row per trial of the study (ours included).

    Raises:
        ImportError: this Optuna has another internal layout (the caller falls back).
    """
    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import func
    from sqlalchemy import update
    from sqlalchemy.orm import aliased

    with _create_scoped_session(rdb.scoped_session) as session:
        session.execute(update(models.StudyModel).where(
            models.StudyModel.study_id == study_id).values(
            study_name=models.StudyModel.study_name))
        n0 = int(session.query(func.count(models.TrialModel.trial_id)).filter(
            models.TrialModel.study_id == study_id).scalar() or 0)
        made = [models.TrialModel(study_id=study_id, number=n0 + i, state=TrialState.RUNNING,
                                  datetime_start=t.datetime_start)
                for i, t in enumerate(templates)]
        session.add_all(made)
        session.flush()
        ids = [int(r.trial_id) for r in made]
        dist_json: dict[str, str] = {}
        children: list[Any] = []
        for tid, t in zip(ids, templates, strict=True):
            for name, value in t.params.items():
                dist = t.distributions[name]
                if name not in dist_json:
                    dist_json[name] = distribution_to_json(dist)
                children.append(models.TrialParamModel(
                    trial_id=tid, param_name=name, param_value=dist.to_internal_repr(value),
                    distribution_json=dist_json[name]))
            children.extend(models.TrialUserAttributeModel(trial_id=tid, key=k,
                                                           value_json=json.dumps(v))
                            for k, v in t.user_attrs.items())
        session.add_all(children)
        session.flush()
        ua = models.TrialUserAttributeModel
        key, rel, prov, vals = (aliased(ua) for _ in range(4))
        T = models.TrialModel
        query = (session.query(T.trial_id, T.number, T.state, key.value_json,
                               rel.value_json, prov.value_json, vals.value_json)
                 .outerjoin(key, (key.trial_id == T.trial_id) & (key.key == "key"))
                 .outerjoin(rel, (rel.trial_id == T.trial_id) & (rel.key == _RELEASED))
                 .outerjoin(prov, (prov.trial_id == T.trial_id) & (prov.key == "provenance"))
                 .outerjoin(vals, (vals.trial_id == T.trial_id) & (vals.key == _VALUES))
                 .filter(T.study_id == study_id))
        rows = [_Row(int(tid), int(num), state,
                     None if k is None else str(json.loads(k)), r is not None,
                     None if p is None else json.loads(p),
                     state == TrialState.COMPLETE or v is not None)
                for tid, num, state, k, r, p, v in query]
    return ids, rows


def _finish_trials(rdb: optuna.storages.RDBStorage, trial_ids: list[int],
                   values: np.ndarray) -> None:
    """Set ``RUNNING`` claims ``COMPLETE`` with their (finite) ``values`` in one transaction,
    with Optuna's ORM models (what ``set_trial_state_values`` does per trial).

    Raises:
        ImportError: this Optuna has another internal layout (the caller falls back).
        RuntimeError: a trial is not running any more (``UpdateFinishedTrialError``).
    """
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    now = datetime.now()
    with _create_scoped_session(rdb.scoped_session) as session:
        rows = {int(r.trial_id): r for r in session.query(models.TrialModel).filter(
            models.TrialModel.trial_id.in_(trial_ids)).with_for_update()}
        for tid, v in zip(trial_ids, values, strict=True):
            row = rows[tid]
            if row.state != TrialState.RUNNING:
                raise optuna.exceptions.UpdateFinishedTrialError(
                    f"trial {row.number} is {row.state.name}, not RUNNING")
            for j, x in enumerate(v.tolist()):
                value, kind = models.TrialValueModel.value_to_stored_repr(float(x))
                session.add(models.TrialValueModel(trial_id=tid, objective=j, value=value,
                                                   value_type=kind))
            row.state = TrialState.COMPLETE
            row.datetime_complete = now


def _direction(d: str) -> optuna.study.StudyDirection:
    return (optuna.study.StudyDirection.MAXIMIZE if d == "maximize"
            else optuna.study.StudyDirection.MINIMIZE)
