"""Experiment configuration: one YAML file reproduces what the ``nas search`` flags do.

An experiment file holds ``search_space`` (and optionally ``space_options``, restricting a
choice of the space: ``{resolutions: [160, 176, 192, 208, 224]}``), ``device``, one
``accuracy:`` spec (what
:func:`nasforge.evaluation.resolve` takes: ``quick``, ``supernet:PATH``, ``predictor:DIR``,
``csv:PATH:COLUMN``, ``zc:NAME``, ``standalone``, ``report:PATH:a|b``; none means the embedded
quick supernet), ``strategy`` (a name, or a mapping with ``name`` and the strategy's settings),
``constraints``, ``budget``, ``seed``, ``storage``, ``out`` and the evaluation knobs
(``evaluation:``, or the older top-level ``workers`` and ``accelerator``). The older accuracy
keys keep working and map onto the spec: ``supernet: PATH``, ``predictor: DIR``,
``benchmark: {path, metric}``. Loading validates every field and names its path in the error
(``strategy.population: must be an integer >= 1, got 'many'``).

Example:
    >>> cfg = ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
    ...                                   "constraints": {"latency_ms": 25}, "budget": 50})
    >>> cfg.strategy.name, cfg.constraints.latency_ms, cfg.accuracy_source()
    ('evolution', 25.0, 'quick-supernet')
    >>> old = ExperimentConfig.from_dict({"search_space": "nasbench201", "device": "pixel3_ms",
    ...                                   "benchmark": {"path": "t.csv", "metric": "acc"}})
    >>> old.accuracy.source, old.accuracy_source()
    ('csv:t.csv:acc', 'benchmark')
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError
from nasforge.errors import IncompatibleComponentsError
from nasforge.evaluation.settings import ACCELERATORS
from nasforge.evaluation.settings import MAX_WORKERS
from nasforge.evaluation.settings import EvalSettings
from nasforge.search_spaces.io import parse_text
from nasforge.search_spaces.io import read_text

__all__ = [
    "AccuracySource",
    "ConfigError",
    "Constraints",
    "ExperimentConfig",
    "StrategyConfig",
    "load_experiment",
]


def _err(path: str, problem: str, source: str = "") -> ConfigError:
    return ConfigError(path, problem, source)


def _check_keys(data: dict[str, Any], allowed: set[str], path: str, source: str) -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            fields = ", ".join(sorted(allowed))
            raise _err(f"{path}{key}", f"unknown field{hint} (fields: {fields})", source)


def _int(v: Any, path: str, source: str, low: int | None = None, high: int | None = None
         ) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or (low is not None and v < low):
        rule = f"an integer >= {low}" if low is not None else "an integer"
        raise _err(path, f"must be {rule}, got {v!r}", source)
    if high is not None and v > high:
        raise _err(path, f"must be an integer <= {high}, got {v!r}", source)
    return v


def _num(v: Any, path: str, source: str, positive: bool = True) -> float:
    finite = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)
    if not finite or (positive and v <= 0):
        raise _err(path, f"must be a {'positive ' if positive else ''}number, got {v!r}", source)
    return float(v)


#: largest budget (distinct evaluations) and seed a run accepts
MAX_BUDGET = 10 ** 9
MAX_SEED = 2 ** 63 - 1


def _commit_every(v: Any, path: str, source: str) -> float:
    if (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)
            or not 0 <= v <= MAX_COMMIT_EVERY):
        raise _err(path, f"must be a number of seconds in 0..{MAX_COMMIT_EVERY:g}, got {v!r}",
                   source)
    return float(v)


def _str(v: Any, path: str, source: str) -> str:
    if not isinstance(v, str) or not v:
        raise _err(path, f"must be a non-empty string, got {v!r}", source)
    return v


@dataclass(frozen=True)
class Constraints:
    """Upper bounds a result must satisfy (None: unconstrained)."""

    latency_ms: float | None = None
    mflops: float | None = None
    params_m: float | None = None

    def __post_init__(self) -> None:
        for name, flag in (("latency_ms", "--latency"), ("mflops", "--flops"),
                           ("params_m", "--params")):
            v = getattr(self, name)
            if v is not None:
                _num(v, f"constraints.{name} ({flag})", "")

    @staticmethod
    def from_dict(data: Any, source: str = "", path: str = "constraints") -> Constraints:
        if data is None:
            return Constraints()
        if not isinstance(data, dict):
            raise _err(path, f"must be a mapping (latency_ms, mflops, params_m), got {data!r}",
                       source)
        _check_keys(data, {"latency_ms", "mflops", "params_m"}, f"{path}.", source)
        return Constraints(**{k: _num(v, f"{path}.{k}", source) for k, v in data.items()
                              if v is not None})


@dataclass(frozen=True)
class StrategyConfig:
    """A strategy name (resolved through the strategy registry) and its settings."""

    name: str = "evolution"
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def from_any(data: Any, source: str = "", path: str = "strategy") -> StrategyConfig:
        if data is None:
            return StrategyConfig()
        if isinstance(data, str):
            return StrategyConfig(name=data)
        if not isinstance(data, dict) or "name" not in data:
            raise _err(path, f"must be a strategy name or a mapping with `name`, got {data!r}",
                       source)
        settings = {k: v for k, v in data.items() if k != "name"}
        return StrategyConfig(name=_str(data["name"], f"{path}.name", source), settings=settings)

    def __post_init__(self) -> None:
        for key, value in self.settings.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise _err(f"strategy.{key} (--strategy-opt {key}=...)",
                           f"must be a finite number, got {value!r}")


#: the kinds of accuracy source a run records (its study's ``accuracy`` meta), by scheme
_KINDS = {"zc": "proxy", "csv": "benchmark", "predictor": "predictor", "supernet": "supernet",
          "quick": "quick-supernet"}


@dataclass(frozen=True)
class AccuracySource:
    """The accuracy spec of a run (``quick``, ``supernet:PATH``, ``csv:PATH:COLUMN``,
    ``zc:synflow``, ...; what :func:`nasforge.evaluation.resolve` takes) and the dataset of a
    data proxy or of stand-alone training (``accuracy: {source: zc:snip, data: digits}``).
    """

    source: str = "quick"
    data: str | None = None

    @staticmethod
    def from_any(data: Any, source: str = "", path: str = "accuracy") -> AccuracySource:
        if isinstance(data, str):
            return AccuracySource(_str(data, path, source))
        if not isinstance(data, dict) or "source" not in data:
            raise _err(path, f"must be an accuracy spec (zc:synflow, supernet:PATH, ...) or a "
                       f"mapping with `source` and `data`, got {data!r}", source)
        _check_keys(data, {"source", "data"}, f"{path}.", source)
        spec = None if data.get("data") is None else _str(data["data"], f"{path}.data", source)
        return AccuracySource(_str(data["source"], f"{path}.source", source), spec)

    @property
    def kind(self) -> str:
        """The spec's scheme (``csv``, ``zc``, ``supernet``, ``quick``, ...)."""
        return self.source.partition(":")[0]

    def with_paths(self, fix: Callable[[str], str]) -> AccuracySource:
        """The same source with its file path mapped through ``fix`` (sweeps make relative
        paths absolute); a spec without a path is returned as is."""
        from nasforge.evaluation.sources import map_spec_path

        spec = map_spec_path(self.source, fix)
        return self if spec == self.source else dataclasses.replace(self, source=spec)

    def to_yaml(self) -> str | dict[str, str]:
        """The YAML form: the spec, or a mapping when a dataset is given."""
        return self.source if self.data is None else {"source": self.source, "data": self.data}


