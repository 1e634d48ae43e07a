"""Shared fixtures: the generated NB201 table the tests of behaviour run on; the reference data
folder (``../shared/data`` beside the repository) that only the ``fidelity`` tests read; how the
suite shares the machine when pytest-xdist runs it in several worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Several workers share the cores: torch's default of one thread per core makes every
    # worker (and the subprocesses the tests start, which inherit this) fight for all of them.
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def nb201_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated NAS-Bench-201 table (every cell; the reference table's columns and dtypes,
    made-up figures: :mod:`tests.nb201_table`), written once per session (xdist worker)."""
    from tests.nb201_table import write_nb201_table

    return write_nb201_table(tmp_path_factory.mktemp("nb201") / "nb201_dev.csv")


def reference_data(*parts: str) -> Path:
    """``../shared/data/PARTS``, the measured reference data, for a ``fidelity`` test.

    Skips the test when it is missing, unless ``NASFORGE_REQUIRE_SHARED=1`` (CI), where a
    missing folder fails it.
    """
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        msg = (f"reference data {path} not found (the fidelity checks need the measured data "
               "in ../shared/data beside the repository, which a clone does not have)")
        if os.environ.get("NASFORGE_REQUIRE_SHARED") == "1":
            pytest.fail(msg + " (NASFORGE_REQUIRE_SHARED=1)")
        pytest.skip(msg)
    return path


@pytest.fixture
def shared_data(request: pytest.FixtureRequest) -> Path:
    """The measured reference data folder, for tests marked ``fidelity`` only (tests of
    behaviour use generated data such as :func:`nb201_table`); see :func:`reference_data`."""
    if request.node.get_closest_marker("fidelity") is None:
        pytest.fail(f"{request.node.nodeid} reads ../shared/data but is not marked "
                    "@pytest.mark.fidelity: tests of behaviour make their own data")
    return reference_data()


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
                    ) -> None:
    """Every test writes its cache (imported tables, quick supernets) to a temp folder."""
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


# ---- PostgreSQL: a throw-away server for the tests of shared Optuna studies -------------------
_PG_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                "/usr/lib/postgresql/14/bin")


def _pg_tool(name: str) -> str | None:
    import shutil

    found = shutil.which(name)
    if found:
        return found
    for d in _PG_BIN_DIRS:
        if (Path(d) / name).is_file():
            return str(Path(d) / name)
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server started for the session (``initdb`` + ``pg_ctl start`` in a temp
    folder, on a free local port, trust auth), stopped at the end; yields the URL of its
    database ``postgres``.

    Skips when ``initdb``/``pg_ctl`` or the ``psycopg2`` driver is missing, unless
    ``NASFORGE_REQUIRE_POSTGRES=1`` (CI), where a missing server fails the test.
    """
    import getpass
    import importlib.util
    import os
    import shutil
    import subprocess
    import tempfile

    required = os.environ.get("NASFORGE_REQUIRE_POSTGRES") == "1"
    server = os.environ.get("NASFORGE_POSTGRES_URL")
    if server:  # a server started for the whole run (CI's): a database of our own on it
        yield from _database_on(server)
        return
    initdb, pg_ctl = _pg_tool("initdb"), _pg_tool("pg_ctl")
    missing = [n for n, t in (("initdb", initdb), ("pg_ctl", pg_ctl)) if t is None]
    if importlib.util.find_spec("psycopg2") is None:
        missing.append("psycopg2 (pip install 'nasforge[postgres]')")
    if missing:
        msg = f"PostgreSQL not available: {', '.join(missing)} not found"
        if required:
            pytest.fail(msg + " (NASFORGE_REQUIRE_POSTGRES=1)")
        pytest.skip(msg)
    assert initdb is not None and pg_ctl is not None
    # a folder of its own under the system temp dir: pytest's base temp is private to this
    # user, and a server run as another user (below) could not reach it
    root = Path(tempfile.mkdtemp(prefix="nasforge-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    user = getpass.getuser()
    env = dict(os.environ, LC_ALL="C")
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
        import pwd

        user = "postgres" if _has_user("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", user, "--"]
    subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", user,
                    "--no-sync"], check=True, capture_output=True, env=env)
    port = _free_port()
    log = root / "server.log"
    if run_as:
        log.touch()
        os.chown(log, pwd.getpwnam(user).pw_uid, pwd.getpwnam(user).pw_gid)
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
                    "start"], check=True, capture_output=True, env=env)
    try:
        yield f"postgresql+psycopg2://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, env=env)
        shutil.rmtree(root, ignore_errors=True)


def _database_on(server: str) -> Iterator[str]:
    """A fresh database on the running server ``server`` (a SQLAlchemy URL of a database
    there), dropped at the end: xdist workers sharing one server never see each other's
    studies."""
    import os

    import sqlalchemy
    import sqlalchemy.orm

    name = f"nasforge_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
    engine = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(sqlalchemy.engine.make_url(server).set(database=name))
    finally:
        sqlalchemy.orm.close_all_sessions()
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def _has_user(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``ray`` share one xdist group: two local Ray instances started side by side
    find each other (``ray.init()`` joins the latest cluster it knows of) and compete for the
    same cores, so they run one after another on one worker (``--dist loadgroup``)."""
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(pytest.mark.xdist_group("ray"))
