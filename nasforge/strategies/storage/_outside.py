"""A search's study read or converted from outside the search: :func:`read_study` (settings and
candidates, for reports) and :func:`write_trials` (a single writer's candidate rows as Optuna
trials, for Optuna's tools)."""

from __future__ import annotations

from typing import Any

from optuna.storages import BaseStorage

from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.strategies.storage import _candidate_table
from nasforge.strategies.storage import _rdb_fast
from nasforge.strategies.storage._errors import translate
from nasforge.strategies.storage.claims import VALUES
from nasforge.strategies.storage.claims import is_candidate
from nasforge.strategies.storage.claims import process_dead
from nasforge.strategies.storage.claims import values_of
from nasforge.strategies.storage.study import EXCLUSIVE
from nasforge.strategies.storage.study import META
from nasforge.strategies.storage.url import StorageURL
from nasforge.strategies.storage.url import open_storage

__all__ = ["read_study", "write_trials"]


def read_study(url: StorageURL | str, study_name: str | None = None
               ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """A search's study read back: its name, its settings and its candidates in trial-number
    order (each ``arch_id``, ``arch`` JSON, ``step``, ``values`` in objective order).

    Args:
        url: the storage (see :class:`~nasforge.strategies.storage.url.StorageURL`).
        study_name: the study; None picks the storage's only nasforge study.

    Raises:
        InvalidInputError: the storage cannot be opened, the study does not exist or is not
            a nasforge search, or several nasforge studies and no ``study_name``.
    """
    storage, label = open_storage(url)
    try:
        return _read_study(storage, label, study_name)
    except NasforgeError:
        raise
    except Exception as exc:
        err = translate(label, StorageURL.parse(url).path, exc)
        if err is None:
            raise
        raise err from exc


def _read_study(storage: BaseStorage, label: str, study_name: str | None
                ) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    studies = {s.study_name: s for s in storage.get_all_studies()}
    ours = sorted(n for n, s in studies.items() if META in s.user_attrs)
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
    got = [(t.number, {"arch_id": t.user_attrs["arch_id"], "arch": t.user_attrs["arch"],
                       "step": int(t.user_attrs["step"]), "values": values_of(t)})
           for t in storage.get_all_trials(study_id, deepcopy=False) if is_candidate(t)]
    rdb = _rdb_fast.rdb_backend(storage)
    if rdb is not None:
        got += [(r.number, {"arch_id": r.arch_id, "arch": r.arch, "step": r.step,
                            "values": r.values}) for r in _candidate_table.read(rdb, study_id)]
    rows = [row for _, row in sorted(got, key=lambda g: g[0])]
    return study_name, dict(studies[study_name].user_attrs[META]), rows


def write_trials(url: StorageURL | str, study_name: str) -> int:
    """Turn the study's single-writer candidate rows into Optuna trials, so that Optuna's
    tools (``optuna.load_study``, optuna-dashboard) see every candidate; how many rows were
    turned (0 on a storage other than an RDB one, where candidates are always trials).

    A single writer on an RDB storage keeps its candidates as rows of nasforge's table
    (:mod:`~nasforge.strategies.storage._candidate_table`); claims workers joining the study
    do this themselves. It is refused while the single writer runs (its next rows are
    numbered after the rows it knows of).

    Raises:
        InvalidInputError: the storage cannot be opened (a file that does not exist is not
            created), holds no study ``study_name``, or a single writer still writes it.
    """
    parsed = StorageURL.parse(url)
    if parsed.path is not None and not parsed.path.is_file():
        raise InvalidInputError(f"storage {parsed.label!r}: no such file")
    storage, label = open_storage(parsed)
    try:
        study_id = storage.get_study_id_from_name(study_name)
    except KeyError:
        raise InvalidInputError(f"storage {label!r} has no study {study_name!r}") from None
    holder = storage.get_study_user_attrs(study_id).get(EXCLUSIVE)
    if holder and not process_dead(holder):
        raise InvalidInputError(
            f"study {study_name!r} in {label!r} is being written by a single-worker search "
            f"(process {holder}); turn its rows into trials once it has ended")
    rdb = _rdb_fast.rdb_backend(storage)
    return 0 if rdb is None else _candidate_table.to_trials(rdb, study_id, VALUES)