def _old_accuracy_keys(data: dict[str, Any], source: str) -> dict[str, str]:
    """The older accuracy keys of ``data``, each as a spec (``supernet: P`` -> ``supernet:P``)."""
    specs: dict[str, str] = {}
    if data.get("supernet") is not None:
        sn = _str(data["supernet"], "supernet", source)
        specs["supernet"] = "quick" if sn == "quick" else f"supernet:{sn}"
    if data.get("predictor") is not None:
        specs["predictor"] = f"predictor:{_str(data['predictor'], 'predictor', source)}"
    bench = data.get("benchmark")
    if bench is not None:
        if not isinstance(bench, dict):
            raise _err("benchmark", f"must be a mapping with `path` and `metric`, got {bench!r}",
                       source)
        _check_keys(bench, {"path", "metric"}, "benchmark.", source)
        for k in ("path", "metric"):
            if k not in bench:
                raise _err(f"benchmark.{k}", "is required", source)
        specs["benchmark"] = (f"csv:{_str(bench['path'], 'benchmark.path', source)}:"
                              f"{_str(bench['metric'], 'benchmark.metric', source)}")
    return specs


def accuracy_of(specs: dict[str, AccuracySource | None], source: str = "") -> AccuracySource:
    """The one accuracy source among ``specs`` (flag or YAML key -> source, None when not
    given); none gives the quick supernet.

    Raises:
        IncompatibleComponentsError: more than one given (``quick`` does not count).
    """
    given = {k: v for k, v in specs.items() if v is not None}
    named = [k for k, v in given.items() if v.source != "quick"]
    if len(named) > 1:
        where = f"{source}: " if source else ""
        raise IncompatibleComponentsError(
            f"{where}one accuracy source at a time, but got {' and '.join(named)}; drop all "
            "but one")
    return next((given[k] for k in named), AccuracySource())


