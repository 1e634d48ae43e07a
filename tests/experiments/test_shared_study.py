"""Several `nas search` processes on one study (tabular NB201): the budget is the study's,
an arch is evaluated once (a small race margin allowed), and a worker killed with kill -9 and
restarted loses nothing. SQLite and PostgreSQL. Plus the CLI's one-line errors for bad
storages and studies, and the run-folder lock."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app

#: large enough that both workers are still running after each one's restart: with persistence
#: in rounds (issue 25) one worker got through a 200-candidate study while the other was
#: starting, so the test no longer exercised sharing
BUDGET = 1000


def _args(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
            str(csv), "--metric", "cifar10_val", "--out", str(out), "--quiet", *extra]


def _count(url: str) -> int:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    engine = create_engine(url)
    try:
        with engine.connect() as con:
            return int(con.execute(text(
                "select count(*) from trials where state = 'COMPLETE'")).scalar() or 0)
    except Exception:  # no schema yet
        return 0
    finally:
        engine.dispose()


def _workers_killed_once(csv: Path, url: str, tmp: Path, seed: int) -> None:
    """Two workers; each is kill -9-ed once at a random moment and restarted."""
    rng = random.Random(seed)
    cmd = [sys.executable, "-m", "nasforge.cli"]

    def start(w: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*cmd, *_args(csv, tmp / f"w{w}", "--budget", str(BUDGET), "--storage", url,
                          "--study", "shared", "--worker", str(w), "--seed", "3")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    procs = {w: start(w) for w in (0, 1)}
    kill_at = {w: rng.randint(10, BUDGET - 60) for w in (0, 1)}
    killed: set[int] = set()
    deadline = time.time() + 400
    while len(killed) < 2 and time.time() < deadline:
        n = _count(url)
        for w in (0, 1):
            if w not in killed and n >= kill_at[w]:
                if procs[w].poll() is None:
                    os.kill(procs[w].pid, signal.SIGKILL)
                procs[w].wait()
                killed.add(w)
                procs[w] = start(w)  # restarted: same command
        time.sleep(0.2)
    for w, p in procs.items():
        _, err = p.communicate(timeout=max(10.0, deadline - time.time()))
        assert p.returncode == 0, (w, err.decode()[-2000:])


def _check_study(url: str) -> None:
    trials = optuna.load_study(storage=url, study_name="shared").get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    keys = [t.user_attrs["arch_id"] for t in trials]
    assert len(trials) == BUDGET  # the study's budget: evaluated, never more
    assert len({t.number for t in trials}) == BUDGET  # no duplicate sequence numbers
    assert len(keys) - len(set(keys)) <= 0.02 * BUDGET  # duplicates <= 2 %
    assert {t.user_attrs["worker"] for t in trials} == {0, 1}


@pytest.mark.slow
def test_two_workers_killed_and_restarted_sqlite(nb201_table: Path, tmp_path: Path) -> None:
    csv = nb201_table
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    _workers_killed_once(csv, url, tmp_path, seed=1)
    _check_study(url)


@pytest.mark.slow
def test_two_workers_killed_and_restarted_postgres(nb201_table: Path, tmp_path: Path,
                                                   postgres_url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy import text

    csv = nb201_table
    db = f"shared_{uuid.uuid4().hex[:8]}"
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as con:
        con.execute(text(f"CREATE DATABASE {db}"))
    engine.dispose()
    url = postgres_url.rsplit("/", 1)[0] + f"/{db}"
    _workers_killed_once(csv, url, tmp_path, seed=2)
    _check_study(url)


# ---- one line, exit 2 ----------------------------------------------------------------------------
def test_bad_storage_and_study_one_line_exit_2(nb201_table: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    def _one_line_exit_2(args: list[str], needle: str) -> None:
        code = run_app(app, args)
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2, err
        assert len(lines) == 1 and needle in lines[0], err

    csv = nb201_table
    _one_line_exit_2(_args(csv, tmp_path / "a", "--storage", "nodb://x/y"),
                     "scheme 'nodb' is not one Optuna knows")
    _one_line_exit_2(_args(csv, tmp_path / "b", "--storage",
                           "postgresql+psycopg2://nobody@127.0.0.1:1/none"),
                     "cannot open search storage")
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert run_app(app, _args(csv, tmp_path / "c", "--budget", "10", "--storage", url,
                              "--study", "evo")) == 0
    _one_line_exit_2(_args(csv, tmp_path / "d", "--budget", "10", "--storage", url,
                           "--study", "evo", "--strategy", "random"),
                     "strategy")
    _one_line_exit_2(_args(csv, tmp_path / "e", "--budget", "10", "--storage", url,
                           "--study", "evo", "--device", "raspi4_ms"),
                     "device")


def test_search_prints_the_dashboard_command_and_report_reads_the_study(
        nb201_table: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    csv = nb201_table
    args = [a for a in _args(csv, tmp_path / "run", "--budget", "12", "--latency", "10")
            if a != "--quiet"]
    assert run_app(app, args) == 0
    out = capsys.readouterr().out.replace("\n", "")
    url = f"sqlite:///{tmp_path / 'run' / 'search.db'}"
    assert f"optuna-dashboard {url}" in out
    best = json.loads((tmp_path / "run" / "run.json").read_text())["summary"]["best"]
    assert run_app(app, ["report", url, f"{url}#nasforge", str(tmp_path / "run"), "--out",
                         str(tmp_path / "r.png")]) == 0
    from nasforge.experiments.report import make_report

    table = make_report([url], tmp_path / "r2.png").table
    assert table["best arch_id"].tolist() == [best["arch_id"]]
    assert table["evaluations"].tolist() == [12]
    assert run_app(app, ["report", f"{url}#nope", "--out", str(tmp_path / "r3.png")]) == 2
    assert "no nasforge study 'nope'" in capsys.readouterr().err


def test_two_searches_into_one_out_folder_are_detected(tmp_path: Path) -> None:
    from nasforge.errors import InvalidInputError
    from nasforge.experiments._outputs import lock_out

    out = tmp_path / "run"
    with lock_out(out):
        child = subprocess.run(
            [sys.executable, "-c", "from pathlib import Path\n"
             "from nasforge.experiments._outputs import lock_out\n"
             f"with lock_out(Path({str(out)!r})): pass"],
            capture_output=True, text=True, env=dict(os.environ))
        assert child.returncode != 0 and "in use by another search" in child.stderr
    with lock_out(out):  # released: the next run takes it
        pass
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="cannot write the run folder"), \
            lock_out(tmp_path / "file"):
        pass


def test_a_finished_evolution_search_extends_with_resume(nb201_table: Path,
                                                         tmp_path: Path) -> None:
    """The population scaled to the first budget is kept, so the larger budget is accepted
    and continues the same search."""
    import pandas as pd

    csv = nb201_table
    out = tmp_path / "run"
    assert run_app(app, _args(csv, out, "--budget", "30", "--seed", "4")) == 0
    first = pd.read_csv(out / "candidates.csv")["arch_id"].tolist()
    assert run_app(app, _args(csv, out, "--budget", "45", "--seed", "4", "--resume")) == 0
    more = pd.read_csv(out / "candidates.csv")["arch_id"].tolist()
    assert len(first) == 30 and len(more) == 45 and more[:30] == first
