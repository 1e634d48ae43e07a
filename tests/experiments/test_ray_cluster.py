"""Done-when test of ``nas sweep`` on a real two-node Ray cluster (both nodes on 127.0.0.1).

A head node and a worker node (1 CPU each, their own temp dirs) are started with
``ray start --block`` in their own sessions; ``nas sweep --address`` runs 8 cheap trials
(NAS-Bench-201 in tabular mode). Once at least two trials have finished and one is running on
the worker node, every process of the worker node is SIGKILLed (a node crash). The sweep must
still complete: the lost trial is retried on the head and resumes its study, and the finished
trials are neither re-run nor lost. Only the processes of the sessions this test started are
signalled (never ``ray stop``, which would stop every Ray instance on the machine).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray")

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _session_pids(sid: int) -> list[int]:
    """Processes of the session ``sid`` (a node started with ``start_new_session=True``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def _kill_session(proc: subprocess.Popen[bytes]) -> None:
    for pid in _session_pids(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _wait_for(log: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    raise RuntimeError(f"ray node did not start: {log.read_text(errors='replace')[-2000:]}")


class Cluster:
    """Two Ray nodes on this host, each in its own session, torn down by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                    # token authentication with this cluster's own token: independent of
                    # ~/.ray/auth_token, which a local ray.init() of Ray >= 2.5x creates
                    "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    # notice a dead node within a few seconds instead of ~30 s
                    "RAY_health_check_period_ms": "1000",
                    "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3"}

    def _start(self, name: str, args: list[str]) -> None:
        log = self.root / f"{name}.log"
        cmd = ["ray", "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
               "--temp-dir", str(self.root / name), "--disable-usage-stats", *args]
        with log.open("wb") as f:
            self.procs[name] = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT,
                                                env=self.env, start_new_session=True)
        _wait_for(log, "Ray runtime started", self.procs[name], timeout=180)

    def start(self) -> None:
        self._start("head", ["--head", "--port", str(self.port), "--include-dashboard",
                             "false"])
        self._start("worker", ["--address", self.address])

    def worker_session(self) -> int:
        return self.procs["worker"].pid

    def kill(self, name: str) -> None:
        proc = self.procs.get(name)
        if proc is not None:
            _kill_session(proc)

    def stop(self) -> None:
        for name in ("worker", "head"):
            self.kill(name)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # short path: Ray's unix sockets live under the temp dir (108-byte limit)
    root = Path(tempfile.mkdtemp(prefix="nfr", dir="/tmp"))
    c = Cluster(root)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def _attempts(run_dir: Path) -> list[dict[str, object]]:
    f = run_dir / "attempts.jsonl"
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def _running_on(session: int, runs: Path) -> Path | None:
    """A trial folder whose current attempt runs in ``session`` and has not finished."""
    for d in sorted(runs.glob("*")):
        att = _attempts(d)
        if att and not (d / "run.json").exists():
            try:
                if os.getsid(int(att[-1]["pid"])) == session:  # type: ignore[arg-type]
                    return d
            except ProcessLookupError:
                continue
    return None


def test_sweep_survives_losing_a_node(cluster: Cluster, tmp_path: Path,
                                      nb201_table: Path) -> None:
    bench = nb201_table
    out = tmp_path / "sweep"
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(json.dumps({
        "base": {"search_space": "nasbench201", "budget": 150,
                 "benchmark": {"path": str(bench), "metric": "cifar10_val"}},
        "grid": {"device": ["pixel3_ms", "raspi4_ms"], "constraints.latency_ms": [8, 20],
                 "strategy": ["random", "evolution"]},
        "resources_per_trial": {"cpu": 1}, "max_failures": 3, "out": str(out),
    }))
    log = tmp_path / "driver.log"
    with log.open("wb") as f:
        driver = subprocess.Popen(
            [sys.executable, "-m", "nasforge.cli", "sweep", str(sweep_file), "--address",
             cluster.address, "--quiet"], stdout=f, stderr=subprocess.STDOUT,
            env=cluster.env, start_new_session=True)
    try:
        runs = out / "runs"
        victim: Path | None = None
        end = time.monotonic() + 420
        while time.monotonic() < end and driver.poll() is None:
            finished = sorted(runs.glob("*/run.json")) if runs.exists() else []
            if len(finished) >= 2:
                victim = _running_on(cluster.worker_session(), runs)
                if victim is not None:
                    break
            time.sleep(0.2)
        assert victim is not None, "no trial was caught running on the worker node:\n" + \
            log.read_text(errors="replace")[-3000:]
        kept = {p.parent.name: p.stat().st_mtime_ns for p in runs.glob("*/run.json")}
        cluster.kill("worker")  # a node crash: raylet, its workers and the running trial

        rc = driver.wait(timeout=600)
        text = log.read_text(errors="replace")
        assert rc == 0, text[-4000:]
    finally:
        if driver.poll() is None:
            _kill_session(driver)

    table = pd.read_csv(out / "sweep.csv")
    assert len(table) == 8
    assert (table["status"] == "finished").all(), table.to_string()
    assert table["best_arch_id"].notna().all()
    # the lost trial was retried (on the head) and finished
    row = table[table["trial_id"] == victim.name].iloc[0]
    assert row["attempts"] >= 2
    assert (victim / "run.json").exists()
    nodes = {a["node_id"] for a in _attempts(victim)}
    assert len(nodes) == 2  # first attempt on the worker, the retry elsewhere
    # no finished result lost or re-run: same run.json, one attempt each
    for name, mtime in kept.items():
        assert (runs / name / "run.json").stat().st_mtime_ns == mtime
        assert int(table[table["trial_id"] == name]["attempts"].iloc[0]) == 1
    assert (out / "sweep_pareto.png").stat().st_size > 0
    print(json.dumps({"victim": victim.name, "retried_attempts": int(row["attempts"]),
                      "kept_finished": len(kept), "trials": len(table),
                      "attempts_total": int(table["attempts"].sum())}))
