"""Experiment configuration: one YAML file reproduces what the ``nas search`` flags do.

An experiment file holds ``search_space``, ``device``, one accuracy source (``supernet``,
``predictor``, ``benchmark`` or a zero-cost proxy ``accuracy: zc:synflow``; none means the
embedded quick supernet), ``strategy`` (a name, or
a mapping with ``name`` and the strategy's settings), ``constraints``, ``budget``, ``seed``,
``storage`` and ``out``. Loading validates every field and names its path in the error
(``strategy.population: must be an integer >= 1, got 'many'``).

Example:
    >>> cfg = ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
    ...                                   "constraints": {"latency_ms": 25}, "budget": 50})
    >>> cfg.strategy.name, cfg.constraints.latency_ms, cfg.accuracy_source()
    ('evolution', 25.0, 'quick-supernet')
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nasforge.errors import ConfigError
from nasforge.errors import IncompatibleComponentsError
from nasforge.search_spaces.io import parse_text
from nasforge.search_spaces.io import read_text

__all__ = [
    "AccuracySource",
    "BenchmarkSource",
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
#: accelerators a run can evaluate on
ACCELERATORS = ("auto", "cpu", "cuda")


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


@dataclass(frozen=True)
class BenchmarkSource:
    """A tabular benchmark: a CSV and the metric column to maximise."""

    path: str
    metric: str

    @staticmethod
    def from_dict(data: Any, source: str = "", path: str = "benchmark") -> BenchmarkSource:
        if not isinstance(data, dict):
            raise _err(path, f"must be a mapping with `path` and `metric`, got {data!r}", source)
        _check_keys(data, {"path", "metric"}, f"{path}.", source)
        for k in ("path", "metric"):
            if k not in data:
                raise _err(f"{path}.{k}", "is required", source)
        return BenchmarkSource(_str(data["path"], f"{path}.path", source),
                               _str(data["metric"], f"{path}.metric", source))


@dataclass(frozen=True)
class AccuracySource:
    """A zero-cost proxy as the accuracy (``accuracy: zc:synflow``, or the mapping
    ``accuracy: {source: zc:snip, data: digits}`` for a proxy that needs one batch of data)."""

    source: str
    data: str | None = None

    @staticmethod
    def from_any(data: Any, source: str = "", path: str = "accuracy") -> AccuracySource:
        if isinstance(data, str):
            return AccuracySource(data)
        if not isinstance(data, dict) or "source" not in data:
            raise _err(path, f"must be a proxy name (zc:synflow) or a mapping with `source` "
                       f"and `data`, got {data!r}", source)
        _check_keys(data, {"source", "data"}, f"{path}.", source)
        spec = None if data.get("data") is None else _str(data["data"], f"{path}.data", source)
        return AccuracySource(_str(data["source"], f"{path}.source", source), spec)


_FIELDS = {"search_space", "device", "supernet", "predictor", "benchmark", "strategy",
           "constraints", "budget", "seed", "storage", "out", "workers", "resume", "name",
           "accelerator", "accuracy"}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one search run needs; ``nas search`` flags and YAML files both build it.

    Attributes:
        search_space: registered space name.
        device: registered latency-target device name.
        supernet: a supernet checkpoint path, ``"quick"`` for the embedded quick supernet, or
            None when another accuracy source is given.
        predictor: a saved accuracy predictor (JSON) path.
        benchmark: a tabular benchmark source.
        strategy: strategy name and settings.
        constraints: upper bounds.
        budget: number of distinct evaluated candidates.
        seed: random seed.
        storage: ``sqlite:///path.db`` (or a plain path) to persist every evaluation.
        out: the run folder.
        workers: parallel evaluation workers for supernet accuracy (Ray actors when > 1).
        resume: continue the study found in ``storage``.
        name: a label for reports and sweeps.
        accelerator: compute used to evaluate (``cpu``, ``cuda``, ``auto``).
        accuracy: a zero-cost proxy as the accuracy source (``zc:synflow``), or None.
    """

    search_space: str
    device: str
    supernet: str | None = None
    predictor: str | None = None
    benchmark: BenchmarkSource | None = None
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    constraints: Constraints = field(default_factory=Constraints)
    budget: int = 100
    seed: int = 0
    storage: str | None = None
    out: str = "runs/search"
    workers: int = 1
    resume: bool = False
    name: str | None = None
    accelerator: str = "auto"
    accuracy: AccuracySource | None = None

    def __post_init__(self) -> None:
        given = [n for n, v in (("supernet", self.supernet), ("predictor", self.predictor),
                                ("benchmark", self.benchmark), ("accuracy", self.accuracy))
                 if v is not None and v != "quick"]
        if len(given) > 1:
            raise IncompatibleComponentsError(
                f"one accuracy source at a time, but got {' and '.join(given)}; drop all but one"
            )
        _int(self.budget, "budget (--budget)", "", 1, MAX_BUDGET)
        _int(self.seed, "seed (--seed)", "", 0, MAX_SEED)
        _int(self.workers, "workers (--workers)", "", 1, 4096)
        if self.accelerator not in ACCELERATORS:
            raise _err("accelerator (--accelerator)",
                       f"must be one of {', '.join(ACCELERATORS)}, got {self.accelerator!r}")

    def accuracy_source(self) -> str:
        """``supernet``, ``predictor``, ``benchmark``, ``proxy`` or ``quick-supernet``."""
        if self.accuracy is not None:
            return "proxy"
        if self.benchmark is not None:
            return "benchmark"
        if self.predictor is not None:
            return "predictor"
        if self.supernet is not None and self.supernet != "quick":
            return "supernet"
        return "quick-supernet"

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
        for k in ("supernet", "predictor", "storage", "out", "name", "accelerator"):
            if data.get(k) is not None:
                kw[k] = _str(data[k], k, source)
        if data.get("benchmark") is not None:
            kw["benchmark"] = BenchmarkSource.from_dict(data["benchmark"], source)
        if data.get("accuracy") is not None:
            kw["accuracy"] = AccuracySource.from_any(data["accuracy"], source)
        for k, low, high in (("budget", 1, MAX_BUDGET), ("seed", 0, MAX_SEED),
                             ("workers", 1, 4096)):
            if data.get(k) is not None:
                kw[k] = _int(data[k], k, source, low, high)
        if kw.get("accelerator", "auto") not in ACCELERATORS:
            raise _err("accelerator", f"must be one of {', '.join(ACCELERATORS)}, got "
                       f"{kw['accelerator']!r}", source)
        if data.get("resume") is not None:
            if not isinstance(data["resume"], bool):
                raise _err("resume", f"must be true or false, got {data['resume']!r}", source)
            kw["resume"] = data["resume"]
        try:
            return ExperimentConfig(**kw)
        except IncompatibleComponentsError as e:
            raise IncompatibleComponentsError(f"{source + ': ' if source else ''}{e}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (the YAML form)."""
        d = dataclasses.asdict(self)
        d["strategy"] = {"name": self.strategy.name, **self.strategy.settings}
        return {k: v for k, v in d.items() if v is not None}

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read and validate an experiment YAML file."""
    return ExperimentConfig.from_dict(parse_text(read_text(path), str(path)), str(path))
