"""Sweep files: validation with field paths (exit code 2 from ``nas sweep``), overrides, the
per-round reporter; and (slow) a local sweep interrupted and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.experiments.config import ConfigError
from nasforge.experiments.sweep import SweepConfig
from nasforge.experiments.sweep import apply_overrides
from nasforge.experiments.sweep import load_sweep
from nasforge.experiments.sweep.run import _RoundReporter

EXAMPLES = Path(__file__).resolve().parents[2] / "nasforge" / "experiments" / "examples"
BASE = {"search_space": "nasbench201", "device": "pixel3_ms", "budget": 20,
        "benchmark": {"path": "table.csv", "metric": "cifar10_val"}}


def _sweep(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"base": dict(BASE), "grid": {"seed": [0, 1]}}
    data.update(changes)
    return data


@pytest.mark.parametrize("name", ["nb201_sweep.yaml", "pixel_sweep.yaml"])
def test_example_sweeps_load(name: str) -> None:
    cfg = load_sweep(EXAMPLES / name)
    assert cfg.n_trials == 16
    assert cfg.swept == ["device", "constraints.latency_ms", "strategy", "seed"]
    exp = cfg.experiment({"device": "pixel6", "constraints.latency_ms": 15,
                          "strategy": "random", "seed": 1})
    assert (exp.device, exp.constraints.latency_ms, exp.strategy.name, exp.seed) == (
        "pixel6", 15.0, "random", 1)


@pytest.mark.parametrize(("changes", "message"), [
    ({"base": None}, "base: must be a mapping"),
    ({"gird": {}}, "gird: unknown field; did you mean 'grid'?"),
    ({"grid": {"constraints.latency_ms": [15, "fast"]}},
     "grid.constraints.latency_ms[1]: must be a positive number, got 'fast'"),
    ({"grid": {"devise": ["pixel6"]}},
     "grid.devise: unknown experiment field 'devise'; did you mean 'device'?"),
    ({"grid": {"device": []}}, "grid.device: must be a non-empty list"),
    ({"grid": {"out": ["a", "b"]}}, "grid.out: is set per trial by the sweep"),
    ({"grid": {"seed": [0, -1]}}, "grid.seed[1]: must be an integer >= 0, got -1"),
    ({"grid": {"strategy": ["random", 3]}}, "grid.strategy[1]: must be a strategy name"),
    ({"grid": {"device": ["pixel6"], "constraints.latency_ms.x": [1]}},
     "grid.constraints.latency_ms.x[0]: must be a positive number, got {'x': 1}"),
    ({"base": {**BASE, "budget": 0}}, "base.budget: must be an integer >= 1, got 0"),
    ({"base": {"search_space": "nasbench201"}, "grid": {"seed": [0]}},
     "base.device: is required"),
    ({"base": {**BASE, "out": "x"}}, "base.out: is set per trial by the sweep"),
    ({"grid": None}, "grid: a sweep needs `grid` and/or `random`"),
    ({"random": {"seed": {"randint": [5, 1]}}},
     "random.seed.randint: must be two integers [lo, hi] with lo < hi"),
    ({"random": {"seed": {"normal": [0, 1]}}}, "random.seed: must be one of {choice"),
    ({"random": {"strategy": {"choice": ["random", 7]}}},
     "random.strategy.choice[1]: must be a strategy name"),
    ({"random": {"seed": {"choice": [3]}}}, "random.seed: is also in `grid`"),
    ({"resources_per_trial": {"cpu": -1}},
     "resources_per_trial.cpu: must be a number >= 0, got -1"),
    ({"max_failures": "twice"}, "max_failures: must be an integer >= 0, got 'twice'"),
    ({"num_samples": 0}, "num_samples: must be an integer >= 1, got 0"),
    ({"scheduler": "pbt"}, "scheduler.name: unknown scheduler 'pbt'; choose from asha"),
    ({"scheduler": {"name": "asha", "grace_perod": 3}},
     "scheduler.grace_perod: unknown field; did you mean 'grace_period'?"),
])
def test_bad_sweep_names_the_field_path(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        SweepConfig.from_dict(_sweep(**changes), "s.yaml")
    assert str(e.value).startswith("s.yaml: ")
    assert message in str(e.value)


def test_incompatible_combination_names_the_grid_value() -> None:
    with pytest.raises(IncompatibleComponentsError, match=r"s.yaml: grid.supernet\[0\]: one "
                       "accuracy source at a time"):
        SweepConfig.from_dict(_sweep(grid={"supernet": ["a.ckpt"]}), "s.yaml")


def test_overrides_set_nested_paths_without_touching_the_base() -> None:
    base = {"search_space": "elasticvit", "device": "pixel6", "strategy": "evolution"}
    out = apply_overrides(base, {"constraints.latency_ms": 20, "strategy.population_size": 16})
    assert out["constraints"] == {"latency_ms": 20}
    assert out["strategy"] == {"name": "evolution", "population_size": 16}
    assert base["strategy"] == "evolution" and "constraints" not in base
    with pytest.raises(ConfigError, match="device: is 'pixel6', not a mapping"):
        apply_overrides(base, {"device.x": 1})


def test_nas_sweep_bad_file_is_one_line_exit_2(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_sweep(grid={"constraints.latency_ms": [15, "fast"]})))
    assert run_app(app, ["sweep", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {bad}: grid.constraints.latency_ms[1]: must be a positive number, "
                   "got 'fast'")
    bad.write_text("base: [unclosed\n")
    assert run_app(app, ["sweep", str(bad)]) == 2
    assert "malformed YAML" in capsys.readouterr().err


def test_round_reporter_reports_best_so_far_once_per_round() -> None:
    from nasforge.search_spaces import get_space
    from nasforge.strategies import STRATEGIES
    from nasforge.strategies import CallableObjective
    from nasforge.strategies import FlopsObjective
    from nasforge.strategies import SearchObjectives
    from nasforge.strategies import run_search

    space = get_space("nasbench201")
    flops = FlopsObjective(space, name="mflops")
    acc = CallableObjective("accuracy", lambda archs: flops.evaluate_many(archs) % 7.0,
                            "maximize")
    objs = SearchObjectives([acc, FlopsObjective(space, upper=80.0, name="mflops")])
    strategy = STRATEGIES.get("random")(space, objs, seed=0)
    reports: list[dict[str, Any]] = []
    run_search(strategy, budget=40, callbacks=[_RoundReporter(reports.append, {"x": 1})])
    assert len(reports) >= 2
    assert all(r["x"] == 1 and r["finished"] is False for r in reports)
    n = [r["n_evaluated"] for r in reports]
    best = [r["best_accuracy"] for r in reports]
    assert n == sorted(n) and n[-1] < 40 and best == sorted(best)


# ---- slow: a real local Ray --------------------------------------------------------------------
def _session_kill(proc: subprocess.Popen[bytes]) -> None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == proc.pid:
                    os.kill(int(entry.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue
    proc.wait(timeout=60)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(900)
def test_interrupted_sweep_resumes_without_losing_finished_trials(
        tmp_path: Path, nb201_table: Path) -> None:
    """Kill the driver (and its local Ray) mid-sweep; ``--resume`` finishes the rest."""
    out = tmp_path / "sw"
    f = tmp_path / "sweep.yaml"
    f.write_text(yaml.safe_dump({
        "base": {"search_space": "nasbench201", "budget": 100, "strategy": "evolution",
                 "benchmark": {"path": str(nb201_table),
                               "metric": "cifar10_val"}},
        "grid": {"device": ["pixel3_ms", "raspi4_ms"], "constraints.latency_ms": [8, 20]},
        "max_concurrent": 1, "out": str(out)}))
    cmd = [sys.executable, "-m", "nasforge.cli", "sweep", str(f), "--quiet"]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    log = tmp_path / "first.log"
    with log.open("wb") as fh:
        first = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True)  # its local Ray joins its session
    try:
        end = time.monotonic() + 400
        while time.monotonic() < end and first.poll() is None:
            if len(list(out.glob("runs/*/run.json"))) >= 1:
                break
            time.sleep(0.2)
        done_before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/run.json")}
        assert done_before, log.read_text(errors="replace")[-3000:]
    finally:
        _session_kill(first)
    assert len(done_before) < 4

    again = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 2 and "pass --resume" in again.stderr
    resumed = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, env=env,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 4 and (table["status"] == "finished").all()
    for name, mtime in done_before.items():
        # kept, not searched again (Tune may not have recorded the trial as finished before
        # the kill; its re-run then reports the run.json it finds)
        run_json = out / "runs" / name / "run.json"
        assert run_json.stat().st_mtime_ns == mtime
        best = json.loads(run_json.read_text())["summary"]["best"]["arch_id"]
        assert table.loc[table["trial_id"] == name, "best_arch_id"].iloc[0] == best
    manifest = json.loads((out / "sweep.json").read_text())
    assert manifest["grid"]["device"] == ["pixel3_ms", "raspi4_ms"]


def test_asha_scheduler_runs_to_the_budget() -> None:
    from nasforge.experiments.sweep.run import _scheduler_obj

    pytest.importorskip("ray")
    cfg = SweepConfig.from_dict(_sweep(scheduler={"name": "asha", "grace_period": 5}))
    sched = _scheduler_obj(cfg)
    assert sched._max_t == 20  # the budget
