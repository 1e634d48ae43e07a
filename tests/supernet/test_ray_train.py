"""``nas train --ray-address``: Ray Train's TorchTrainer on a local two-node cluster (head and
worker on 127.0.0.1, 1 CPU each, as the sweep tests start one); one training worker process
is SIGKILLed mid-run and the run completes from its last checkpoint."""

from __future__ import annotations

import contextlib
import csv
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

import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app

REPO = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--input-size", "16",
        "--resolution-scale", "0.0625", "--batch-size", "4", "--accelerator", "cpu",
        "--no-progress", "--no-eval", "--set", "train.warmup_steps=1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pids_matching(text: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_text(errors="replace"):
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(entry.name)) == sid:
                    pids.append(int(entry.name))
    return pids


class _Cluster:
    """Head and worker Ray nodes on this host, each in its own session, torn down by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.address = f"127.0.0.1:{_free_port()}"
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
                    "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def start(self, name: str, args: list[str]) -> None:
        log = self.root / f"{name}.log"
        cmd = ["ray", "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
               "--temp-dir", str(self.root / name), "--disable-usage-stats", *args]
        with log.open("wb") as f:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=self.env,
                                    start_new_session=True)
        self.procs.append(proc)
        end = time.monotonic() + 180
        while time.monotonic() < end and proc.poll() is None:
            if "Ray runtime started" in log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"ray node did not start: {log.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        for proc in reversed(self.procs):
            for pid in _session_pids(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)


@pytest.fixture
def cluster() -> Iterator[_Cluster]:
    pytest.importorskip("ray")
    root = Path(tempfile.mkdtemp(prefix="nfrt", dir="/tmp"))  # short: unix socket paths
    c = _Cluster(root)
    try:
        c.start("head", ["--head", "--port", c.address.rsplit(":", 1)[1],
                         "--include-dashboard", "false"])
        c.start("worker", ["--address", c.address])
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_unreachable_ray_address_is_one_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, ["train", "--out", str(tmp_path / "o"), "--steps", "2", *TINY,
                         "--ray-address", f"127.0.0.1:{_free_port()}"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no Ray head answers" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.timeout(900)
def test_ray_train_survives_a_killed_worker(cluster: _Cluster, tmp_path: Path) -> None:
    out = tmp_path / "run"
    log = tmp_path / "driver.log"
    before = set(_pids_matching("RayTrainWorker"))
    with log.open("wb") as f:
        driver = subprocess.Popen(
            [sys.executable, "-m", "nasforge.cli", "train", "--out", str(out), "--steps", "20",
             *TINY, "--ckpt-every", "2", "--ray-address", cluster.address, "--ray-workers",
             "2"], stdout=f, stderr=subprocess.STDOUT, env=cluster.env,
            start_new_session=True)
    try:
        killed = None
        end = time.monotonic() + 420
        while time.monotonic() < end and driver.poll() is None:
            rows = (out / "train_log.csv").read_text().count("\n") if (
                out / "train_log.csv").exists() else 0
            workers = sorted(set(_pids_matching("RayTrainWorker")) - before)
            if rows >= 5 and workers:  # checkpoints of steps 2 and 4 are written
                killed = workers[-1]
                os.kill(killed, signal.SIGKILL)
                break
            time.sleep(0.2)
        assert killed is not None, log.read_text(errors="replace")[-3000:]
        rc = driver.wait(timeout=600)
        assert rc == 0, log.read_text(errors="replace")[-4000:]
    finally:
        if driver.poll() is None:
            for pid in _session_pids(driver.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    assert "trained 20/20 steps on 2 Ray Train workers" in log.read_text(errors="replace")
    with (out / "train_log.csv").open(newline="") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == list(range(20))  # every step once: resumed, not restarted or repeated
