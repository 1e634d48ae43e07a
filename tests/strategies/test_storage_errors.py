"""A storage that cannot be used ends `nas search` in one line naming the storage and the
cause, exit 2, no traceback, no result written: trials edited outside nasforge (a value
rewritten as text or NULL), a garbage `journal:` file, `sqlite:///:memory:`, a `search.db`
past the file size limit (``RLIMIT_FSIZE`` in a child process), and a PostgreSQL server
stopped mid-search (retried, then one line with ``--resume``; the resume completes). The
README's `postgresql://USER@HOST:PORT/DB` form works with the installed driver.

The tests make their own tabular NB201 table (every cell, values from a hash), so none needs
the reference data."""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app
from tests.conftest import _free_port
from tests.conftest import _has_user
from tests.conftest import _pg_tool
from tests.strategies._stored import completed

_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
_RESULTS = ("best.yaml", "candidates.csv", "pareto.csv", "run.json")


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every NB201 cell with an accuracy and a latency drawn from its string's CRC."""
    lines = ["index,arch_str,cifar10_val,pixel3_ms"]
    for i, o in enumerate(itertools.product(_OPS, repeat=6)):
        s = f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"
        h = zlib.crc32(s.encode())
        lines.append(f"{i},{s},{50 + h % 4000 / 100},{1 + (h >> 12) % 2000 / 100}")
    path = tmp_path_factory.mktemp("nb201") / "nb201.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _args(csv: Path, out: Path, *extra: str) -> list[str]:
    return ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
            str(csv), "--metric", "cifar10_val", "--out", str(out), "--quiet", *extra]


def _one_line(code: int, err: str, out: Path, *needles: str) -> str:
    """Assert exit 2, one ``error:`` line holding every needle, no traceback, no result."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for n in needles:
        assert n in lines[0], (n, err)
    assert not any((out / f).exists() for f in _RESULTS), sorted(os.listdir(out))
    return lines[0]


def _run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_app(app, args)
    return code, capsys.readouterr().err


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "nasforge.cli", *args]


# ---- SQLite and journal files ------------------------------------------------------------------
@pytest.mark.parametrize(("flags", "change", "needle"), [
    (["--trial-params"], "UPDATE trial_values SET value = 'abc' WHERE trial_value_id = "
     "(SELECT MIN(trial_value_id) FROM trial_values)", "could not convert string to float"),
    (["--trial-params"], "UPDATE trial_values SET value = NULL WHERE trial_value_id = "
     "(SELECT MIN(trial_value_id) FROM trial_values)", "a stored value is NULL"),
    ([], "UPDATE nasforge_candidates SET vals = 'abc' WHERE number = 0",
     "are not float64 bytes"),
    ([], "UPDATE nasforge_candidates SET indices = NULL, n = 1, arch = '{' WHERE number = 0",
     "JSONDecodeError"),
    ([], "UPDATE nasforge_candidates SET indices = CAST(X'FF' || substr(indices, 2) AS BLOB) "
     "WHERE number = 0",
     "the indices of candidate 0 are not an arch of the study's row format"),
    ([], "UPDATE nasforge_candidates SET indices = X'FF' WHERE number = 0",
     "the row of candidate 0 holds 1 index bytes for"),
    ([], "DELETE FROM study_user_attributes WHERE key = 'nasforge_rows'",
     "the study has no nasforge_rows attribute")])
def test_a_stored_candidate_rewritten_is_named(table: Path, tmp_path: Path, flags: list[str],
                                               change: str, needle: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A value or an arch rewritten outside nasforge, in an Optuna trial (``--trial-params``
    writes trials) or in a row of the single writer's candidate table."""
    db = tmp_path / "s.db"
    assert run_app(app, _args(table, tmp_path / "first", "--budget", "12", "--storage",
                              f"sqlite:///{db}", *flags)) == 0
    con = sqlite3.connect(db)
    assert con.execute(change).rowcount == 1
    con.commit()
    con.close()
    capsys.readouterr()
    out = tmp_path / "again"
    code, err = _run_cli(_args(table, out, "--budget", "20", "--storage", f"sqlite:///{db}",
                               "--resume", *flags), capsys)
    _one_line(code, err, out, f"search storage 'sqlite:///{db}'", "cannot be read back",
              needle, "changed outside nasforge")


