"""The ``executorch`` profiler backend, the ``cpu-local-executorch`` device, and phones running
``executor_runner`` over (the stand-in) adb.

Lowering costs seconds per block, so the runner test lowers two tiny convs; the profile and the
stand-in phone's run lower six seeded blocks (slow).
"""

from __future__ import annotations

import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models.profiling._executorch_adb import parse_executor_runner_output

FAKE_ADB = Path(__file__).with_name("fake_adb.py")
TINY = ("--budget", "6", "--seed-blocks", "6", "--n-archs", "2", "--repeats", "2")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_parse_executor_runner_output_drops_warmup() -> None:
    log = "I 00:00:00.1 executorch:executor_runner.cpp:{}] {}"
    lines = [log.format(300, f"Iteration {i} of 5: {ms} ms")
             for i, ms in enumerate([9.0, 2.0, 3.0, 4.0, 5.0], start=1)]
    text = "\n".join([*lines, log.format(310, "Model executed successfully 5 time(s) in 23.0 ms.")])
    avg, std, runs = parse_executor_runner_output(text, warmup=2)
    assert (avg, runs) == (4.0, 3) and std == pytest.approx(1.0)
    avg, std, runs = parse_executor_runner_output(text.split("\n")[-1], warmup=2)
    assert (avg, runs) == (23.0 / 5, 5) and math.isnan(std)
    with pytest.raises(InvalidInputError, match="no 'Model executed successfully'") as e:
        parse_executor_runner_output("x\nLoading of method forward failed with status 0x12\n")
    assert "0x12" in str(e.value) and "\n" not in str(e.value)


def test_executorch_runner_measures_and_caches(tmp_path: Path) -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models.profiling._executorch_runner import ExecutorchRunner

    runner = ExecutorchRunner(1, repeats=3, cache_root=tmp_path / "pte")
    items = [(nn.Conv2d(4, 4, 3, padding=1), (1, 4, 16, 16)),
             (nn.Sequential(nn.Conv2d(4, 32, 3, padding=1), nn.Conv2d(32, 32, 3, padding=1)),
              (1, 4, 16, 16))]
    small, big = runner.measure(items, keys=["c4", "c32"])
    assert 0 < small.ms < big.ms and small.count >= 2 and math.isfinite(small.rel_spread)
    assert len(list((tmp_path / "pte").glob("*.pte"))) == 2
    assert runner.cache.outside("c4", (1, 4, 16, 16)) == {}
    assert "ExecuTorch" in runner.runtime() and "XNNPACK" in runner.runtime()
    assert runner.config()["backend"] == "executorch"


def test_cpu_local_executorch_says_how_to_profile(cache: Path) -> None:
    from nasforge.hardware_models import get_device

    with pytest.raises(MissingLatencyError, match="--backend executorch"):
        get_device("cpu-local-executorch")


@pytest.mark.slow
def test_executorch_profile_is_cpu_local_executorch(cache: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models import get_device
    from nasforge.search_spaces import get_space

    rc, _, err = _run(capsys, "profile", "--device", "cpu-local", "--backend", "executorch",
                      "--space", "elasticvit", "--networks", "0", *TINY)
    assert rc == 0, err
    model = get_device("cpu-local-executorch")
    assert model.profile.name == "cpu-local-executorch-t1"
    assert "ExecuTorch" in model.profile.runtime
    assert model.predict(get_space("elasticvit").min_arch()) > 0
    assert len(list((cache / "executorch").glob("*.pte"))) >= 6


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """A stand-in phone: ``adb`` first on PATH, serial ``FAKE01``, executor_runner installed."""
    bindir, root = tmp_path / "bin", tmp_path / "phone"
    bindir.mkdir()
    adb = bindir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + FAKE_ADB.read_text())
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    tool = root / "data" / "local" / "tmp" / "executor_runner"
    tool.parent.mkdir(parents=True)
    tool.write_text("stand-in")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_SERIALS", "FAKE01")
    return root


def test_adb_executorch_missing_runner_is_one_line(phone: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("executorch")
    (phone / "data" / "local" / "tmp" / "executor_runner").unlink()
    rc, _, err = _run(capsys, "profile", "--device", "myphone", "--backend", "adb-executorch",
                      "--space", "elasticvit", *TINY)
    assert rc == 2 and "executor_runner is not on phone FAKE01" in err
    assert "EXECUTORCH_BUILD_XNNPACK" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(capsys, "profile", "--device", "cpu-local", "--backend",
                      "adb-executorch", "--space", "elasticvit")
    assert rc == 2 and "measures a phone" in err


def test_adb_executorch_pushes_and_times_on_the_phone(phone: Path, tmp_path: Path) -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models.profiling import make_runner

    runner = make_runner("adb-executorch", repeats=2)
    items = [(nn.Conv2d(3, 8, 3, padding=1), (1, 3, 16, 16))]
    (got,) = runner.measure(items, keys=["conv8"])
    assert got.ms > 0 and got.count >= 1 and runner.passes == 2  # median of the faster half
    pushed = list((phone / "data" / "local" / "tmp" / "nasforge").glob("*.pte"))
    assert len(pushed) == 1 and pushed[0].stat().st_size > 0
    assert runner.config()["serial"] == "FAKE01" and "executor_runner" in runner.runtime()


@pytest.mark.slow
def test_adb_executorch_stand_in_profile(phone: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models import get_device
    from nasforge.search_spaces import get_space

    rc, _, err = _run(capsys, "profile", "--device", "myphone", "--backend", "adb-executorch",
                      "--serial", "FAKE01", "--space", "elasticvit", "--networks", "0", *TINY)
    assert rc == 0, err
    model = get_device("myphone")
    prof = model.profile.extra["profiler"]
    assert prof["backend"] == "adb-executorch" and prof["serial"] == "FAKE01"
    assert "executor_runner" in model.profile.runtime
    assert len(list((phone / "data" / "local" / "tmp" / "nasforge").glob("*.pte"))) >= 6
    assert model.predict(get_space("elasticvit").min_arch()) > 0


@pytest.mark.slow
def test_executorch_runner_lowers_in_worker_processes(tmp_path: Path) -> None:
    pytest.importorskip("executorch")
    from nasforge.hardware_models.profiling._executorch import method_call
    from nasforge.hardware_models.profiling._executorch_runner import ExecutorchRunner

    with pytest.raises(InvalidInputError, match="--jobs must be >= 1"):
        ExecutorchRunner(1, workers=0)
    runner = ExecutorchRunner(1, workers=2, repeats=2, cache_root=tmp_path / "pte")
    items = [(nn.Conv2d(4, 4, 3, padding=1), (1, 4, 8, 8)), (nn.Conv2d(4, 6, 1), (1, 4, 8, 8))]
    files = runner.lower(items, keys=["c4", "c6"])
    assert [f.stat().st_size > 0 for f in files] == [True, True]  # type: ignore[union-attr]
    outs = [method_call(f)[1](np.zeros((1, 4, 8, 8), np.float32)) for f in files]
    assert [o.shape[1] for o in outs] == [4, 6]