def _eval_settings(data: dict[str, Any], source: str) -> EvalSettings:
    """``evaluation:`` and the older top-level ``workers`` / ``accelerator``."""
    kw: dict[str, Any] = {}
    ev = data.get("evaluation")
    if ev is not None:
        if not isinstance(ev, dict):
            raise _err("evaluation", f"must be a mapping ({', '.join(_EVAL_KEYS)}), got {ev!r}",
                       source)
        _check_keys(ev, set(_EVAL_KEYS), "evaluation.", source)
        for k, v in ev.items():
            kw[k] = v if k == "accelerator" else _int(v, f"evaluation.{k}", source, 1)
    if data.get("accelerator") is not None:
        kw["accelerator"] = _str(data["accelerator"], "accelerator", source)
    if data.get("workers") is not None:
        kw["workers"] = _int(data["workers"], "workers", source, 1, MAX_WORKERS)
    if kw.get("accelerator", "auto") not in ACCELERATORS:
        raise _err("accelerator", f"must be one of {', '.join(ACCELERATORS)}, got "
                   f"{kw['accelerator']!r}", source)
    return EvalSettings(**kw)


_EVAL_KEYS = ("accelerator", "workers", "batch_size", "recal_batches", "eval_chunk")
_FIELDS = {"search_space", "space_options", "device", "supernet", "predictor", "benchmark",
           "strategy", "constraints", "budget", "seed", "storage", "out", "workers", "resume",
           "name", "accelerator", "accuracy", "evaluation", "commit_every", "trial_params"}
