"""How a single-writer search persists (issue 25), at the edge: ``--commit-every`` / YAML
``commit_every`` (seconds between writes) and ``--trial-params`` / ``trial_params`` (Optuna
trials with the arch also as Optuna params, not rows of the candidate table). Bad values are
one line and exit 2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nasforge.errors import ConfigError
from nasforge.experiments.config import ExperimentConfig
from nasforge.strategies.storage import write_trials
from tests.strategies.test_resume import _nb201_table


def test_yaml_persist_options_round_trip_and_defaults() -> None:
    base = {"search_space": "nasbench201", "device": "pixel3"}
    cfg = ExperimentConfig.from_dict({**base, "commit_every": 0, "trial_params": True})
    assert (cfg.commit_every, cfg.trial_params) == (0.0, True)
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg
    plain = ExperimentConfig.from_dict(base)
    assert (plain.commit_every, plain.trial_params) == (1.0, False)
    assert not {"commit_every", "trial_params"} & plain.to_dict().keys()


@pytest.mark.parametrize(("field", "value", "needle"), [
    ("commit_every", -1, "commit_every: must be a number of seconds in 0..3600, got -1"),
    ("commit_every", float("nan"), "got nan"),
    ("commit_every", 7200, "got 7200"),
    ("trial_params", "yes", "trial_params: must be true or false, got 'yes'"),
])
def test_bad_persist_options_are_one_line(field: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        ExperimentConfig.from_dict({"search_space": "nasbench201", "device": "pixel3",
                                    field: value})
    assert needle in str(info.value) and "\n" not in str(info.value)


def _search(table: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nasforge.cli", "search", "--space", "nasbench201", "--device",
         "pixel3_ms", "--benchmark", str(table), "--metric", "cifar10_val", "--budget", "30",
         "--seed", "2", "--out", str(out), "-q", *extra],
        capture_output=True, text=True, timeout=300)


def _count(db: Path, table: str) -> int:
    """Rows of ``table``; candidates of the candidate table (a row holds ``n``)."""
    each = "COALESCE(SUM(n), 0)" if table == "nasforge_candidates" else "COUNT(*)"
    con = sqlite3.connect(db)
    try:
        return int(con.execute(f"SELECT {each} FROM {table}").fetchone()[0])
    finally:
        con.close()


def test_trial_params_are_stored_only_when_asked(tmp_path: Path) -> None:
    table = _nb201_table(tmp_path / "nb201.csv")
    plain = _search(table, tmp_path / "plain")
    asked = _search(table, tmp_path / "asked", "--trial-params", "--commit-every", "0")
    assert plain.returncode == 0 and asked.returncode == 0, plain.stderr + asked.stderr
    # by default one row per candidate in the candidate table, no trial
    assert _count(tmp_path / "plain" / "search.db", "nasforge_candidates") == 30
    assert _count(tmp_path / "plain" / "search.db", "trials") == 0
    assert _count(tmp_path / "asked" / "search.db", "trials") == 30
    assert _count(tmp_path / "asked" / "search.db", "trial_params") == 30 * 6  # 6 NB201 edges
    # the rows become trials when asked (what optuna-dashboard reads): no params
    assert write_trials(f"sqlite:///{tmp_path / 'plain' / 'search.db'}", "nasforge") == 30
    assert _count(tmp_path / "plain" / "search.db", "trials") == 30
    assert _count(tmp_path / "plain" / "search.db", "trial_params") == 0
    assert _count(tmp_path / "plain" / "search.db", "nasforge_candidates") == 0
    csv = [(tmp_path / d / "candidates.csv").read_text() for d in ("plain", "asked")]
    assert csv[0] == csv[1]  # the same search either way


@pytest.mark.parametrize("value", ["-1", "3601", "soon"])
def test_bad_commit_every_flag_is_one_line_exit_2(value: str, tmp_path: Path) -> None:
    res = _search(tmp_path / "none.csv", tmp_path / "run", "--commit-every", value)
    assert res.returncode == 2, res.stderr[-2000:]
    assert "--commit-every" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_nas_trials_turns_a_single_writer_s_rows_into_trials_once(tmp_path: Path) -> None:
    table = _nb201_table(tmp_path / "nb201.csv")
    assert _search(table, tmp_path / "run").returncode == 0
    db = tmp_path / "run" / "search.db"

    def trials(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nasforge.cli", "trials", *args],
                              capture_output=True, text=True, timeout=120)

    first, again = trials(str(db)), trials(f"sqlite:///{db}")
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.startswith("30 candidate rows written as Optuna trials")
    assert again.stdout.startswith("0 candidate rows")
    assert "optuna-dashboard sqlite:///" in first.stdout
    assert (_count(db, "trials"), _count(db, "nasforge_candidates")) == (30, 0)
    for args, needle in [((str(tmp_path / "none.db"),), "no such file"),
                         ((str(db), "--study", "other"), "has no study 'other'")]:
        bad = trials(*args)
        assert bad.returncode == 2 and needle in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none.db").exists()  # a missing file is not created
