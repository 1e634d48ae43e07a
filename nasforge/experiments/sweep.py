"""Ray Tune sweeps: many experiments (devices x budgets x strategies x seeds) as one job.

A sweep file holds a ``base`` experiment (the fields of
:class:`~nasforge.experiments.config.ExperimentConfig`) and the fields to vary, by field path:

.. code-block:: yaml

    base: {search_space: elasticvit, strategy: evolution, budget: 200}
    grid:                                  # every combination (Ray Tune grid search)
      device: [pixel6, pixel7]
      constraints.latency_ms: [15, 25]
      seed: [0, 1]
    random:                                # and/or sampled values (num_samples draws)
      strategy.mutation_prob: {uniform: [0.05, 0.3]}
    num_samples: 1
    resources_per_trial: {cpu: 1}
    max_failures: 2
    max_concurrent: 4
    scheduler: {name: asha, grace_period: 50}   # optional: stop weak searches early
    out: runs/pixel_sweep

Each trial is one :func:`~nasforge.experiments.runner.run_experiment` writing its run folder
under ``OUT/runs/<trial id>`` with its own SQLite study, so a trial lost with its node is
retried (up to ``max_failures`` times) and resumes from the candidates it had persisted, and an
interrupted sweep continues with :func:`run_sweep` ``(resume=True)``: finished trials are kept,
unfinished ones re-run. The results are gathered into ``OUT/sweep.csv`` and one Pareto plot
across devices and budgets, ``OUT/sweep_pareto.png``.

Run folders live on the filesystem the driver and the workers share (one host, or NFS on a
cluster), and every node needs ``nasforge`` installed. Ray is imported lazily (``nasforge[ray]``).
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import json
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
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
    "SweepOutcome",
    "load_sweep",
    "run_sweep",
    "sweep_trial",
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
                column = exp.benchmark is not None and exp.device.endswith("_ms")
                if exp.device not in devices and not column:
                    get_device(exp.device)
            except UnknownNameError as e:
                raise UnknownNameError(f"{prefix}{where}: {e}") from None

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
            path, _, problem = str(e).partition(": ")
            if swept is None:  # the base check: blame a swept field's first value if related
                related = [p for p in self.swept if _related(path, p)]
                if related:
                    swept = related[0]
                    where = (f"grid.{swept}[0]" if swept in self.grid
                             else f"random.{swept}.{next(iter(self.random[swept]))}")
            if swept is None:
                msg = f"base.{path}: {problem}" if path != "(top level)" else str(e)
            elif swept and _related(path, swept):
                msg = f"{where}: {problem}"
            else:
                msg = f"{where}: makes {path} invalid: {problem}"
            raise ConfigError(prefix + msg) from None
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
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise _err(f"resources_per_trial.{k}", f"must be a number >= 0, got {v!r}", source)
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
    return SweepConfig.from_dict(parse_text(read_text(path), str(path)), str(path))


# ---- the trial ---------------------------------------------------------------------------------
def _label(point: dict[str, Any]) -> str:
    parts = []
    for p, v in point.items():
        text = v.get("name", json.dumps(v, sort_keys=True)) if isinstance(v, dict) else v
        parts.append(f"{p.rsplit('.', 1)[-1]}={text}")
    return re.sub(r"[^A-Za-z0-9_.=,@-]+", "-", ",".join(parts))[:120]


def _record_attempt(run_dir: Path) -> int:
    """Append this attempt (host, pid, Ray node) to ``attempts.jsonl``; return its number."""
    ray = _import_ray()
    path = run_dir / "attempts.jsonl"
    n = len(path.read_text().splitlines()) + 1 if path.exists() else 1
    entry = {"attempt": n, "time": time.time(), "host": socket.gethostname(),
             "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}
    with path.open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return n


def _import_ray() -> Any:
    from nasforge.experiments.pool import import_ray

    return import_ray()


def _best_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    best = summary.get("best") or {}
    return {SWEEP_METRIC: float(best.get("accuracy", 0.0)) if best else 0.0,
            "best_latency_ms": best.get("latency_ms"), "best_mflops": best.get("mflops"),
            "best_params_m": best.get("params_m"), "best_arch_id": best.get("arch_id"),
            "feasible_found": bool(best)}


def sweep_trial(config: dict[str, Any]) -> None:
    """The Ray Tune trainable of a sweep: one :func:`run_experiment` per trial.

    Everything comes through ``config`` (no global state reaches the workers):
    ``experiment`` (the base mapping as JSON), ``point`` (field path -> value of this trial)
    and ``out_root``. The run folder is ``out_root/runs/<trial id>``; a retried or restored
    trial finds its SQLite study there and resumes it, and a trial whose folder already has a
    ``run.json`` reports it without searching again.

    Reports ``best_accuracy`` (0.0 while nothing is feasible) and ``n_evaluated`` after every
    search round (for schedulers, when the runner takes callbacks), then the run's summary
    with ``finished=True``.
    """
    from ray import tune

    from nasforge.experiments.runner import run_experiment

    point = dict(config["point"])
    trial_id = tune.get_context().get_trial_id() or "local"
    run_dir = Path(config["out_root"]) / "runs" / trial_id
    run_dir.mkdir(parents=True, exist_ok=True)
    attempt = _record_attempt(run_dir)
    base_info = {"run_dir": str(run_dir), "attempt": attempt, "label": _label(point)}
    manifest = run_dir / "run.json"
    if manifest.exists():
        summary = json.loads(manifest.read_text())["summary"]
    else:
        cfg = _absolute(ExperimentConfig.from_dict(
            apply_overrides(json.loads(config["experiment"]), point)), Path(config["cwd"]))
        db = run_dir / "search.db"
        cfg = cfg.replace(out=str(run_dir), storage=f"sqlite:///{db}", resume=db.exists(),
                          name=cfg.name or base_info["label"])
        kwargs: dict[str, Any] = {}
        if "callbacks" in inspect.signature(run_experiment).parameters:
            kwargs["callbacks"] = [_RoundReporter(tune.report, base_info)]
        summary = run_experiment(cfg, progress=False, **kwargs).summary
    tune.report({**base_info, **_best_metrics(summary), "finished": True,
                 "n_evaluated": int(summary.get("n_evaluated", 0)),
                 "pareto_size": int(summary.get("pareto_size", 0)),
                 "seconds": float(summary.get("seconds", 0.0)), "run_name": summary.get("name")})


def _absolute(cfg: ExperimentConfig, cwd: Path) -> ExperimentConfig:
    """Relative file fields resolved against the driver's working directory (a trial runs
    in its own directory, possibly on another node)."""
    def fix(p: str) -> str:
        return p if Path(p).is_absolute() or "://" in p else str(cwd / p)

    changes: dict[str, Any] = {}
    if cfg.supernet is not None and cfg.supernet != "quick":
        changes["supernet"] = fix(cfg.supernet)
    if cfg.predictor is not None:
        changes["predictor"] = fix(cfg.predictor)
    if cfg.benchmark is not None:
        changes["benchmark"] = dataclasses.replace(cfg.benchmark, path=fix(cfg.benchmark.path))
    return cfg.replace(**changes) if changes else cfg


class _RoundReporter:
    """A search callback reporting best-so-far accuracy once per search round."""

    def __init__(self, report: Any, info: dict[str, Any]) -> None:
        self.report, self.info = report, info
        self.best, self.n, self.step = 0.0, 0, None

    def __call__(self, cand: Any) -> None:
        if self.step is not None and cand.step != self.step:
            self.report({**self.info, SWEEP_METRIC: self.best, "n_evaluated": self.n,
                         "finished": False})
        self.step = cand.step
        self.n += 1
        acc = cand.values.get("accuracy", np.nan)
        if cand.feasible and acc > self.best:
            self.best = float(acc)


# ---- the sweep ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep wrote.

    Attributes:
        out_dir: the sweep folder.
        table: one row per trial (``sweep.csv``).
        csv: ``sweep.csv``.
        plot: ``sweep_pareto.png`` (None when no trial finished).
    """

    out_dir: Path
    table: Any
    csv: Path
    plot: Path | None


