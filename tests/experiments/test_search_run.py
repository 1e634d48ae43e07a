"""`nas search` / `nas run` end to end in tabular mode (NAS-Bench-201 CSV), resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.config import load_experiment
from nasforge.search_spaces.io import load_archs


def _nas(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasforge.cli", *args], capture_output=True,
                          text=True, **kw)  # type: ignore[call-overload]


def _tabular(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
            str(csv), "--metric", "cifar10_val", "--out", str(out), "--quiet", *extra]


def test_tabular_search_writes_the_four_outputs(nb201_table: Path, tmp_path: Path) -> None:
    csv = nb201_table
    out = tmp_path / "run"
    assert run_app(app, _tabular(csv, out, "--latency", "8", "--budget", "120", "--seed",
                                 "3")) == 0
    for f in ("best.yaml", "pareto.csv", "pareto.png", "run.json", "candidates.csv"):
        assert (out / f).stat().st_size > 0, f
    manifest = json.loads((out / "run.json").read_text())
    best = manifest["summary"]["best"]
    assert best["latency_ms"] <= 8.0
    assert manifest["summary"]["n_evaluated"] == 120
    assert manifest["device"]["provenance"] == "measured"
    assert manifest["accuracy"]["metric"] == "cifar10_val"
    assert manifest["name"].startswith("pixel3_ms_lat@")
    assert {"python", "numpy", "nasforge"} <= set(manifest["versions"])
    # the numbers are the table's: look the best arch up in the CSV
    arch = load_archs(out / "best.yaml")[0]
    table = pd.read_csv(csv).set_index("arch_str")
    row = table.loc[arch.to_arch_str()]  # type: ignore[attr-defined]
    assert row["cifar10_val"] == pytest.approx(best["accuracy"])
    assert row["pixel3_ms"] == pytest.approx(best["latency_ms"])
    # it is the best feasible among the evaluated candidates, and the front is non-dominated
    cands = pd.read_csv(out / "candidates.csv")
    feas = cands[cands["latency_ms"] <= 8.0]
    assert best["accuracy"] == pytest.approx(feas["accuracy"].max())
    front = pd.read_csv(out / "pareto.csv")
    for _, r in front.iterrows():
        dominated = cands[(cands["accuracy"] > r["accuracy"]) & (cands["latency_ms"] < r[
            "latency_ms"])]
        assert dominated.empty


def test_run_yaml_reproduces_the_flags(nb201_table: Path, tmp_path: Path) -> None:
    csv = nb201_table
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_app(app, _tabular(csv, a, "--latency", "8", "--budget", "60", "--strategy",
                                 "random")) == 0
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "search_space": "nasbench201", "device": "pixel3_ms", "strategy": "random",
        "benchmark": {"path": str(csv), "metric": "cifar10_val"},
        "constraints": {"latency_ms": 8}, "budget": 60, "out": str(b)}))
    assert run_app(app, ["run", str(exp), "--quiet"]) == 0
    ca = pd.read_csv(a / "candidates.csv")["arch_id"].tolist()
    cb = pd.read_csv(b / "candidates.csv")["arch_id"].tolist()
    assert ca == cb



def test_json_prints_the_manifest_alone_and_the_spec_forms_agree(
        nb201_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json``: the manifest on stdout and nothing else; ``--accuracy csv:...`` (the spec
    ``nas rank`` takes) and ``--benchmark --metric`` are one source; ``nas run --json`` too."""
    csv = nb201_table
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert run_app(app, _tabular(csv, a, "--budget", "12", "--strategy", "random")) == 0
    capsys.readouterr()
    args = ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--accuracy",
            f"csv:{csv}:cifar10_val", "--budget", "12", "--strategy", "random", "--json"]
    assert run_app(app, [*args, "--out", str(b)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out_dir"] == str(b) and printed["summary"]["n_evaluated"] == 12
    assert printed["config"]["accuracy"] == f"csv:{csv}:cifar10_val"
    ca = pd.read_csv(a / "candidates.csv")
    cb = pd.read_csv(b / "candidates.csv")
    assert ca.equals(cb)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({**printed["config"], "out": str(c)}))
    assert run_app(app, ["run", str(exp), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["n_evaluated"] == 12
    assert pd.read_csv(c / "candidates.csv").equals(ca)

def _count(db: Path) -> int:
    """Evaluated candidates in the search's Optuna study (its completed trials)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute(
                "select count(*) from trials where state = 'COMPLETE'").fetchone()[0])
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_search_resumes_without_loss_and_same_result(nb201_table: Path,
                                                            tmp_path: Path) -> None:
    csv = nb201_table
    full, killed = tmp_path / "full", tmp_path / "killed"
    args = ["--latency", "10", "--budget", "300", "--seed", "11"]
    assert _nas(*_tabular(csv, full, *args)).returncode == 0
    db = killed / "search.db"
    # every round written (--commit-every 0): the kill comes once 100 candidates are stored
    proc = subprocess.Popen([sys.executable, "-m", "nasforge.cli",
                             *_tabular(csv, killed, *args, "--commit-every", "0")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while _count(db) < 100 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the search finished before it could be killed (machine too fast)")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    n_at_kill = _count(db)
    assert 0 < n_at_kill < 300
    done = _nas(*_tabular(csv, killed, *args, "--resume"))
    assert done.returncode == 0, done.stderr
    a = pd.read_csv(full / "candidates.csv")
    b = pd.read_csv(killed / "candidates.csv")
    assert len(b) == 300
    assert b["arch_id"].tolist() == a["arch_id"].tolist()  # deterministic strategy, same run
    assert json.loads((killed / "run.json").read_text())["summary"]["best"] == json.loads(
        (full / "run.json").read_text())["summary"]["best"]


def test_bad_input_one_line_exit_2(nb201_table: Path, tmp_path: Path) -> None:
    csv = str(nb201_table)
    cases = [
        (_tabular(Path(csv), tmp_path / "x", "--latency", "0.000001"),
         "smallest achievable latency"),
        (["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark", csv,
          "--metric", "cifar10_vall", "--out", str(tmp_path / "y")], "cifar10_val"),
        (["search", "--space", "elasticvit", "--device", "pixel7", "--strategy", "evolutoin",
          "--out", str(tmp_path / "z")], "did you mean 'evolution'"),
        (["search", "--space", "elasticvit", "--device", "pixel7", "--supernet", "a.ckpt",
          "--predictor", "p", "--out", str(tmp_path / "w")], "one accuracy source"),
        (["search", "--space", "elasticvit", "--device", "pixle7"], "did you mean 'pixel7'"),
    ]
    for args, needle in cases:
        proc = _nas(*args)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(lines) == 1 and needle in lines[0], (args, proc.stderr)


def test_experiment_file_errors_name_the_field_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    for data, needle in [
        ({"search_space": "elasticvit", "device": "pixel7", "budget": "many"}, "budget"),
        ({"search_space": "elasticvit", "device": "pixel7", "constraints": {"latency": 3}},
         "constraints.latency: unknown field; did you mean 'latency_ms'"),
        ({"search_space": "elasticvit"}, "device: is required"),
        ({"search_space": "nasbench201", "device": "pixel3_ms", "benchmark": {"path": "x"}},
         "benchmark.metric: is required"),
    ]:
        bad.write_text(yaml.safe_dump(data))
        proc = _nas("run", str(bad))
        assert proc.returncode == 2, proc.stderr
        assert needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_shipped_examples_validate() -> None:
    from nasforge.cli._search import EXAMPLES

    files = sorted(EXAMPLES.glob("*.yaml"))
    assert files
    for f in files:
        if "sweep" in f.name:
            continue
        assert isinstance(load_experiment(f), ExperimentConfig)
