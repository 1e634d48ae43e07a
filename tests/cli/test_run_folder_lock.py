"""Two processes, one folder (issue 26, class 4): every command that writes a run folder holds
its lock (nasforge._lock); a second writer stops with one line naming the folder and the
holder's pid, and the lock of a dead process is taken over. Real processes, no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app

REPO = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--space", "nasbench201_net", "--sampler", "uniform", "--data",
         "synthetic:32", "--input-size", "16", "--batch-size", "4", "--workers", "0",
         "--accelerator", "cpu", "--no-eval", "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def _one_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], err


def _wait_for_holder(lock: Path, proc: subprocess.Popen[str], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if lock.is_file() and lock.read_text().strip() == str(proc.pid):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"{proc.pid} never took {lock}")


def test_two_trainings_into_one_out_the_second_stops_and_the_log_is_not_interleaved(
        tmp_path: Path) -> None:
    out = tmp_path / "run"
    steps = 100
    first = subprocess.Popen([sys.executable, "-m", "nasforge.cli", *TRAIN, "--out", str(out),
                              "--steps", str(steps)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
    try:
        _wait_for_holder(out / ".nas.lock", first)
        second = subprocess.run([sys.executable, "-m", "nasforge.cli", *TRAIN, "--out",
                                 str(out), "--steps", str(steps)],
                                capture_output=True, text=True, env=_env(), cwd=REPO,
                                timeout=300)
        assert first.poll() is None, "the first run ended before the second started"
        assert second.returncode == 2
        _one_error(second.stderr, str(out), "in use by another training",
                   f"process {first.pid}")
    finally:
        out_text, err_text = first.communicate(timeout=600)
    assert first.returncode == 0, err_text
    rows = (out / "train_log.csv").read_text().splitlines()
    assert len(rows) == steps + 1  # the header and one row per step: one writer
    assert f"trained {steps}/{steps} steps" in out_text


def test_the_lock_of_a_killed_training_is_taken_over(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    holder = _Holder(out, "training")
    assert run_app(app, [*TRAIN, "--out", str(out), "--steps", "2"]) == 2
    _one_error(capsys.readouterr().err, f"process {holder.proc.pid}")
    assert sorted(p.name for p in out.iterdir()) == [".nas.lock"]  # nothing written
    holder.kill()
    assert (out / ".nas.lock").read_text().strip() == str(holder.proc.pid)  # stale
    assert run_app(app, [*TRAIN, "--out", str(out), "--steps", "2"]) == 0
    assert len((out / "train_log.csv").read_text().splitlines()) == 3


def test_a_training_that_fails_under_the_lock_leaves_no_folder_behind(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "new" / "run"
    missing = tmp_path / "no-images"  # found missing when the run opens its data
    code = run_app(app, [*TRAIN, "--out", str(out), "--steps", "2", "--data",
                         f"imagefolder:{missing}"])
    assert code == 2
    _one_error(capsys.readouterr().err, str(missing))
    assert not (tmp_path / "new").exists()


class _Holder:
    """Another process holding the lock of ``folder`` until it is killed (``kill -9``)."""

    def __init__(self, folder: Path, what: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import time\nfrom pathlib import Path\n"
             "from nasforge._lock import lock_run_folder\n"
             f"with lock_run_folder(Path({str(folder)!r}), {what!r}):\n"
             "    print('held', flush=True)\n    time.sleep(600)\n"],
            stdout=subprocess.PIPE, text=True, env=_env(), cwd=REPO)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "held"

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def test_export_into_a_folder_another_export_writes_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    out = tmp_path / "exports"
    holder = _Holder(out, "export")
    try:
        code = run_app(app, ["export", str(arch), "--format", "safetensors", "--out", str(out),
                             "--runs", "1"])
        assert code == 2
        _one_error(capsys.readouterr().err, str(out), "in use by another export",
                   f"process {holder.proc.pid}")
        assert sorted(p.name for p in out.iterdir()) == [".nas.lock"]  # nothing written
    finally:
        holder.kill()
    assert run_app(app, ["export", str(arch), "--format", "safetensors", "--out", str(out),
                         "--runs", "1"]) == 0  # a dead holder's lock is taken over
    assert ".nas.lock" not in {p.name for p in out.iterdir()}


def test_profile_of_a_device_another_profile_measures_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.hardware_models.profiling._folder import profiled_device_folder

    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    _, folder = profiled_device_folder("cpu-local", "torch", 1)
    holder = _Holder(folder, "profile of this device")
    try:
        code = run_app(app, ["profile", "--space", "elasticvit", "--budget", "4",
                             "--seed-blocks", "2", "--networks", "1", "--repeats", "1"])
        assert code == 2
        _one_error(capsys.readouterr().err, str(folder), f"process {holder.proc.pid}")
        assert sorted(p.name for p in folder.iterdir()) == [".nas.lock"]
    finally:
        holder.kill()
