"""LiteRT runtime, the shared measurement protocol, and phones over (a stand-in) adb.

Conversions are slow (seconds per block, tens of seconds per whole subnet), so the tests convert
single small blocks, the two profiles (LiteRT here, the stand-in phone) measure the same seeded
six blocks and share their conversions (``shared_tflite`` in conftest), and the stand-in phone's
validate run measures a small real ``.tflite`` in place of each subnet (whole-subnet conversion
is tested in ``tests/experiments/test_tflite.py``).
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.hardware_models.profiling._adb import parse_benchmark_output
from nasforge.hardware_models.profiling._protocol import pinned
from nasforge.hardware_models.profiling._protocol import robust_estimate
from nasforge.hardware_models.profiling._protocol import self_agreement
from tests.hardware_models.conftest import seed_stand_ins

FAKE_ADB = Path(__file__).with_name("fake_adb.py")
TINY = ("--budget", "6", "--seed-blocks", "6", "--n-archs", "2", "--repeats", "2")

RUNNING = ("Running benchmark for at least {} iterations and at least 0.5 seconds but terminate "
           "if exceeding 150 seconds.")
BENCH_OUT = "\n".join([
    "STARTING!",
    "Graph: [/data/local/tmp/nasforge/a.tflite]",
    RUNNING.format(10),
    "count=10 first=1200 curr=1010 min=990 max=1200 avg=1030.5 std=60",
    "",
    RUNNING.format(50),
    "count=50 first=1001 curr=998 min=980 max=1100 avg=1002.25 std=21",
    "",
    "Inference timings in us: Init: 3200, First inference: 1200, Warmup (avg): 1030.5, "
    "Inference (avg): 1002.25",
])


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# ---- protocol ----------------------------------------------------------------------------------
def test_robust_estimate_records_spread() -> None:
    m = robust_estimate([1.0, 1.02, 0.98, 1.01, 5.0, 7.0])
    assert 0.98 <= m.ms <= 1.02 and m.count == 3
    assert 0 < m.rel_spread < 0.05 and m.std > 0
    one = robust_estimate([2.0])
    assert one.rel_spread == 0.0 and math.isnan(one.std)


def test_descheduled_items_fall_back_to_cpu_time() -> None:
    import time

    from nasforge.hardware_models.profiling._protocol import measure_interleaved

    def sleeper() -> None:  # off the CPU for 3 ms each call: never an undisturbed sample
        time.sleep(0.003)

    (m,) = measure_interleaved([sleeper], warmup=1, repeats=3, sample_ms=1.0, clock="wall",
                               filtered=True)
    assert m.basis == "cpu-fallback" and m.ms < 1.0  # its CPU time, not the 3 ms of wall
    (w,) = measure_interleaved([sleeper], warmup=1, repeats=3, sample_ms=1.0, clock="wall",
                               filtered=False)
    assert w.basis == "wall" and w.ms >= 3.0
    (c,) = measure_interleaved([sleeper], warmup=1, repeats=3, sample_ms=1.0, clock="cpu",
                               filtered=False)
    assert c.basis == "cpu" and c.ms < 1.0


def test_self_agreement_counts_pairs_within_band() -> None:
    got = self_agreement([1.0, 1.0, 1.0, 1.0], [1.05, 0.95, 1.3, 1.0])
    assert got["n"] == 4 and got["within_10pct"] == pytest.approx(0.75)
    assert got["median_rel_diff"] == pytest.approx(np.median(np.abs(
        np.array([1.0, 1.0, 1.0, 1.0]) / np.array([1.05, 0.95, 1.3, 1.0]) - 1)))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_pinned_restores_affinity_and_rejects_bad_cpu() -> None:
    before = os.sched_getaffinity(0)
    last = max(before)
    with pinned((last,)):
        assert os.sched_getaffinity(0) == {last}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(InvalidInputError, match="cannot pin"), pinned((100_000,)):
        pass


# ---- benchmark_model output --------------------------------------------------------------------
def test_parse_benchmark_output_reads_timed_runs() -> None:
    ms, std, runs = parse_benchmark_output(BENCH_OUT)
    assert ms == pytest.approx(1.00225) and std == pytest.approx(0.021) and runs == 50
    with pytest.raises(InvalidInputError, match="Could not load model"):
        parse_benchmark_output("STARTING!\nERROR: Could not load model from x.tflite\n")


# ---- LiteRT ------------------------------------------------------------------------------------
class _DataDependent(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # control flow on values: not exportable
            return x * 2
        return x


def test_conversion_cache_and_named_failure(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    pytest.importorskip("ai_edge_litert")
    from nasforge.hardware_models.profiling._litert import ConvertStats
    from nasforge.hardware_models.profiling._litert import TfliteCache
    from nasforge.hardware_models.profiling._litert import convert_many
    from nasforge.hardware_models.profiling._litert import graph_macs
    from nasforge.hardware_models.profiling._litert import interpreter_call

    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.Hardswish()).eval()
    cache, stats = TfliteCache(tmp_path / "tfl"), ConvertStats()
    shape = (1, 4, 16, 16)
    (p1,) = convert_many([("conv-key", conv, shape)], cache, stats=stats)
    (p2,) = convert_many([("conv-key", conv, shape)], cache, stats=stats)
    assert p1 == p2 and stats.converted == 1 and stats.cached == 1
    assert cache.macs("conv-key", shape) == pytest.approx(4 * 8 * 9 * 16 * 16, rel=0.05)
    assert graph_macs(p1) == 4 * 8 * 9 * 16 * 16
    _, run = interpreter_call(p1, threads=1)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        ref = conv(torch.from_numpy(x)).numpy()
    assert np.abs(run(x) - ref).max() < 1e-4
    with pytest.raises(InvalidInputError, match="could not convert bad-block") as e:
        convert_many([("bad-block", _DataDependent(), shape)], cache)
    assert "\n" not in str(e.value)


def test_litert_runner_measures_with_spread(tmp_path: Path) -> None:
    pytest.importorskip("litert_torch")
    from nasforge.hardware_models.profiling._litert_runner import LiteRTRunner

    runner = LiteRTRunner(1, repeats=3, cache_root=tmp_path / "tfl")
    items = [(nn.Conv2d(4, 4, 3, padding=1), (1, 4, 16, 16)),
             (nn.Conv2d(4, 16, 3, padding=1), (1, 4, 16, 16))]
    small, big = runner.measure(items, keys=["c4", "c16"])
    assert 0 < small.ms < big.ms * 1.5 and small.count >= 2
    assert math.isfinite(small.rel_spread)
    assert "LiteRT" in runner.runtime() and "XNNPACK" in runner.runtime()
    assert runner.convert_stats.converted == 2


@pytest.mark.slow
def test_litert_profile_is_cpu_local_litert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            shared_tflite: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("litert_torch")
    from nasforge.hardware_models import get_device
    from nasforge.search_spaces import get_space

    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    rc, _, err = _run(capsys, "profile", "--device", "cpu-local", "--backend", "litert",
                      "--space", "elasticvit", "--networks", "0", *TINY)
    assert rc == 0, err
    model = get_device("cpu-local-litert")
    assert model.profile.name == "cpu-local-litert-t1"
    assert "LiteRT" in model.profile.runtime
    assert model.profile.extra["noise_floor"]["blocks_median_rel_std"] is not None
    space = get_space("elasticvit")
    assert model.predict(space.min_arch()) > 0
    assert len(list((tmp_path / "cache" / "tflite").glob("*.tflite"))) >= 6
    rows = model.explain(space.min_arch())
    measured = [r for r in rows if r.provenance == "measured"]
    assert measured and all(r.source.startswith("table (litert on ") for r in measured)


# ---- adb ---------------------------------------------------------------------------------------
@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_tflite: Path) -> Path:
    """A stand-in phone: ``adb`` first on PATH, serial ``FAKE01``, benchmark_model installed."""
    bindir, root = tmp_path / "bin", tmp_path / "phone"
    bindir.mkdir()
    adb = bindir / "adb"
    adb.write_text(f"#!{sys.executable}\n" + FAKE_ADB.read_text())
    adb.chmod(adb.stat().st_mode | stat.S_IEXEC)
    bench = root / "data" / "local" / "tmp" / "benchmark_model"
    bench.parent.mkdir(parents=True)
    bench.write_text("stand-in")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_ADB_ROOT", str(root))
    monkeypatch.setenv("FAKE_ADB_SERIALS", "FAKE01")
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    return root


def test_adb_bad_input_is_one_line(phone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("litert_torch")
    base = ("profile", "--device", "myphone", "--backend", "adb", "--space", "elasticvit",
            *TINY)
    rc, _, err = _run(capsys, *base, "--serial", "NOPE")
    assert rc == 2 and "no phone with serial 'NOPE'" in err and "FAKE01" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FAKE_ADB_SERIALS", "")
    rc, _, err = _run(capsys, *base)
    assert rc == 2 and "no phone attached" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FAKE_ADB_SERIALS", "FAKE01")
    (phone / "data" / "local" / "tmp" / "benchmark_model").unlink()
    rc, _, err = _run(capsys, *base)
    assert rc == 2 and "benchmark_model is not on phone FAKE01" in err
    assert len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rc, _, err = _run(capsys, *base)
    assert rc == 2 and "`adb` is not on PATH" in err and len(err.strip().splitlines()) == 1
    rc, _, err = _run(capsys, "profile", "--device", "cpu-local", "--backend", "adb",
                      "--space", "elasticvit")
    assert rc == 2 and "measures a phone" in err


@pytest.mark.slow
def test_adb_stand_in_profile_then_validate(phone: Path, tmp_path: Path, shared_tflite: Path,
                                            stand_in_tflite: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("litert_torch")
    from nasforge.hardware_models import get_device
    from nasforge.hardware_models.profiling._folder import network_key
    from nasforge.search_spaces import get_space

    rc, _, err = _run(capsys, "profile", "--device", "myphone", "--backend", "adb",
                      "--serial", "FAKE01", "--space", "elasticvit", "--networks", "0", *TINY)
    assert rc == 0, err
    model = get_device("myphone")
    prof = model.profile.extra["profiler"]
    assert prof["backend"] == "adb" and prof["serial"] == "FAKE01"
    assert "benchmark_model" in model.profile.runtime
    pushed = list((phone / "data" / "local" / "tmp" / "nasforge").glob("*.tflite"))
    assert len(pushed) >= 6
    assert model.predict(get_space("elasticvit").min_arch()) > 0
    rows = (get_device("myphone").profile.folder / "table.csv").read_text()  # type: ignore[operator]
    assert len(rows.strip().splitlines()) == 7  # header + 6 blocks
    # validate's two subnets (--seed 1): a small real .tflite stands in for each conversion
    space = get_space("elasticvit")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(2)]
    shapes = [(1, b.cin, b.hw_in, b.hw_in) for b in (space.blocks(a)[0] for a in archs)]
    seeded = seed_stand_ins(shared_tflite, [(network_key(space.name, a), s)
                                            for a, s in zip(archs, shapes, strict=True)],
                            stand_in_tflite)
    rc, out, err = _run(capsys, "hw", "validate", "--device", "myphone", "--space",
                        "elasticvit", "--n", "2", "--seed", "1", "--out", str(tmp_path / "v"),
                        "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["backend"] == "adb" and report["n"] == 2
    assert report["self_agreement"]["n"] == 2
    assert report["measurement_basis"] == {"device": 4}  # timed by benchmark_model, 2 passes
    full = json.loads((tmp_path / "v" / "validate.json").read_text())
    assert all(len(s["passes_ms"]) == 2 and s["measured_ms"] > 0 for s in full["subnets"])
    assert [s["arch_id"] for s in full["subnets"]] == [a.arch_id for a in archs]
    on_phone = phone / "data" / "local" / "tmp" / "nasforge"
    assert all((on_phone / p.name).read_bytes() == stand_in_tflite.read_bytes() for p in seeded)


def test_measure_networks_reports_each_measurement_basis() -> None:
    from nasforge.hardware_models.profiling import make_runner
    from nasforge.hardware_models.profiling._steps import measure_networks
    from nasforge.search_spaces import get_space

    space = get_space("elasticvit")
    runner = make_runner("torch", repeats=2)
    bases: list[str] = []
    got = measure_networks(runner, space, [space.min_arch()], bases=bases)
    assert len(got) == 1 and got[0][0] > 0
    assert bases in (["wall-undisturbed"], ["cpu-fallback"])  # which one depends on the load