def test_a_garbage_journal_file_is_named(table: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "j.log"
    journal.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "run"
    code, err = _run_cli(_args(table, out, "--budget", "5", "--storage", f"journal:{journal}"),
                         capsys)
    _one_line(code, err, out, f"journal storage 'journal:{journal}'",
              "is not an Optuna journal file")
    journal.write_text('{"op_code": 99, "worker_id": "x"}\nnot json\n')
    code, err = _run_cli(_args(table, out, "--budget", "5", "--storage", f"journal:{journal}"),
                         capsys)
    _one_line(code, err, out, "is not an Optuna journal file")


def test_an_in_memory_database_is_refused(table: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code, err = _run_cli(_args(table, out, "--budget", "5", "--storage", "sqlite:///:memory:"),
                         capsys)
    _one_line(code, err, out, "'sqlite:///:memory:'", "in-memory database",
              "cannot resume from or share")


def test_a_search_db_past_the_file_size_limit_is_named(table: Path, tmp_path: Path) -> None:
    limit = 150_000

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "run"
    res = subprocess.run(_cli(*_args(table, out, "--budget", "2000")), preexec_fn=small_files,
                         capture_output=True, text=True, env=dict(os.environ), timeout=300)
    line = _one_line(res.returncode, res.stderr, out, f"'sqlite:///{out / 'search.db'}'",
                     f"file size limit of this process (ulimit -f: {limit} bytes)", "--resume")
    assert "database server" not in line


# ---- PostgreSQL ------------------------------------------------------------------------------
def test_the_readme_postgresql_url_form_works(table: Path, tmp_path: Path,
                                              postgres_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url)
    plain = f"postgresql://{url.username}@{url.host}:{url.port}/{url.database}"
    out = tmp_path / "run"
    assert run_app(app, _args(table, out, "--budget", "8", "--storage", plain,
                              "--study", "readme")) == 0
    assert run_app(app, _args(table, out, "--budget", "12", "--storage", plain,
                              "--study", "readme", "--resume")) == 0
    import pandas as pd

    assert len(pd.read_csv(out / "candidates.csv")) == 12


def test_a_missing_driver_is_named_not_the_server(table: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sqlalchemy")
    import importlib.util

    if importlib.util.find_spec("pg8000") is not None:
        pytest.skip("pg8000 is installed here")
    out = tmp_path / "run"
    code, err = _run_cli(_args(table, out, "--budget", "5", "--storage",
                               "postgresql+pg8000://me:secret@127.0.0.1:1/db"), capsys)
    line = _one_line(code, err, out, "'postgresql+pg8000://me:***@127.0.0.1:1/db'",
                     "needs the database driver 'pg8000', which is not installed")
    assert "secret" not in line and "server" not in line


class _Server:
    """A PostgreSQL server of this test's own (initdb + pg_ctl, as ``postgres_url`` does), to
    stop with ``pg_ctl stop -m immediate`` and start again."""

    def __init__(self, root: Path) -> None:
        initdb, self.pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
        if initdb is None or self.pg_ctl is None:
            pytest.skip("PostgreSQL (initdb, pg_ctl) not found")
        self.run_as: list[str] = []
        user = os.environ.get("USER") or "postgres"
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # initdb refuses root
            import pwd

            user = "postgres" if _has_user("postgres") else "nobody"
            pw = pwd.getpwnam(user)
            os.chown(root, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", user, "--"]
        self.data, self.log, self.port = root / "data", root / "server.log", _free_port()
        self.env = dict(os.environ, LC_ALL="C")
        subprocess.run([*self.run_as, initdb, "-D", str(self.data), "-A", "trust", "-U", user,
                        "--no-sync"], check=True, capture_output=True, env=self.env)
        self.url = f"postgresql://{user}@127.0.0.1:{self.port}/postgres"
        self.start()

    def _ctl(self, *args: str) -> None:
        assert self.pg_ctl is not None
        subprocess.run([*self.run_as, self.pg_ctl, "-D", str(self.data), *args], check=True,
                       capture_output=True, env=self.env)

    def start(self) -> None:
        self._ctl("-l", str(self.log), "-w", "-o",
                  f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c fsync=off",
                  "start")

    def stop(self) -> None:
        self._ctl("-m", "immediate", "stop")


@pytest.fixture
def server() -> Iterator[_Server]:
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="nasforge-pg-stop-"))  # reachable by the server's user
    srv = _Server(root)
    try:
        yield srv
    finally:
        subprocess.run([*srv.run_as, str(srv.pg_ctl), "-D", str(srv.data), "-m", "immediate",
                        "stop"], capture_output=True, env=srv.env)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_a_server_stopped_mid_search_ends_in_one_line_and_resume_completes(
        table: Path, tmp_path: Path, server: _Server) -> None:
    import pandas as pd

    budget = 400
    out = tmp_path / "run"
    # every round written (--commit-every 0): the server is stopped once 20 are stored
    cmd = _cli(*_args(table, out, "--budget", str(budget), "--storage", server.url,
                      "--seed", "5", "--commit-every", "0"))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    deadline = time.time() + 120
    while completed(server.url) < 20 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the search ended before the server was stopped"
    server.stop()
    stored_before = time.time()
    _, err = proc.communicate(timeout=120)
    assert time.time() - stored_before < 30  # a few retries, then the line
    _one_line(proc.returncode, err, out, f"'{server.url}'", "lost the connection",
              "--resume")
    server.start()
    kept = completed(server.url)
    assert kept >= 20  # what was evaluated survived
    res = subprocess.run([*cmd, "--resume"], capture_output=True, text=True,
                         env=dict(os.environ), timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(pd.read_csv(out / "candidates.csv")) == budget
    assert completed(server.url) == budget


def test_database_locked_names_sqlite_s_lock_only(tmp_path: Path) -> None:
    """What ``SearchStudy.init`` retries when it creates a study: SQLite's own "database is
    locked" (another process writing the file), raised here for real, through Optuna's wrap."""
    import optuna
    import sqlalchemy.exc as sa_exc

    from nasforge.strategies.storage._errors import database_locked

    db = tmp_path / "l.db"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held
    other = sqlite3.connect(db, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as info:
        other.execute("BEGIN IMMEDIATE")
    try:
        wrapped = sa_exc.OperationalError("BEGIN", {}, info.value)
        raise optuna.exceptions.StorageInternalError("commit failed") from wrapped
    except optuna.exceptions.StorageInternalError as exc:
        assert database_locked(exc)
    assert not database_locked(ValueError("locked"))  # no database error under it
    assert not database_locked(sqlite3.OperationalError("no such table: t2"))
    holder.execute("ROLLBACK")
    holder.close()
    other.close()
