"""Persistence of a search: every evaluated candidate and the strategy state per step.

One SQLite file (stdlib :mod:`sqlite3`) can hold several studies. Tables:

* ``studies(study, meta_json)`` — strategy, space, objectives (names, directions, bounds),
  seed, so that a resume with other settings is refused;
* ``candidates(study, seq, arch_id, arch_json, values_json, step)`` — one row per evaluated
  candidate, written (and committed) as soon as it is evaluated; primary key ``(study, arch_id)``;
* ``steps(study, step, state_json)`` — the strategy state (generation, population, RNG state,
  ...) after the ask/tell round ``step`` completed.

A killed search therefore loses no evaluated candidate: on resume the strategy is restored to
the last completed step, and the candidates of the interrupted step are served from the table
when the strategy proposes them again (a deterministic strategy proposes the same ones).

Optuna's own RDB storage plays this role for the ``optuna`` strategy.

The driver (:func:`~nasforge.strategies.run_search`) sees a storage only through
:class:`BaseStorage`'s five methods, so another backend (an Optuna RDB storage, a journal file)
fills the same seam.
"""

from __future__ import annotations

import abc
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["BaseStorage", "SQLiteStorage", "StoredCandidate"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS studies (study TEXT PRIMARY KEY, meta_json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS candidates (
    study TEXT NOT NULL, seq INTEGER NOT NULL, arch_id TEXT NOT NULL, arch_json TEXT NOT NULL,
    values_json TEXT NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (study, arch_id));
CREATE INDEX IF NOT EXISTS candidates_seq ON candidates (study, seq);
CREATE TABLE IF NOT EXISTS steps (
    study TEXT NOT NULL, step INTEGER NOT NULL, state_json TEXT NOT NULL,
    PRIMARY KEY (study, step));
"""


class StoredCandidate:
    """One row of the ``candidates`` table.

    Attributes:
        seq: evaluation order (0-based).
        arch_id: the arch's id (or the dedupe key the driver used).
        arch: the architecture as a plain dict.
        values: objective values in the study's column order.
        step: the ask/tell round that evaluated it.
    """

    __slots__ = ("arch", "arch_id", "seq", "step", "values")

    def __init__(self, seq: int, arch_id: str, arch: dict[str, Any], values: list[float],
                 step: int) -> None:
        self.seq, self.arch_id, self.arch, self.values, self.step = seq, arch_id, arch, values, step


def _dumps_values(values: np.ndarray) -> str:
    # NaN / inf are not JSON; store them as null / strings and read them back
    out: list[Any] = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        out.append(None if v != v else ("inf" if v == float("inf") else
                                        "-inf" if v == float("-inf") else v))
    return json.dumps(out)


def _loads_values(text: str) -> list[float]:
    return [float("nan") if v is None else float(v) for v in json.loads(text)]


class BaseStorage(abc.ABC):
    """Where a search persists its study (see the module docstring).

    Call protocol (what :func:`~nasforge.strategies.run_search` does): ``init_study(meta)``
    once; on resume ``candidates()`` and ``last_state()``; then per ask/tell round
    ``add_candidates`` after each evaluated chunk (committed before it returns, so a kill loses
    nothing evaluated) and ``save_state`` once the round is told.
    """

    @abc.abstractmethod
    def init_study(self, meta: dict[str, Any]) -> None:
        """Create the study, or check that ``meta`` matches the stored one.

        Raises:
            IncompatibleComponentsError: the stored study has other settings.
        """

    @abc.abstractmethod
    def candidates(self) -> list[StoredCandidate]:
        """Every stored candidate of the study, in evaluation order."""

    @abc.abstractmethod
    def add_candidates(self, keys: Sequence[str], archs: Sequence[Arch], values: np.ndarray,
                       step: int) -> None:
        """Store evaluated candidates of round ``step``: ``values`` has shape
        (len(archs), len(objectives))."""

    @abc.abstractmethod
    def save_state(self, step: int, state: dict[str, Any]) -> None:
        """Store the strategy state after round ``step``."""

    @abc.abstractmethod
    def last_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of the last completed round, or None."""


class SQLiteStorage(BaseStorage):
    """A study table in one SQLite file.

    Args:
        path: the database file (created with its parent folder).
        study: the study name (several studies may share a file).

    Raises:
        InvalidInputError: the file exists but is not a SQLite database.
    """

    def __init__(self, path: str | Path, study: str = "default") -> None:
        self.path = Path(path)
        self.study = study
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(str(self.path), timeout=30.0)
            self._con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InvalidInputError(
                f"search storage {str(self.path)!r} is not a nasforge SQLite database ({exc}); "
                "give a new file name"
            ) from None
        self._seq = self.count()

    # ---- meta ----------------------------------------------------------------------------
    def meta(self) -> dict[str, Any] | None:
        """The study's metadata, or None for a new study."""
        row = self._con.execute("SELECT meta_json FROM studies WHERE study = ?",
                                (self.study,)).fetchone()
        return None if row is None else json.loads(row[0])

    def init_study(self, meta: dict[str, Any]) -> None:
        """Create the study, or check that ``meta`` matches the stored one.

        Raises:
            IncompatibleComponentsError: the stored study has other settings (the message names
                the differing fields).
        """
        old = self.meta()
        if old is None:
            with self._con:
                self._con.execute("INSERT INTO studies VALUES (?, ?)",
                                  (self.study, json.dumps(meta, sort_keys=True)))
            return
        fresh = json.loads(json.dumps(meta, sort_keys=True))
        diff = sorted(k for k in set(old) | set(fresh) if old.get(k) != fresh.get(k))
        if diff:
            raise IncompatibleComponentsError(
                f"study {self.study!r} in {str(self.path)!r} was run with other settings "
                f"({', '.join(diff)} differ: stored {[old.get(k) for k in diff]}, now "
                f"{[fresh.get(k) for k in diff]}); resume with the same settings or use a new "
                "study name"
            )

    # ---- candidates ------------------------------------------------------------------------
    def count(self) -> int:
        """Number of stored candidates of the study."""
        row = self._con.execute("SELECT COUNT(*) FROM candidates WHERE study = ?",
                                (self.study,)).fetchone()
        return int(row[0])

    def add_candidates(self, keys: Sequence[str], archs: Sequence[Arch], values: np.ndarray,
                       step: int) -> None:
        """Store evaluated candidates (one transaction, committed before returning)."""
        rows = []
        for k, a, v in zip(keys, archs, np.atleast_2d(values), strict=True):
            rows.append((self.study, self._seq, k, a.to_json(), _dumps_values(v), step))
            self._seq += 1
        with self._con:
            self._con.executemany(
                "INSERT OR REPLACE INTO candidates VALUES (?, ?, ?, ?, ?, ?)", rows)

    def candidates(self) -> list[StoredCandidate]:
        """Every stored candidate of the study, in evaluation order."""
        cur = self._con.execute(
            "SELECT seq, arch_id, arch_json, values_json, step FROM candidates WHERE study = ? "
            "ORDER BY seq", (self.study,))
        return [StoredCandidate(int(s), k, json.loads(a), _loads_values(v), int(st))
                for s, k, a, v, st in cur.fetchall()]

    # ---- strategy states -------------------------------------------------------------------
    def save_state(self, step: int, state: dict[str, Any]) -> None:
        """Store the strategy state after round ``step``."""
        with self._con:
            self._con.execute("INSERT OR REPLACE INTO steps VALUES (?, ?, ?)",
                              (self.study, step, json.dumps(state)))

    def last_state(self) -> tuple[int, dict[str, Any]] | None:
        """``(step, state)`` of the last completed round, or None."""
        row = self._con.execute(
            "SELECT step, state_json FROM steps WHERE study = ? ORDER BY step DESC LIMIT 1",
            (self.study,)).fetchone()
        return None if row is None else (int(row[0]), json.loads(row[1]))

    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __repr__(self) -> str:
        return f"SQLiteStorage(path={str(self.path)!r}, study={self.study!r})"
