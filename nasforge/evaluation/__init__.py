"""Accuracy sources: where the number a search maximises comes from.

One registry, ``ACCURACY_SOURCES``, keyed by a spec's scheme (``quick``, ``supernet:PATH``,
``predictor:DIR``, ``csv:PATH:COLUMN``, ``zc:NAME``, ``standalone``, ``report:PATH:a|b``), and
one :func:`resolve` that ``nas search``, ``nas run``, ``nas rank`` and sweeps call; each source
is an :class:`AccuracyObjective` (:mod:`.base`). The knobs of expensive evaluation travel as one
:class:`EvalSettings`. One module per source: :class:`SupernetAccuracyObjective`,
:class:`StandaloneAccuracy` (with its training loop), :class:`TabularBenchmark` (and
:class:`TableLatency`, a benchmark's latency column as the latency source),
:class:`PredictorObjective`, :class:`ProxyObjective`, :class:`ReportColumn`,
:class:`EvaluatorAccuracy`; :class:`SupernetActorPool` evaluates on Ray actors.

The names load their modules on first use (PEP 562), so that an experiment config can hold
an :class:`EvalSettings` (:mod:`.settings`) without importing torch.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> sorted(ACCURACY_SOURCES)
    ['csv', 'predictor', 'quick', 'report', 'standalone', 'supernet', 'zc']
    >>> resolve("zc:synflow", get_space("nasbench201_net")).name
    'zc:synflow'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_exports

if TYPE_CHECKING:
    from nasforge.evaluation._benchmark_csv import read_benchmark
    from nasforge.evaluation._evaluator import EvaluatorAccuracy
    from nasforge.evaluation._predictor import PredictorObjective
    from nasforge.evaluation._proxy import PROXY_PREFIX
    from nasforge.evaluation._proxy import ProxyObjective
    from nasforge.evaluation._report import ReportColumn
    from nasforge.evaluation._standalone import StandaloneAccuracy
    from nasforge.evaluation._standalone import train_standalone
    from nasforge.evaluation._supernet import SupernetAccuracyObjective
    from nasforge.evaluation._tabular import TableLatency
    from nasforge.evaluation._tabular import TabularBenchmark
    from nasforge.evaluation._tabular import is_latency_column
    from nasforge.evaluation.base import AccuracyObjective
    from nasforge.evaluation.base import SourceRequest
    from nasforge.evaluation.pool import SupernetActorPool
    from nasforge.evaluation.protocols import AccuracyEvaluator
    from nasforge.evaluation.settings import EvalSettings
    from nasforge.evaluation.sources import ACCURACY_SOURCES
    from nasforge.evaluation.sources import SOURCE_KINDS
    from nasforge.evaluation.sources import UnknownSourceError
    from nasforge.evaluation.sources import csv_spec
    from nasforge.evaluation.sources import resolve
    from nasforge.evaluation.sources import resolve_latency
    from nasforge.evaluation.sources import source_kind

#: public name -> the submodule defining it
_SOURCES = {
    "ACCURACY_SOURCES": "sources",
    "AccuracyEvaluator": "protocols",
    "AccuracyObjective": "base",
    "EvalSettings": "settings",
    "EvaluatorAccuracy": "_evaluator",
    "PROXY_PREFIX": "_proxy",
    "PredictorObjective": "_predictor",
    "ProxyObjective": "_proxy",
    "ReportColumn": "_report",
    "SOURCE_KINDS": "sources",
    "SourceRequest": "base",
    "StandaloneAccuracy": "_standalone",
    "SupernetAccuracyObjective": "_supernet",
    "SupernetActorPool": "pool",
    "TableLatency": "_tabular",
    "TabularBenchmark": "_tabular",
    "UnknownSourceError": "sources",
    "csv_spec": "sources",
    "is_latency_column": "_tabular",
    "read_benchmark": "_benchmark_csv",
    "resolve": "sources",
    "resolve_latency": "sources",
    "source_kind": "sources",
    "train_standalone": "_standalone",
}

__all__ = [
    "ACCURACY_SOURCES",
    "PROXY_PREFIX",
    "SOURCE_KINDS",
    "AccuracyEvaluator",
    "AccuracyObjective",
    "EvalSettings",
    "EvaluatorAccuracy",
    "PredictorObjective",
    "ProxyObjective",
    "ReportColumn",
    "SourceRequest",
    "StandaloneAccuracy",
    "SupernetAccuracyObjective",
    "SupernetActorPool",
    "TableLatency",
    "TabularBenchmark",
    "UnknownSourceError",
    "csv_spec",
    "is_latency_column",
    "read_benchmark",
    "resolve",
    "resolve_latency",
    "source_kind",
    "train_standalone",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
