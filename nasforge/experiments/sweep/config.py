"""Sweep files: a base experiment plus a grid and/or random search over its fields.

Validated with errors that give the file and the field path (``grid.device[1]: unknown device
'pixle7'; did you mean 'pixel7'?``); :func:`load_sweep` reads one.
"""


from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import UnknownNameError
from nasforge.experiments.config import _FIELDS
from nasforge.experiments.config import ConfigError
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.config import _check_keys
from nasforge.experiments.config import _err
from nasforge.experiments.config import _int
from nasforge.experiments.config import _str
from nasforge.search_spaces.io import parse_text
from nasforge.search_spaces.io import read_text

__all__ = [
    "SWEEP_METRIC",
    "SchedulerConfig",
    "SweepConfig",
    "load_sweep",
]

#: what a trial reports and what schedulers compare: best feasible accuracy so far
#: (0.0 while nothing is feasible).
SWEEP_METRIC = "best_accuracy"
#: fields a sweep sets for each trial itself.
_RESERVED = {"out", "storage", "resume", "name"}
_TOP = {"base", "grid", "random", "num_samples", "resources_per_trial", "max_failures",
        "max_concurrent", "scheduler", "out", "name"}
_DISTRIBUTIONS = {"choice", "uniform", "loguniform", "randint"}
_SCHEDULERS = {"asha": {"grace_period", "reduction_factor", "brackets"}}
_TUNE_DIR = "tune"
_MAX_GRID_CHECK = 4096


