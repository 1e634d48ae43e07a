"""``nas report``: one page comparing run folders (synthetic ones, and one real tabular run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.cli._app import app
from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.experiments.report import best_so_far
from nasforge.experiments.report import load_run
from nasforge.experiments.report import make_report


def _fake_run(root: Path, name: str, device: str, budget: float, strategy: str,
              seed: int) -> Path:
    """A run folder as ``run_experiment`` writes it, with seeded random candidates."""
    rng = np.random.default_rng(seed)
    n = 40
    lat = rng.uniform(5, 40, n)
    acc = 60 + 0.6 * lat + rng.normal(0, 2, n)
    feas = lat <= budget
    ids = [f"{seed:02d}{i:014x}" for i in range(n)]
    cands = pd.DataFrame({"step": np.arange(n) // 8, "arch_id": ids, "accuracy": acc,
                          "latency_ms": lat, "mflops": lat * 10, "params_m": lat / 10,
                          "feasible": feas, "arch": ["{}"] * n})
    idx = np.flatnonzero(feas)
    front = [i for i in idx if not any(lat[j] <= lat[i] and acc[j] > acc[i] for j in idx)]
    pareto = cands.iloc[front].sort_values("latency_ms")
    run = root / name
    run.mkdir(parents=True)
    cands.to_csv(run / "candidates.csv", index=False)
    pareto.to_csv(run / "pareto.csv", index=False)
    b = int(idx[np.argmax(acc[idx])])
    best = {"arch_id": ids[b], "latency_ms": float(lat[b]), "accuracy": float(acc[b]),
            "mflops": float(lat[b] * 10), "params_m": float(lat[b] / 10)}
    (run / "run.json").write_text(json.dumps({
        "config": {"search_space": "elasticvit", "device": device, "seed": seed,
                   "strategy": {"name": strategy}, "constraints": {"latency_ms": budget}},
        "summary": {"name": f"{device}_lat@{best['latency_ms']:.1f}ms", "best": best,
                    "n_evaluated": n, "pareto_size": len(pareto), "device": device,
                    "strategy": strategy, "seed": seed, "latency_budget_ms": budget}}))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    return [_fake_run(tmp_path, "a", "pixel6", 25, "evolution", 0),
            _fake_run(tmp_path, "b", "pixel6", 15, "random", 1),
            _fake_run(tmp_path, "c", "pixel7", 25, "evolution", 2)]


def test_report_png_html_and_table(runs: list[Path], tmp_path: Path) -> None:
    out = make_report(runs, tmp_path / "rep" / "report.png", html=True)
    assert out.png.stat().st_size > 20_000
    assert out.html is not None and out.html.suffix == ".html"
    page = out.html.read_text()
    assert "data:image/png;base64," in page
    assert list(out.table["run"]) == ["a", "b", "c"]
    assert list(out.table.columns) == [
        "run", "device", "latency budget (ms)", "strategy", "seed", "evaluations",
        "best arch_id", "latency (ms)", "accuracy (%)", "MFLOPs"]
    for run in runs:
        best = json.loads((run / "run.json").read_text())["summary"]["best"]
        assert best["arch_id"] in page
        row = out.table[out.table["run"] == run.name].iloc[0]
        assert row["latency (ms)"] <= row["latency budget (ms)"]
    assert set(out.table["device"]) == {"pixel6", "pixel7"}


def test_best_so_far_ignores_infeasible_candidates() -> None:
    frame = pd.DataFrame({"accuracy": [90.0, 50.0, 40.0, 70.0, 60.0],
                          "feasible": [False, True, True, True, True]})
    curve = best_so_far(frame)
    assert np.isnan(curve[0])
    np.testing.assert_array_equal(curve[1:], [50.0, 50.0, 70.0, 70.0])


def test_duplicate_labels_are_told_apart(tmp_path: Path) -> None:
    a = _fake_run(tmp_path / "x", "run", "pixel6", 25, "random", 0)
    b = _fake_run(tmp_path / "y", "run", "pixel6", 25, "random", 1)
    out = make_report([a, b], tmp_path / "r.png")
    assert out.table["run"].nunique() == 2


def test_bad_inputs(tmp_path: Path, runs: list[Path]) -> None:
    with pytest.raises(InvalidInputError, match=r"is not a run folder: it has no run\.json"):
        load_run(tmp_path)
    with pytest.raises(InvalidInputError, match="at least one run folder"):
        make_report([], tmp_path / "r.png")
    with pytest.raises(InvalidInputError, match=r"must name a \.png file"):
        make_report(runs, tmp_path / "r.pdf")
    (runs[0] / "pareto.csv").write_text("arch_id,acc\nx,1\n")
    with pytest.raises(InvalidInputError, match=r"pareto.csv: missing column\(s\) accuracy"):
        load_run(runs[0])


def test_nas_report_cli(runs: list[Path], tmp_path: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "cli.png"
    assert run_app(app, ["report", *map(str, runs), "--out", str(png), "--html"]) == 0
    assert png.exists() and png.with_suffix(".html").exists()
    assert "wrote" in capsys.readouterr().out
    assert run_app(app, ["report", str(tmp_path / "nothing")]) == 2
    assert "has no run.json" in capsys.readouterr().err


def test_report_of_real_runs(tmp_path: Path, nb201_table: Path) -> None:
    """The runner's folders (tabular NB201 on two measured devices) make a report."""
    from nasforge.experiments.config import ExperimentConfig
    from nasforge.experiments.runner import run_experiment

    dirs = []
    for device, budget in (("pixel3_ms", 8), ("raspi4_ms", 20)):
        cfg = ExperimentConfig.from_dict({
            "search_space": "nasbench201", "device": device, "budget": 30,
            "benchmark": {"path": str(nb201_table),
                          "metric": "cifar10_val"},
            "strategy": "random", "constraints": {"latency_ms": budget},
            "out": str(tmp_path / device)})
        dirs.append(run_experiment(cfg, progress=False).out_dir)
    out = make_report(dirs, tmp_path / "real.png", html=True)
    assert out.table["best arch_id"].notna().all()
    assert len(best_so_far(load_run(dirs[0]).candidates)) == 30