def _param_space(cfg: SweepConfig, out_root: Path) -> dict[str, Any]:
    from ray import tune

    point: dict[str, Any] = {p: tune.grid_search(v) for p, v in cfg.grid.items()}
    for p, dist in cfg.random.items():
        kind, arg = next(iter(dist.items()))
        point[p] = (tune.choice(arg) if kind == "choice" else tune.uniform(*arg)
                    if kind == "uniform" else tune.loguniform(*arg) if kind == "loguniform"
                    else tune.randint(*arg))
    return {"experiment": json.dumps(cfg.base, sort_keys=True), "out_root": str(out_root),
            "cwd": os.getcwd(), "point": point}


def _scheduler_obj(cfg: SweepConfig) -> Any:
    if cfg.scheduler is None:
        return None
    from ray.tune.schedulers import ASHAScheduler

    from nasforge.experiments.runner import run_experiment

    if "callbacks" not in inspect.signature(run_experiment).parameters:
        raise IncompatibleComponentsError(
            "scheduler asha needs per-round reports, but this version's run_experiment takes "
            "no callbacks; remove `scheduler` from the sweep file")
    budgets = [ExperimentConfig.from_dict(apply_overrides(cfg.base, {p: v})).budget
               for p, vs in cfg.grid.items() if p == "budget" for v in vs]
    max_t = max(budgets or [int(cfg.base.get("budget", 100))])
    s = cfg.scheduler.settings
    return ASHAScheduler(time_attr="n_evaluated", max_t=max_t,
                         grace_period=int(s.get("grace_period", max(1, max_t // 8))),
                         reduction_factor=int(s.get("reduction_factor", 2)),
                         brackets=int(s.get("brackets", 1)))


def run_sweep(cfg: SweepConfig, *, address: str | None = None,
              max_concurrent: int | None = None, resume: bool = False,
              progress: bool = True) -> SweepOutcome:
    """Run (or resume) a sweep on Ray Tune and aggregate its results.

    Args:
        cfg: the sweep.
        address: Ray cluster address (``auto``, ``HOST:PORT``); None: a local Ray instance
            (or the one this process is already connected to).
        max_concurrent: trials at once (overrides the file's ``max_concurrent``).
        resume: continue the sweep found in ``cfg.out``: finished trials are kept, errored and
            unfinished ones run again (resuming their own studies).
        progress: Ray Tune's progress output.

    Returns:
        The :class:`SweepOutcome` (``sweep.csv``, ``sweep_pareto.png``).

    Raises:
        InvalidInputError: a sweep already in ``cfg.out`` without ``resume``, or a sweep file
            that differs from the one being resumed.
        MissingDependencyError: Ray is not installed.
    """
    ray = _import_ray()
    from ray import tune

    from nasforge.experiments.pool import ensure_ray

    out = Path(cfg.out).resolve()
    exp_path = out / _TUNE_DIR
    recorded = out / "sweep.json"
    state_exists = exp_path.exists() and tune.Tuner.can_restore(str(exp_path))
    if state_exists and not resume:
        raise InvalidInputError(
            f"{out} already holds a sweep; pass --resume to continue it or choose another `out`")
    if resume and recorded.exists() and json.loads(recorded.read_text()) != json.loads(
            json.dumps(cfg.to_dict())):
        raise InvalidInputError(
            f"{recorded} records another sweep than {cfg.source or 'the one given'}; resume "
            "with the same file or choose another `out`")
    out.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
    scheduler = _scheduler_obj(cfg)  # before Ray starts: a scheduler that cannot work raises
    owns = ensure_ray(address)
    try:
        trainable = tune.with_resources(sweep_trial, dict(cfg.resources_per_trial))
        if resume and state_exists:
            tuner = tune.Tuner.restore(str(exp_path), trainable, resume_errored=True)
        else:
            tuner = tune.Tuner(
                trainable,
                param_space=_param_space(cfg, out),
                tune_config=tune.TuneConfig(
                    num_samples=cfg.num_samples, scheduler=scheduler,
                    metric=SWEEP_METRIC if scheduler is not None else None,
                    mode="max" if scheduler is not None else None,
                    max_concurrent_trials=max_concurrent or cfg.max_concurrent),
                run_config=tune.RunConfig(
                    name=_TUNE_DIR, storage_path=str(out),
                    failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
                    verbose=1 if progress else 0),
            )
        grid = tuner.fit()
    finally:
        if owns:
            ray.shutdown()
    table = results_table(grid, cfg)
    csv = out / "sweep.csv"
    table.to_csv(csv, index=False)
    plot = sweep_plot(table, out / "sweep_pareto.png")
    return SweepOutcome(out, table, csv, plot)


def results_table(grid: Any, cfg: SweepConfig) -> Any:
    """One row per trial of a Ray Tune ``ResultGrid``: the swept values, status, attempts and
    the best architecture found (sorted by device, then the swept fields)."""
    import pandas as pd

    rows = []
    for result in grid:
        conf = result.config or {}
        point = conf.get("point", {})
        m = dict(result.metrics or {})
        run_dir = m.get("run_dir") or (str(Path(conf["out_root"]) / "runs" /
                                           str(m.get("trial_id"))) if "out_root" in conf else "")
        attempts_file = Path(run_dir) / "attempts.jsonl" if run_dir else None
        attempts = (len(attempts_file.read_text().splitlines())
                    if attempts_file is not None and attempts_file.exists() else 0)
        status = ("finished" if m.get("finished") else "error" if result.error is not None
                  else "stopped early")
        row: dict[str, Any] = {"trial_id": m.get("trial_id", Path(str(result.path)).name)}
        for p in cfg.swept:
            v = point.get(p)
            row[p] = v.get("name", json.dumps(v)) if isinstance(v, dict) else v
        row.update({"status": status, "attempts": attempts,
                    "n_evaluated": m.get("n_evaluated"), "best_arch_id": m.get("best_arch_id"),
                    "best_accuracy": m.get(SWEEP_METRIC) if m.get("feasible_found", True)
                    else None,
                    "best_latency_ms": m.get("best_latency_ms"),
                    "best_mflops": m.get("best_mflops"), "pareto_size": m.get("pareto_size"),
                    "seconds": m.get("seconds"), "run_name": m.get("run_name"),
                    "run_dir": run_dir,
                    "error": _first_line(result.error) if result.error is not None else None})
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        keys = [c for c in cfg.swept if c in table]
        table = table.sort_values(
            keys or ["trial_id"], kind="stable",
            key=lambda s: s if pd.api.types.is_numeric_dtype(s) else s.astype(str),
        ).reset_index(drop=True)
    return table


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[-1][:300] if text else type(err).__name__


def sweep_plot(table: Any, path: Path) -> Path | None:
    """The Pareto fronts of every finished trial in one figure (see
    :func:`nasforge.experiments.report.plot_fronts_by_device`); None when none finished."""
    from nasforge.experiments.report import load_run
    from nasforge.experiments.report import plot_fronts_by_device

    done = table[table["status"] == "finished"] if len(table) else table
    runs = [load_run(d) for d in done["run_dir"]] if len(done) else []
    if not runs:
        return None
    plot_fronts_by_device(runs, path, title=f"sweep: {len(runs)} runs")
    return path