#: the longest write interval of a single-writer search (what a kill may lose)
MAX_COMMIT_EVERY = 3600.0


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one search run needs; ``nas search`` flags and YAML files both build it.

    Attributes:
        search_space: registered space name.
        device: registered latency-target device name, or a latency column of the ``csv:``
            benchmark (``pixel3_ms``).
        accuracy: the accuracy spec and its dataset (default: the embedded quick supernet).
        strategy: strategy name and settings.
        constraints: upper bounds.
        budget: number of distinct evaluated candidates.
        seed: random seed.
        storage: ``sqlite:///path.db`` (or a plain path) to persist every evaluation.
        out: the run folder.
        resume: continue the study found in ``storage``.
        name: a label for reports and sweeps.
        evaluation: the evaluation knobs (accelerator, workers, batch size, BN-recalibration
            batches, eval chunk).
        space_options: restrictions of the space's choices, e.g. ``{"resolutions": [160,
            176, 192, 208, 224]}`` (resolved by :func:`~nasforge.experiments._space.space_of`).
        commit_every: a single-writer search writes its candidates at most every this many
            seconds (0: after every round); a kill loses what was evaluated since.
        trial_params: a single-writer search also stores each arch as Optuna trial params.
    """

    search_space: str
    device: str
    accuracy: AccuracySource = field(default_factory=AccuracySource)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    constraints: Constraints = field(default_factory=Constraints)
    budget: int = 100
    seed: int = 0
    storage: str | None = None
    out: str = "runs/search"
    resume: bool = False
    name: str | None = None
    evaluation: EvalSettings = field(default_factory=EvalSettings)
    space_options: dict[str, Any] = field(default_factory=dict)
    commit_every: float = 1.0
    trial_params: bool = False

    def __post_init__(self) -> None:
        _int(self.budget, "budget (--budget)", "", 1, MAX_BUDGET)
        _int(self.seed, "seed (--seed)", "", 0, MAX_SEED)
        _commit_every(self.commit_every, "commit_every (--commit-every)", "")

    def accuracy_source(self) -> str:
        """``supernet``, ``predictor``, ``benchmark``, ``proxy`` or ``quick-supernet`` (the
        study's ``accuracy`` meta; other schemes are their own name)."""
        return _KINDS.get(self.accuracy.kind, self.accuracy.kind)

    @staticmethod
    def from_dict(data: Any, source: str = "") -> ExperimentConfig:
        """Validate a parsed YAML mapping; errors name the field path."""
        if not isinstance(data, dict):
            raise _err("(top level)", f"an experiment is a mapping of fields, got "
                       f"{type(data).__name__}", source)
        _check_keys(data, _FIELDS, "", source)
        for req in ("search_space", "device"):
            if req not in data:
                raise _err(req, "is required", source)
        kw: dict[str, Any] = {
            "search_space": _str(data["search_space"], "search_space", source),
            "device": _str(data["device"], "device", source),
            "strategy": StrategyConfig.from_any(data.get("strategy"), source),
            "constraints": Constraints.from_dict(data.get("constraints"), source),
        }
        for k in ("storage", "out", "name"):
            if data.get(k) is not None:
                kw[k] = _str(data[k], k, source)
        if data.get("space_options") is not None:
            opts = data["space_options"]
            if not isinstance(opts, dict) or not all(isinstance(k, str) for k in opts):
                raise _err("space_options", f"must be a mapping of option names to values, "
                           f"got {opts!r}", source)
            kw["space_options"] = dict(opts)
        specs: dict[str, AccuracySource | None] = {
            k: AccuracySource(v) for k, v in _old_accuracy_keys(data, source).items()}
        if data.get("accuracy") is not None:
            specs["accuracy"] = AccuracySource.from_any(data["accuracy"], source)
        for k, low, high in (("budget", 1, MAX_BUDGET), ("seed", 0, MAX_SEED)):
            if data.get(k) is not None:
                kw[k] = _int(data[k], k, source, low, high)
        kw["evaluation"] = _eval_settings(data, source)
        for k in ("resume", "trial_params"):
            if data.get(k) is not None:
                if not isinstance(data[k], bool):
                    raise _err(k, f"must be true or false, got {data[k]!r}", source)
                kw[k] = data[k]
        if data.get("commit_every") is not None:
            kw["commit_every"] = _commit_every(data["commit_every"], "commit_every", source)
        return ExperimentConfig(accuracy=accuracy_of(specs, source), **kw)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the YAML form)."""
        d = dataclasses.asdict(self)
        d["strategy"] = {"name": self.strategy.name, **self.strategy.settings}
        d["accuracy"] = self.accuracy.to_yaml()
        if not self.space_options:
            d.pop("space_options")
        for k in ("commit_every", "trial_params"):  # the defaults are not written
            if d[k] == getattr(ExperimentConfig, k):
                d.pop(k)
        return {k: v for k, v in d.items() if v is not None}

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file."""
    data = parse_text(read_text(path, "experiment file"), str(path))
    return ExperimentConfig.from_dict(data, str(path))