# ---- configuration -------------------------------------------------------------------------
@dataclass(frozen=True)
class SchedulerConfig:
    """A Ray Tune trial scheduler.

    Attributes:
        name: ``asha`` (Async Successive Halving: stops trials whose best accuracy after
            ``grace_period``, ``grace_period * reduction_factor``, ... evaluations is in the
            bottom of their rung).
        settings: the scheduler's options (``grace_period`` in evaluations,
            ``reduction_factor``, ``brackets``).
    """

    name: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepConfig:
    """A validated sweep file.

    Attributes:
        base: the base experiment as a plain mapping (the YAML form).
        grid: field path -> values; every combination is a trial.
        random: field path -> ``{choice: [...]}``, ``{uniform: [lo, hi]}``,
            ``{loguniform: [lo, hi]}`` or ``{randint: [lo, hi]}`` (hi exclusive).
        num_samples: draws of ``random`` (times the grid, as in Ray Tune).
        resources_per_trial: Ray resources of one trial (``cpu``, ``gpu``).
        max_failures: retries of a failed trial (a lost node counts as a failure).
        max_concurrent: trials running at once (None: as many as resources allow).
        scheduler: an early-stopping scheduler, or None.
        out: the sweep folder.
        name: a label.
        source: the file it came from (for messages).
    """

    base: dict[str, Any]
    grid: dict[str, list[Any]] = field(default_factory=dict)
    random: dict[str, dict[str, Any]] = field(default_factory=dict)
    num_samples: int = 1
    resources_per_trial: dict[str, float] = field(default_factory=lambda: {"cpu": 1.0})
    max_failures: int = 2
    max_concurrent: int | None = None
    scheduler: SchedulerConfig | None = None
    out: str = "runs/sweep"
    name: str = "sweep"
    source: str = ""

    @property
    def swept(self) -> list[str]:
        """The varied field paths, grid first."""
        return [*self.grid, *self.random]

    @property
    def n_trials(self) -> int:
        """Number of trials: grid combinations times ``num_samples``."""
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n * self.num_samples

    @staticmethod
    def from_dict(data: Any, source: str = "") -> SweepConfig:
        """Validate a parsed sweep file; errors name the field path (``grid.seed[1]: ...``).

        Raises:
            ConfigError: a missing, unknown or ill-typed field, or a grid/random value that
                makes an invalid experiment.
            IncompatibleComponentsError: a combination of values that cannot run together.
        """
        if not isinstance(data, dict):
            raise _err("(top level)", "a sweep is a mapping with `base` and `grid` and/or "
                       f"`random`, got {type(data).__name__}", source)
        _check_keys(data, _TOP, "", source)
        if "base" not in data:
            raise _err("base", "is required (the experiment every trial starts from)", source)
        base = data["base"]
        if not isinstance(base, dict):
            raise _err("base", f"must be a mapping of experiment fields, got {base!r}", source)
        _check_keys(base, _FIELDS, "base.", source)
        for k in sorted(_RESERVED & set(base)):
            raise _err(f"base.{k}", "is set per trial by the sweep; remove it (use the "
                       "sweep's `out`)", source)
        grid = _grid(data.get("grid"), source)
        rand = _random(data.get("random"), source)
        if not grid and not rand:
            raise _err("grid", "a sweep needs `grid` and/or `random` (field path -> values)",
                       source)
        both = sorted(set(grid) & set(rand))
        if both:
            raise _err(f"random.{both[0]}", "is also in `grid`; vary a field in one of them",
                       source)
        kw: dict[str, Any] = {"base": base, "grid": grid, "random": rand, "source": source}
        for k, low in (("num_samples", 1), ("max_failures", 0), ("max_concurrent", 1)):
            if data.get(k) is not None:
                kw[k] = _int(data[k], k, source, low)
        for k in ("out", "name"):
            if data.get(k) is not None:
                kw[k] = _str(data[k], k, source)
        if data.get("resources_per_trial") is not None:
            kw["resources_per_trial"] = _resources(data["resources_per_trial"], source)
        if data.get("scheduler") is not None:
            kw["scheduler"] = _scheduler(data["scheduler"], source)
        cfg = SweepConfig(**kw)
        cfg._check_values()
        return cfg

    def _points(self) -> Iterator[tuple[dict[str, Any], str, str | None]]:
        """``(point, where, swept)``: the base with every swept field at its first value
        (``swept`` None), then each grid value, random choice or bound in turn, then every
        grid combination (``swept`` ``""``; up to a few thousand)."""
        first = {p: v[0] for p, v in self.grid.items()}
        first.update({p: next(iter(d.values()))[0] for p, d in self.random.items()})
        yield first, "base", None
        for p, values in self.grid.items():
            for i, v in enumerate(values):
                yield {**first, p: v}, f"grid.{p}[{i}]", p
        for p, dist in self.random.items():
            kind, arg = next(iter(dist.items()))
            if kind == "choice":
                for i, v in enumerate(arg):
                    yield {**first, p: v}, f"random.{p}.choice[{i}]", p
            else:
                for v in (arg[0], arg[1] - 1 if kind == "randint" else arg[1]):
                    yield {**first, p: v}, f"random.{p}.{kind}", p
        if 1 < self.n_trials // self.num_samples <= _MAX_GRID_CHECK:
            for combo in itertools.product(*self.grid.values()):
                point = dict(zip(self.grid, combo, strict=True))
                where = "grid (" + ", ".join(f"{p}={v!r}" for p, v in point.items()) + ")"
                yield {**first, **point}, where, ""

    def _check_values(self) -> None:
        """Build the experiment of every value so that a bad one fails before Ray starts."""
        for point, where, swept in self._points():
            self._experiment_or_raise(point, where, swept)

    def check_names(self) -> None:
        """Resolve every search space, strategy and device name the sweep uses.

        Raises:
            UnknownNameError: an unknown name, with the sweep path of the value that set it.
        """
        from nasforge.evaluation import is_latency_column
        from nasforge.hardware_models import get_device
        from nasforge.hardware_models import list_devices
        from nasforge.search_spaces import get_space
        from nasforge.strategies import STRATEGIES

        devices = set(list_devices())
        prefix = f"{self.source}: " if self.source else ""
        for point, where, _ in self._points():
            exp = self.experiment(point)
            try:
                get_space(exp.search_space)
                STRATEGIES.get(exp.strategy.name)
                column = exp.accuracy.kind == "csv" and is_latency_column(exp.device)
                if exp.device not in devices and not column:
                    get_device(exp.device)
            except UnknownNameError as e:
                raise UnknownNameError(f"{prefix}{where}: {e}") from None

    def check_inputs(self) -> None:
        """Read every benchmark table the trials use, once each, with the checks a run makes
        (values finite and in range, one row per architecture): a bad table fails here, in
        one line, instead of in every trial on the cluster.

        Raises:
            InvalidInputError: a bad table, prefixed with the sweep path of the value.
        """
        from nasforge.errors import InvalidInputError
        from nasforge.errors import NasforgeError
        from nasforge.experiments._inputs import read_table
        from nasforge.search_spaces import get_space

        prefix = f"{self.source}: " if self.source else ""
        seen: set[tuple[str, str, str]] = set()
        for point, where, _ in self._points():
            exp = self.experiment(point)
            if exp.accuracy.kind != "csv":
                continue
            key = (exp.accuracy.source, exp.device, exp.search_space)
            if key in seen:
                continue
            seen.add(key)
            try:
                read_table(exp, get_space(exp.search_space))
            except NasforgeError as e:
                raise InvalidInputError(f"{prefix}{where}: {e}") from None

    def _experiment_or_raise(self, point: dict[str, Any], where: str, swept: str | None
                             ) -> None:
        """Raise the experiment's error with the sweep file's field path.

        ``where`` is the sweep path of the value (``grid.seed[1]``); ``swept`` the experiment
        field it sets (None: the base is at fault, ``""``: a combination).
        """
        prefix = f"{self.source}: " if self.source else ""
        try:
            self.experiment(point)
        except ConfigError as e:
            path, problem = e.path, e.problem
            if swept is None:  # the base check: blame a swept field's first value if related
                related = [p for p in self.swept if _related(path, p)]
                if related:
                    swept = related[0]
                    where = (f"grid.{swept}[0]" if swept in self.grid
                             else f"random.{swept}.{next(iter(self.random[swept]))}")
            if swept is None:
                raise ConfigError(f"base.{path}" if path != "(top level)" else path, problem,
                                  self.source) from None
            if swept and _related(path, swept):
                raise ConfigError(where, problem, self.source) from None
            raise ConfigError(where, f"makes {path} invalid: {problem}", self.source) from None
        except IncompatibleComponentsError as e:
            if swept is None:  # the base check: the swept field without which it works
                for p in self.swept:
                    try:
                        self.experiment({k: v for k, v in point.items() if k != p})
                    except (ConfigError, IncompatibleComponentsError):
                        continue
                    where = (f"grid.{p}[0]" if p in self.grid
                             else f"random.{p}.{next(iter(self.random[p]))}")
                    break
            raise IncompatibleComponentsError(f"{prefix}{where}: {e}") from None

    def experiment(self, point: dict[str, Any]) -> ExperimentConfig:
        """The base experiment with the swept fields set to ``point`` (field path -> value).

        Raises:
            ConfigError: the resulting experiment is invalid (path relative to the experiment).
        """
        return ExperimentConfig.from_dict(apply_overrides(self.base, point))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form (what the sweep folder records as ``sweep.json``)."""
        d: dict[str, Any] = {"base": self.base, "grid": self.grid, "random": self.random,
                             "num_samples": self.num_samples,
                             "resources_per_trial": self.resources_per_trial,
                             "max_failures": self.max_failures, "out": self.out,
                             "name": self.name}
        if self.max_concurrent is not None:
            d["max_concurrent"] = self.max_concurrent
        if self.scheduler is not None:
            d["scheduler"] = {"name": self.scheduler.name, **self.scheduler.settings}
        return d


def _related(path: str, swept: str) -> bool:
    """Whether an error at experiment field ``path`` comes from setting ``swept``."""
    return path == swept or path.startswith(swept + ".") or swept.startswith(path + ".")


def _check_path(path: Any, where: str, source: str) -> str:
    if not isinstance(path, str) or not path:
        raise _err(where, f"field paths are non-empty strings, got {path!r}", source)
    head = path.split(".", 1)[0]
    if head not in _FIELDS:
        import difflib

        close = difflib.get_close_matches(head, sorted(_FIELDS - _RESERVED), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _err(f"{where}.{path}", f"unknown experiment field {head!r}{hint}", source)
    if head in _RESERVED:
        raise _err(f"{where}.{path}", "is set per trial by the sweep and cannot be varied",
                   source)
    return path


def _grid(data: Any, source: str) -> dict[str, list[Any]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _err("grid", f"must be a mapping of field path -> list of values, got {data!r}",
                   source)
    out: dict[str, list[Any]] = {}
    for path, values in data.items():
        p = _check_path(path, "grid", source)
        if not isinstance(values, list) or not values:
            raise _err(f"grid.{p}", f"must be a non-empty list of values, got {values!r}",
                       source)
        out[p] = list(values)
    return out


def _random(data: Any, source: str) -> dict[str, dict[str, Any]]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _err("random", "must be a mapping of field path -> {choice|uniform|loguniform|"
                   f"randint: ...}}, got {data!r}", source)
    out: dict[str, dict[str, Any]] = {}
    for path, dist in data.items():
        p = _check_path(path, "random", source)
        where = f"random.{p}"
        if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in \
                _DISTRIBUTIONS:
            raise _err(where, "must be one of {choice: [v, ...]}, {uniform: [lo, hi]}, "
                       f"{{loguniform: [lo, hi]}}, {{randint: [lo, hi]}}; got {dist!r}", source)
        kind, arg = next(iter(dist.items()))
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise _err(f"{where}.choice", f"must be a non-empty list, got {arg!r}", source)
        else:
            ok = (isinstance(arg, list) and len(arg) == 2
                  and all(isinstance(v, int | float) and not isinstance(v, bool) for v in arg))
            if kind == "randint":
                ok = ok and all(isinstance(v, int) for v in arg)
            if not ok or not arg[0] < arg[1] or (kind == "loguniform" and arg[0] <= 0):
                rule = ("two integers [lo, hi] with lo < hi (hi exclusive)" if kind == "randint"
                        else "two numbers [lo, hi] with "
                        + ("0 < lo < hi" if kind == "loguniform" else "lo < hi"))
                raise _err(f"{where}.{kind}", f"must be {rule}, got {arg!r}", source)
        out[p] = {kind: list(arg)}
    return out


def _resources(data: Any, source: str) -> dict[str, float]:
    if not isinstance(data, dict) or not data:
        raise _err("resources_per_trial", f"must be a mapping like {{cpu: 1, gpu: 0}}, got "
                   f"{data!r}", source)
    out: dict[str, float] = {}
    for k, v in data.items():
        if not isinstance(k, str) or not k:
            raise _err("resources_per_trial", f"resource names are strings, got {k!r}", source)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise _err(f"resources_per_trial.{k}", f"must be a number >= 0, got {v!r}",
                       source)
        out[k] = float(v)
    if out.get("cpu", 0.0) == 0.0 and out.get("gpu", 0.0) == 0.0:
        raise _err("resources_per_trial", "a trial needs some cpu or gpu", source)
    return out


def _scheduler(data: Any, source: str) -> SchedulerConfig:
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict) or "name" not in data:
        raise _err("scheduler", f"must be a name ({', '.join(_SCHEDULERS)}) or a mapping with "
                   f"`name`, got {data!r}", source)
    name = _str(data["name"], "scheduler.name", source)
    if name not in _SCHEDULERS:
        raise _err("scheduler.name", f"unknown scheduler {name!r}; choose from "
                   f"{', '.join(sorted(_SCHEDULERS))} (Population Based Training applies to "
                   "supernet training, not to searches)", source)
    settings = {k: v for k, v in data.items() if k != "name"}
    _check_keys(settings, _SCHEDULERS[name], "scheduler.", source)
    for k, v in settings.items():
        _int(v, f"scheduler.{k}", source, 1 if k != "reduction_factor" else 2)
    return SchedulerConfig(name, settings)


def apply_overrides(base: dict[str, Any], point: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with each field path of ``point`` set (``constraints.latency_ms``).

    A strategy given by name becomes a mapping when one of its settings is set
    (``strategy.population_size``).

    Raises:
        ConfigError: a path runs through a field that is not a mapping.
    """
    out = json.loads(json.dumps(base))
    for path, value in point.items():
        *parents, leaf = path.split(".")
        node = out
        walked: list[str] = []
        for key in parents:
            walked.append(key)
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif isinstance(child, str) and walked == ["strategy"]:
                child = node[key] = {"name": child}
            if not isinstance(child, dict):
                raise _err(".".join(walked), f"is {child!r}, not a mapping, so {path} cannot "
                           "be set")
            node = child
        node[leaf] = value
    return out


def load_sweep(path: str | Path) -> SweepConfig:
    """Read and validate a sweep YAML file (errors name the file and the field path)."""
    return SweepConfig.from_dict(parse_text(read_text(path, "sweep file"), str(path)), str(path))
