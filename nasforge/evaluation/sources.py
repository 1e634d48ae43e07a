"""One place where an accuracy spec becomes an objective: ``ACCURACY_SOURCES`` and
:func:`resolve`, used by ``nas search``, ``nas run``, ``nas rank`` and sweeps.

A spec is ``SCHEME`` or ``SCHEME:REST``; the scheme is the registry key:

* ``quick``: the embedded quick supernet (trained on ``digits`` once, cached; ``elastic_lm``
  on the embedded text), then as ``supernet:``; for ``hat_*`` a training-free proxy,
  ``log10(params)`` (:class:`~nasforge.evaluation._lm.CapacityProxy`);
* ``supernet:PATH``: BN-recalibrated top-1 of the inherited subnet, each at its own resolution
  (bare ``supernet`` takes the checkpoint from ``supernet=``, as ``nas rank --supernet`` gives);
  a supernet trained on text scores validation loss instead (nats per token, minimised:
  :class:`~nasforge.evaluation._lm.LMLossObjective`), and ``standalone`` on text likewise;
  with ``EvalSettings.workers > 1`` a Ray actor pool evaluates, and an injected evaluator
  replaces the in-process supernet;
* ``predictor:DIR``: a saved accuracy predictor;
* ``csv:PATH:COLUMN``: a column of a tabular benchmark CSV;
* ``zc:NAME``: a zero-cost proxy of the randomly initialised subnet (:mod:`nasforge.proxies`);
* ``standalone``: each subnet trained from scratch for ``steps`` steps;
* ``report:PATH:a`` (or ``:b``): one side of a saved ``nas rank --json`` report.

:func:`resolve_latency` is the latency side: a registered device's latency model, or a latency
column of the run's benchmark table (:class:`~nasforge.evaluation.TableLatency`).

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201_net")
    >>> obj = resolve("zc:synflow", space, name="accuracy")
    >>> type(obj).__name__, obj.name, obj.metric, obj.batched
    ('ProxyObjective', 'accuracy', 'acc', True)
    >>> try:
    ...     resolve("supernt:runs/sn/last.ckpt", space)
    ... except UnknownSourceError as e:
    ...     print(e)  # doctest: +NORMALIZE_WHITESPACE
    unknown accuracy source 'supernt'; did you mean 'supernet'? Available: csv:PATH:COLUMN,
    predictor:DIR, quick, report:PATH:a|b, standalone, supernet[:PATH], zc:NAME
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.evaluation.base import EvalSettings
from nasforge.evaluation.base import SourceRequest
from nasforge.registry import Registry

if TYPE_CHECKING:
    from nasforge.evaluation._tabular import TabularBenchmark
    from nasforge.evaluation.protocols import AccuracyEvaluator
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import Objective

__all__ = ["ACCURACY_SOURCES", "SOURCE_KINDS", "SourceBuilder", "UnknownSourceError",
           "csv_spec", "map_spec_path", "resolve", "resolve_latency", "source_kind"]

SourceBuilder = Callable[[SourceRequest], AccuracyObjective]

#: how each built-in scheme is written, for messages
_FORMS = {"csv": "csv:PATH:COLUMN", "predictor": "predictor:DIR", "report": "report:PATH:a|b",
          "supernet": "supernet[:PATH]", "zc": "zc:NAME"}
#: The specs ``nas search --accuracy`` and ``nas rank --a/--b`` take.
SOURCE_KINDS = tuple(_FORMS.get(s, s) for s in ("quick", "supernet", "standalone", "csv", "zc",
                                                 "predictor", "report"))


class UnknownSourceError(UnknownNameError, InvalidInputError):
    """An accuracy spec whose scheme is not in ``ACCURACY_SOURCES`` (a bad input as well)."""


class _SourceRegistry(Registry[SourceBuilder]):
    """The registry of accuracy-source builders; an unknown scheme is bad input, and its
    message shows how each scheme is written (a bare proxy name gets its ``zc:`` form)."""

    def get(self, name: str) -> SourceBuilder:
        if name in self:
            return super().get(name)
        raise UnknownSourceError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        head = super().unknown_message(name).split(" Available:")[0]
        from nasforge.proxies import PROXIES

        if name in PROXIES:
            head = f"unknown accuracy source {name!r}; did you mean 'zc:{name}'?"
        forms = ", ".join(_FORMS.get(n, n) for n in self.list())
        return f"{head} Available: {forms}"


#: Builders of accuracy sources, keyed by the spec's scheme.
ACCURACY_SOURCES = _SourceRegistry("accuracy source")


def source_kind(spec: str) -> str:
    """The spec's scheme (``csv`` of ``csv:t.csv:acc``), the key of ``ACCURACY_SOURCES``.

    Example:
        >>> source_kind("csv:t.csv:acc"), source_kind("quick")
        ('csv', 'quick')
    """
    return spec.partition(":")[0]


def resolve(spec: str, space: SearchSpace, *, name: str | None = None, seed: int = 0,
            settings: EvalSettings | None = None, data: str | None = None,
            supernet: str | None = None, steps: int = 100, progress: bool = False,
            table: TabularBenchmark | None = None, evaluator: AccuracyEvaluator | None = None,
            checkpoint_seed: bool = False) -> AccuracyObjective:
    """The accuracy source named ``spec`` (see the module docstring for the schemes).

    Args:
        spec: the accuracy spec.
        space: the search space.
        name: the objective's name (default: ``spec``).
        seed: seed of initialisation, proxy batches, data order and BN recalibration.
        settings: the evaluation knobs (default :class:`EvalSettings`).
        data: dataset spec of ``standalone`` and of data proxies (default: the supernet's).
        supernet: checkpoint (or ``quick``) of a bare ``supernet`` and whose data
            ``standalone`` reuses.
        steps: stand-alone training steps.
        progress: show progress bars (the quick supernet's training, stand-alone training).
        table: the benchmark of a ``csv:`` spec, already read (shared with a latency column).
        evaluator: an evaluator replacing an in-process supernet (``supernet``, ``quick``).
        checkpoint_seed: recalibrate BN with the checkpoint's seed instead of ``seed``.

    Raises:
        UnknownSourceError: an unknown scheme (with the closest one).
        InvalidInputError: a spec without what it needs (the rule and the spec).
        IncompatibleComponentsError: a tabular space given a network source.
    """
    scheme, sep, rest = spec.partition(":")
    builder = ACCURACY_SOURCES.get(scheme)
    req = SourceRequest(spec, scheme, rest if sep else None, space, name or spec, seed,
                        settings or EvalSettings(), data, supernet, steps, progress, table,
                        evaluator, checkpoint_seed)
    return builder(req)


def resolve_latency(device: str, *, table: TabularBenchmark | None = None,
                    upper: float | None = None, name: str | None = None,
                    space: SearchSpace | None = None) -> Objective:
    """The latency source of ``device``: a latency column of ``table`` (``pixel3_ms``, when a
    benchmark is given), else the registered device's latency model. For a language-model
    ``space`` (modality ``text``), ``cpu-local[:measure]`` is that space's profile
    (``cpu-local-<space>``: decode ms per token, or ``:prefill``), measured here on first use.

    Raises:
        UnknownNameError: an unknown device (with the closest one).
        InvalidInputError: the table lacks the column (with the closest one).
    """
    from nasforge.evaluation._tabular import TableLatency
    from nasforge.evaluation._tabular import is_latency_column

    if table is not None and is_latency_column(device):
        return TableLatency(table, device, upper=upper, name=name)
    from nasforge.hardware_models import get_device
    from nasforge.hardware_models._lm_latency import local_lm_device
    from nasforge.strategies.objectives import LatencyObjective

    if space is not None and space.modality == "text":
        local = local_lm_device(device, space.name)
        if local != device:  # cpu-local: measured once on first use, then cached
            from nasforge.hardware_models.profiling._lm import ensure_lm_profile

            ensure_lm_profile(space)
        device = local
    return LatencyObjective(get_device(device), upper=upper, name=name)


def csv_spec(spec: str) -> tuple[str, str]:
    """``(PATH, COLUMN)`` of ``csv:PATH:COLUMN`` (PATH may hold ``:``).

    Raises:
        InvalidInputError: not of that form.
    """
    path, sep, column = spec.partition(":")[2].rpartition(":")
    if not spec.startswith("csv:") or not sep or not path or not column:
        raise InvalidInputError(f"a benchmark source is csv:PATH:COLUMN, got {spec!r}")
    return path, column


def map_spec_path(spec: str, fix: Callable[[str], str]) -> str:
    """``spec`` with its file path mapped through ``fix`` (``supernet:``, ``predictor:``,
    ``csv:``, ``report:``); other specs unchanged.

    Example:
        >>> map_spec_path("csv:t.csv:acc", lambda p: "/d/" + p), map_spec_path("quick", str)
        ('csv:/d/t.csv:acc', 'quick')
    """
    scheme, sep, rest = spec.partition(":")
    if not sep or not rest:
        return spec
    if scheme in ("supernet", "predictor"):
        return f"{scheme}:{fix(rest)}"
    if scheme in ("csv", "report"):
        path, colon, tail = rest.rpartition(":")
        return f"{scheme}:{fix(path)}:{tail}" if colon and path else spec
    return spec


def _needs_network(req: SourceRequest) -> None:
    if not req.space.has_model:
        raise IncompatibleComponentsError(
            f"accuracy source {req.spec!r} needs a network, but space {req.space.name!r} is "
            "tabular; use csv:PATH:COLUMN (--benchmark CSV --metric COL) or predictor:DIR "
            "(--predictor), or a network space")


def _no_argument(req: SourceRequest) -> None:
    if req.rest is not None:
        raise InvalidInputError(f"accuracy source {req.scheme!r} takes no argument, got "
                                f"{req.spec!r}; write {req.scheme}")


@ACCURACY_SOURCES.register("quick")
def _quick(req: SourceRequest) -> AccuracyObjective:
    from nasforge.search_spaces._hat import HATSpace

    _no_argument(req)
    if isinstance(req.space, HATSpace):  # a SuperTransformer is too large to train here
        from nasforge.evaluation._lm import CapacityProxy

        return CapacityProxy(req.space, name=req.name)
    return _supernet_source(req, None)


@ACCURACY_SOURCES.register("supernet")
def _supernet(req: SourceRequest) -> AccuracyObjective:
    path = req.rest if req.rest is not None else req.supernet
    if not path:
        raise InvalidInputError("source 'supernet' needs --supernet CKPT (or --supernet quick "
                                "for the embedded quick supernet)")
    return _supernet_source(req, None if path == "quick" else Path(path))


def _supernet_source(req: SourceRequest, ckpt: Path | None) -> AccuracyObjective:
    from nasforge.evaluation._checkpoints import quick_checkpoint
    from nasforge.evaluation._evaluator import EvaluatorAccuracy

    _needs_network(req)
    if req.evaluator is not None:  # e.g. the caller's Ray actor pool
        return EvaluatorAccuracy(req.evaluator, name=req.name)
    path = ckpt if ckpt is not None else quick_checkpoint(req.space, req.settings,
                                                          req.progress)
    s = req.settings
    if s.workers > 1:
        from nasforge.evaluation.pool import SupernetActorPool

        seed: dict[str, Any] = {} if req.checkpoint_seed else {"seed": req.seed}
        pool = SupernetActorPool.from_checkpoint(path, workers=s.workers,
                                                 recal_batches=s.recal_batches,
                                                 batch_size=s.batch_size, **seed)
        return EvaluatorAccuracy(pool, name=req.name, owned=True)
    from nasforge.evaluation._supernet import SupernetAccuracyObjective
    from nasforge.supernet import load_supernet
    from nasforge.supernet.checkpoint import RunConfig

    model, state = load_supernet(path, expect_space=req.space.name)
    run = RunConfig.from_checkpoint(state)  # data, size, resolution scale, seed
    data = run.open_data()
    if data.task != "image":  # a language model: validation loss, lower is better
        from nasforge.evaluation._lm import LMLossObjective

        return LMLossObjective(model, data, batch_size=min(s.batch_size, 32),
                               device=s.device(), checkpoint=path, name=req.name)
    return SupernetAccuracyObjective(model, data, recal_batches=s.recal_batches,
                                     batch_size=s.batch_size,
                                     seed=run.seed if req.checkpoint_seed else req.seed,
                                     device=s.device(), checkpoint=path, name=req.name)


@ACCURACY_SOURCES.register("standalone")
def _standalone(req: SourceRequest) -> AccuracyObjective:
    from nasforge.data import open_data
    from nasforge.evaluation._checkpoints import data_of
    from nasforge.evaluation._standalone import StandaloneAccuracy

    _no_argument(req)
    _needs_network(req)
    own, size, scale = data_of(req.supernet, req.space)
    if req.data is None and own is None:
        raise InvalidInputError("source 'standalone' trains on --data; pass --data (e.g. "
                                "--data mnist5k) or a --supernet whose data it reuses")
    d = open_data(str(req.data or own), size, req.seed, resolution_scale=scale)
    if d.task != "image":  # a language model: stand-alone validation loss
        from nasforge.evaluation._lm import LMStandaloneLoss

        return LMStandaloneLoss(req.space, d, steps=req.steps, seed=req.seed,
                                device=req.settings.device(), name=req.name,
                                progress=req.progress)
    return StandaloneAccuracy(req.space, d, steps=req.steps, seed=req.seed,
                              device=req.settings.device(), name=req.name,
                              progress=req.progress)


@ACCURACY_SOURCES.register("zc")
def _proxy(req: SourceRequest) -> AccuracyObjective:
    from nasforge.evaluation._checkpoints import data_of
    from nasforge.evaluation._proxy import ProxyObjective

    return ProxyObjective.from_name(req.spec, req.space, seed=req.seed,
                                    data=req.data or data_of(req.supernet)[0], name=req.name)


@ACCURACY_SOURCES.register("csv")
def _csv(req: SourceRequest) -> AccuracyObjective:
    from nasforge.evaluation._tabular import TabularBenchmark

    path, column = csv_spec(req.spec)
    if req.table is not None:  # read (and checked) once by the run, shared with latency
        return req.table.column(column, direction="maximize", cheap=False, name=req.name)
    return TabularBenchmark.from_csv(path, column, req.space, direction="maximize",
                                     cheap=False, name=req.name)


@ACCURACY_SOURCES.register("predictor")
def _predictor(req: SourceRequest) -> AccuracyObjective:
    from nasforge.evaluation._predictor import PredictorObjective
    from nasforge.predictors import BasePredictor

    if not req.rest:
        raise InvalidInputError(f"a predictor source is predictor:DIR, got {req.spec!r}")
    return PredictorObjective(BasePredictor.load(req.rest), req.space, name=req.name,
                              source=req.rest)


@ACCURACY_SOURCES.register("report")
def _report(req: SourceRequest) -> AccuracyObjective:
    from nasforge.evaluation._report import ReportColumn

    path, sep, side = (req.rest or "").rpartition(":")
    if not sep or side not in ("a", "b") or not Path(path).is_file():
        raise InvalidInputError(f"a report source is report:PATH:a or report:PATH:b with PATH a "
                                f"nas rank --json file, got {req.spec!r}")
    return ReportColumn(req.name, Path(path), side)
