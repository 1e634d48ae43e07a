"""Where a search persists: an Optuna study in any Optuna storage, split by job as Optuna's
``storages/`` is.

* :mod:`~nasforge.strategies.storage.url`: :class:`StorageURL`, the one parser of a storage
  URL (label, dashboard command, the default ``OUT/search.db``, opening the storage);
* :mod:`~nasforge.strategies.storage.study`: :class:`SearchStudy`, the study's settings,
  creating or loading it, reading it back;
* :mod:`~nasforge.strategies.storage._outside`: a study read (:func:`read_study`) or its
  single writer's rows turned into trials (:func:`write_trials`) from outside a search;
* :mod:`~nasforge.strategies.storage.claims`: the claims protocol that lets several workers
  share one study (exact budget, each arch once, dead processes' claims released);
* :mod:`~nasforge.strategies.storage._single`: a study's single writer, its rounds written in
  one transaction, without claims, as rows of nasforge's candidate table
  (:mod:`~nasforge.strategies.storage._candidate_table`) on an RDB storage, else as finished
  trials;
* :mod:`~nasforge.strategies.storage._rdb_fast`: the same claims in one transaction on an RDB
  storage, on Optuna's private names, behind one Optuna version check.
"""

from __future__ import annotations

from nasforge.strategies.storage._outside import read_study
from nasforge.strategies.storage._outside import write_trials
from nasforge.strategies.storage.claims import Claim
from nasforge.strategies.storage.study import SearchStudy
from nasforge.strategies.storage.study import StoredCandidate
from nasforge.strategies.storage.url import StorageURL
from nasforge.strategies.storage.url import open_storage
from nasforge.strategies.storage.url import route_optuna_logs

__all__ = [
    "Claim",
    "SearchStudy",
    "StorageURL",
    "StoredCandidate",
    "open_storage",
    "read_study",
    "route_optuna_logs",
    "write_trials",
]
