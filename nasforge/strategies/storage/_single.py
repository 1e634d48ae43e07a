"""A single writer's persistence: evaluated candidates written with the strategy state in one
transaction at most every ``commit_every`` seconds, with no claims before them.

A study with one worker (``run_search(..., exclusive=True)``; ``nas search`` without
``--study`` and ``--worker``) needs none of the claims protocol: nobody else writes the study,
so there is no budget to share and no duplicate to lose to. The driver evaluates a round as
an unpersisted search does and hands the new candidates to :meth:`SingleWriter.add_finished`
and the round's state to ``save_state``; once ``commit_every`` seconds have passed since the
last write (0: after every round), the candidates kept so far are written with the latest
round's strategy state in one transaction (:meth:`SingleWriter.write_new`); the end of the
search writes the rest with the last round's state. ``kill -9`` loses what was evaluated
since the last write (at most ``commit_every`` seconds of rounds, and the round in flight)
and nothing before it; a resume replays the rounds after the stored state from the stored
candidates.

What a candidate is written as:

* on an RDB storage, by default, rows of nasforge's candidate table
  (:mod:`~nasforge.strategies.storage._candidate_table`): a round's candidates in one row,
  as their archs' row keys (option indices, which the archs already hold: no JSON, no
  hash) and their values as float64 bytes; the canonical JSON and ``arch_id`` of an arch
  that keeps no row key, a row each. An Optuna trial is 8 rows over 3 tables for
  ``nas search``'s candidate, and their inserts made persistence cost a third of a
  predictor-speed search (``benchmarks/ofa_search.py --cli``); a candidate now costs
  well under a microsecond (``benchmarks/writer_cost.py``).
  The rows become the trials below when workers join with claims or on
  :func:`~nasforge.strategies.storage._outside.write_trials` (``nas trials``);
* with ``trial_params=True``, or on another storage (a journal file), finished trials,
  ``COMPLETE`` (``FAIL`` with their values in ``nasforge_values`` when one is NaN): what
  the claims path stores once completed, less what every trial of a single writer shares
  (``key`` where it equals the ``arch_id``, ``worker`` 0, ``provenance``: readers take
  those defaults, and the study's ``nasforge_worker:<worker>`` attribute names the writing
  process). ``trial_params=True`` also writes the arch as one Optuna param per choice
  (optuna-dashboard's per-param plots); rows turned into trials have none.

On an RDB storage the trials are written by
:func:`~nasforge.strategies.storage._rdb_finished.insert_finished`; elsewhere one
``create_new_trial(template_trial=...)`` per trial, then the state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution
from optuna.distributions import CategoricalDistribution
from optuna.distributions import distribution_to_json
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial
from optuna.trial import TrialState

from nasforge.errors import InvalidInputError
from nasforge.search_spaces import ArchText
from nasforge.strategies.storage import _candidate_table
from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage import _rdb_finished
from nasforge.strategies.storage.claims import VALUES
from nasforge.strategies.storage.claims import arch_json_and_id
from nasforge.strategies.storage.claims import key_text

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["SingleWriter"]


class SingleWriter:
    """The single-writer half of :class:`~nasforge.strategies.storage.study.SearchStudy`
    (see the module docstring)."""

    storage: BaseStorage
    worker: int
    _study_id: int
    _codec: ChoiceSpace | None
    _dists: dict[str, BaseDistribution]

    def _init_single(self, commit_every: float, trial_params: bool) -> None:
        if not commit_every >= 0:
            raise InvalidInputError(f"commit_every must be >= 0 seconds, got {commit_every!r}")
        #: seconds between two writes (0: every round)
        self.commit_every = float(commit_every)
        #: also write the arch as one Optuna param per choice (see the module docstring)
        self.trial_params = bool(trial_params)
        #: the candidates handed over and not written yet
        self._new: list[_rdb_finished.NewTrials] = []
        #: ``(step, state function)`` of the last round whose state was not written yet
        self._unsaved: tuple[int, Callable[[], dict[str, Any]]] | None = None
        #: when the strategy state was last written (candidates of an ``eval_chunk`` search
        #: are written chunk by chunk, the state at most every ``commit_every`` seconds)
        self._last_write = time.monotonic()
        self._columns: list[tuple[str, str]] | None = None
        self._text: ArchText | None = None
        self._internal: list[list[float]] = []
        #: the number of the next trial (None: count the study's trials under its lock, as
        #: the first insert does; the study's only writer knows it from then on)
        self._next_number: int | None = None
        #: the candidates handed over and not written yet, as candidate-table rows
        self._rows: list[_candidate_table.CandidateRows] = []
        #: whether candidates go to the candidate table (None: not decided yet)
        self._rows_mode: bool | None = None
        #: whether this object created (or found) the candidate table
        self._table_ready = False
        #: whether candidates are stored by row key (None: not decided yet), and the row
        #: format to store with the next rows (the study has none yet)
        self._row_format_ok: bool | None = None
        self._pending_format: dict[str, Any] | None = None

    def add_finished(self, keys: Sequence[Hashable], archs: Sequence[Arch], values: np.ndarray,
                     step: int, start: datetime) -> None:
        """Keep evaluated candidates of round ``step`` (``values``: (n, n_objectives)) to be
        written (as rows or finished trials, see the module docstring) by the next
        :meth:`write_new`."""
        if not len(archs):
            return
        vals = np.asarray(values, dtype=np.float64).reshape(len(archs), -1)
        if self._as_rows():
            indices = self._row_keys(keys, archs)
            if indices is not None:  # the archs' own row keys: no JSON, no hash
                self._rows.append(_candidate_table.CandidateRows(
                    int(step), self.worker, [], [], [], vals, start.timestamp(), time.time(),
                    indices))
                return
        texts, ids, other_keys = self._identities(keys, archs)
        if self._as_rows():
            self._rows.append(_candidate_table.CandidateRows(
                int(step), self.worker, ids, other_keys, texts, vals, start.timestamp(),
                time.time()))
            return
        codec = self._codec if self.trial_params else None
        rows = (codec.to_indices(list(archs)).tolist() if codec is not None
                else [[] for _ in archs])
        attrs = [{"arch": text, "arch_id": aid} if own is None else
                 {"arch": text, "arch_id": aid, "key": own}
                 for text, aid, own in zip(texts, ids, other_keys, strict=True)]
        columns, internal = self._param_columns() if codec is not None else ([], [])
        common: dict[str, Any] = {"step": int(step)}
        if self.worker:
            common["worker"] = self.worker
        self._new.append(_rdb_finished.NewTrials(columns, internal, rows, attrs, vals, start,
                                                 datetime.now(), common))

    def _identities(self, keys: Sequence[Hashable], archs: Sequence[Arch]
                    ) -> tuple[list[str], list[str], list[str | None]]:
        """Per candidate: its arch JSON, its ``arch_id`` and its dedupe key's text where that
        is not the ``arch_id`` (else None: readers take the ``arch_id``)."""
        encoder = self._arch_text()
        texts: list[str] = []
        ids: list[str] = []
        other_keys: list[str | None] = []
        for key, arch in zip(keys, archs, strict=True):
            text, aid = arch_json_and_id(arch, encoder)
            texts.append(text)
            ids.append(aid)
            own = None if key is arch else key_text(key)
            other_keys.append(None if own == aid else own)
        return texts, ids, other_keys

    def _row_keys(self, keys: Sequence[Hashable], archs: Sequence[Arch]
                  ) -> list[bytes] | None:
        """Per candidate, the row key its arch keeps, when every arch has one, is its own
        dedupe key and the study's row format is the space's; else None (store JSON)."""
        text = self._arch_text()
        if text is None or not self._format_agreed(text):
            return None
        row_key = text.row_key
        out = []
        for key, arch in zip(keys, archs, strict=True):
            got = row_key(arch) if key is arch else None
            if got is None:
                return None
            out.append(got)
        return out

    def _format_agreed(self, text: ArchText) -> bool:
        """Whether the study's row format (:data:`~._candidate_table.FORMAT_ATTR`) is the
        space's: stored, or to be stored with the next rows (none stored yet). A study
        whose format is another (written by another version of the space) gets JSON."""
        if self._row_format_ok is None:
            ours = text.row_format
            stored = (self.storage.get_study_user_attrs(self._study_id)
                      .get(_candidate_table.FORMAT_ATTR) if ours is not None else None)
            self._row_format_ok = ours is not None and stored in (None, ours)
            if self._row_format_ok and stored is None:
                self._pending_format = ours
        return self._row_format_ok

    def _as_rows(self) -> bool:
        """Whether candidates are rows of the candidate table (an RDB storage, no trial
        params asked for), not Optuna trials."""
        if self._rows_mode is None:
            self._rows_mode = (not self.trial_params
                               and _rdb_fast.rdb_backend(self.storage) is not None)
        return self._rows_mode

    def _arch_text(self) -> ArchText | None:
        """The space's arch JSON template (None without an index-codec space)."""
        if self._text is None and self._codec is not None:
            self._text = ArchText(self._codec)
        return self._text

    def _param_columns(self) -> tuple[list[tuple[str, str]], list[list[float]]]:
        """``(name, distribution JSON)`` per trial param, and each option's stored value (the
        first choice equal to it, as ``to_internal_repr``)."""
        if self._columns is None:
            self._columns = [(n, distribution_to_json(d)) for n, d in self._dists.items()]
            self._internal = [
                [float(d.to_internal_repr(c)) for c in d.choices]
                for d in self._dists.values() if isinstance(d, CategoricalDistribution)]
        return self._columns, self._internal

    def defer_state(self, step: int, state: Callable[[], dict[str, Any]]) -> bool:
        """Keep round ``step``'s state function for a later write unless ``commit_every``
        seconds have passed since the state was last written; whether it was kept."""
        if time.monotonic() - self._last_write >= self.commit_every:
            return False
        self._unsaved = (step, state)
        return True

    def unsaved_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of the last round whose state was kept unwritten, or None."""
        return None if self._unsaved is None else (self._unsaved[0], self._unsaved[1]())

    def write_new(self, study_attr: tuple[str, Any] | None) -> None:
        """Write the kept candidates and the study user attribute ``study_attr``
        (``(key, value)``): one transaction on an RDB storage."""
        if study_attr is not None:
            self._unsaved = None
            self._last_write = time.monotonic()
        rdb = _rdb_fast.rdb_backend(self.storage)
        if rdb is not None and self._as_rows():
            if self._rows or study_attr is not None:
                fmt = (self._pending_format
                       if any(r.indices is not None for r in self._rows) else None)
                n, first = _candidate_table.insert(rdb, self._study_id, self._rows, study_attr,
                                                   self._next_number,
                                                   create=not self._table_ready,
                                                   row_format=fmt)
                if fmt is not None:
                    self._pending_format = None
                if n:
                    self._table_ready = True
                    self._next_number = first + n
        elif rdb is not None:
            if self._new or study_attr is not None:
                ids, first = _rdb_finished.insert_finished(rdb, self._study_id, self._new, VALUES,
                                                       study_attr, self._next_number)
                if ids:
                    self._next_number = first + len(ids)
        else:
            for new in self._new:
                for t in _templates(new, self._dists):
                    self.storage.create_new_trial(self._study_id, template_trial=t)
            if study_attr is not None:
                self.storage.set_study_user_attr(self._study_id, *study_attr)
        self._new.clear()
        self._rows.clear()


def _templates(new: _rdb_finished.NewTrials, dists: dict[str, BaseDistribution]
               ) -> list[FrozenTrial]:
    """The finished trials of ``new`` for ``create_new_trial(template_trial=...)``."""
    names = [n for n, _ in new.columns]
    choices = [dists[n].choices for n in names]  # type: ignore[attr-defined]
    out = []
    for row, attrs, vals in zip(new.rows, new.user_attrs, new.values.tolist(), strict=True):
        bad = any(x != x for x in vals)
        ua = {**attrs, **new.common_attrs}
        if bad:
            ua[VALUES] = [None if x != x else x for x in vals]
        out.append(FrozenTrial(
            number=0, state=TrialState.FAIL if bad else TrialState.COMPLETE, value=None,
            values=None if bad else vals, datetime_start=new.start,
            datetime_complete=new.complete,
            params={n: c[j] for n, c, j in zip(names, choices, row, strict=True)},
            distributions={n: dists[n] for n in names} if row else {}, user_attrs=ua,
            system_attrs={}, intermediate_values={}, trial_id=0))
    return out
