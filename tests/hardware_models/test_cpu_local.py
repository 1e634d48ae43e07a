"""``cpu-local`` profiling and validation on real torch / onnxruntime (tiny budgets)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models import get_device
from nasforge.hardware_models._blockkeys import block_from_key
from nasforge.hardware_models._blockkeys import block_key
from nasforge.hardware_models._features import features
from nasforge.hardware_models._fusion import fit_fusion
from nasforge.hardware_models.profiling import profile_device
from nasforge.hardware_models.profiling._command import CommandRunner
from nasforge.hardware_models.profiling._protocol import robust_estimate
from nasforge.search_spaces import get_space

TINY = {"n_archs": 3, "seed_blocks": 6, "batch": 2, "n_networks": 2, "repeats": 2}

BENCH = '''\
import sys, time
import numpy as np
import onnxruntime as ort
opts = ort.SessionOptions()
opts.intra_op_num_threads = 1
sess = ort.InferenceSession(sys.argv[1], opts, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0]
x = {inp.name: np.zeros(inp.shape, dtype=np.float32)}
sess.run(None, x)
ts = []
for _ in range(3):
    t = time.perf_counter_ns()
    sess.run(None, x)
    ts.append((time.perf_counter_ns() - t) / 1e6)
print("warm-up done")
print(sorted(ts)[1])
'''


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    from nasforge.cli import app

    rc = run_app(app, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache with ``cpu-local-torch-t1`` profiled on 8 elasticvit blocks."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASFORGE_CACHE", str(cache))
        profile_device("cpu-local", "elasticvit", budget=8, **TINY)
        yield cache


def _rows(path: Path) -> dict[str, list[str]]:
    with path.open(newline="") as f:
        return {r[0]: r for r in csv.reader(f) if r and r[0] != "key"}


def test_block_keys_round_trip_and_features() -> None:
    space = get_space("elasticvit")
    blocks = space.blocks(space.max_arch())
    for b in blocks:
        k = block_key(b)
        assert block_key(block_from_key(k)) == k
    lengths = {len(features(block_key(b))) for b in blocks}
    assert len(lengths) == 1  # one feature length for every kind
    with pytest.raises(InvalidInputError, match="block-shape key"):
        block_from_key("mbconv:hw_in=x")


def test_robust_estimate_discards_contention() -> None:
    m = robust_estimate([1.0, 1.1, 0.9, 1.0, 9.0, 12.0, 1.05, 30.0])
    assert 0.9 <= m.ms <= 1.1 and m.count == 4


def test_fusion_recovers_known_terms() -> None:
    rng = np.random.default_rng(0)
    sums = rng.uniform(5, 50, 12)
    n = rng.integers(20, 60, 12)
    y = 0.5 + 0.02 * n + 1.1 * sums
    f = fit_fusion(sums.tolist(), n.tolist(), y.tolist())
    assert f.per_network_ms == pytest.approx(0.5, abs=1e-6)
    assert f.per_block_ms == pytest.approx(0.02, abs=1e-6)
    assert f.scale == pytest.approx(1.1, abs=1e-6)
    assert f.rel_err is not None and f.rel_err["form"] == "network+block+scale"
    few = fit_fusion([10.0, 20.0, 30.0], [30, 40, 50], [11.0, 21.0, 31.0])
    assert few.per_network_ms == pytest.approx(1.0) and few.scale == 1.0
    assert fit_fusion([10.0], [30], [12.0]).per_network_ms == 0.0  # one network: plain sum


def test_error_before_profiling(cache: Path, capsys: pytest.CaptureFixture[str],
                                tmp_path: Path) -> None:
    with pytest.raises(MissingLatencyError, match="nas profile --device cpu-local"):
        get_device("cpu-local")
    arch = tmp_path / "a.json"
    arch.write_text(json.dumps(get_space("elasticvit").min_arch().to_dict()))
    rc, _, err = _run(capsys, "hw", "predict", "--device", "cpu-local", "--space", "elasticvit",
                      str(arch))
    assert rc == 2 and "nas profile" in err and len(err.strip().splitlines()) == 1
    rc, out, _ = _run(capsys, "devices", "--json")
    assert rc == 0 and "cpu-local" in {d["name"] for d in json.loads(out)}


def test_profile_caches_and_predicts(profiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(profiled))
    folder = profiled / "devices" / "cpu-local-torch-t1"
    assert {"profile.json", "table.csv", "networks.csv", "regressors"} <= {
        p.name for p in folder.iterdir()}
    prof = json.loads((folder / "profile.json").read_text())
    assert prof["provenance"] == "measured" and prof["spaces"] == ["elasticvit"]
    assert prof["extra"]["profiler"]["backend"] == "torch" and "torch" in prof["runtime"]
    assert len(_rows(folder / "table.csv")) == 8
    model = get_device("cpu-local")
    assert get_device("cpu-local-torch-t1").profile.name == "cpu-local-torch-t1"
    space = get_space("elasticvit")
    small, big = model.predict(space.min_arch()), model.predict(space.max_arch())
    assert 0 < small < big
    provs = {r.provenance for r in model.explain(space.sample(np.random.default_rng(5)))}
    assert provs <= {"measured", "predicted"} and "predicted" in provs


def test_profile_resumes_without_remeasuring(profiled: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(profiled))
    folder = profiled / "devices" / "cpu-local-torch-t1"
    before = _rows(folder / "table.csv")
    nets = (folder / "networks.csv").read_text()
    profile_device("cpu-local", "elasticvit", budget=10, **TINY)
    after = _rows(folder / "table.csv")
    assert len(after) == 10
    assert all(after[k] == v for k, v in before.items())  # measured rows kept as they were
    assert (folder / "networks.csv").read_text() == nets  # networks not re-measured


@pytest.mark.slow
def test_validate_writes_report(profiled: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(profiled))
    out = tmp_path / "val"
    rc, stdout, err = _run(capsys, "hw", "validate", "--device", "cpu-local", "--space",
                           "elasticvit", "--n", "3", "--repeats", "2", "--out", str(out),
                           "--json")
    assert rc == 0, err
    summary = json.loads(stdout)
    report = json.loads((out / "validate.json").read_text())
    assert report["n"] == 3 and len(report["subnets"]) == 3
    assert summary["backend"] == "torch" and summary["threads"] == 1
    for k in ("within_10pct", "rmse_ms", "spearman", "mape", "load_avg_before"):
        assert k in report
    assert (out / "validate.png").read_bytes()[:4] == b"\x89PNG"


def test_validate_unreachable_device(profiled: Path, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    from nasforge.hardware_models.profiling import validate_device

    monkeypatch.setenv("NASFORGE_CACHE", str(profiled))
    with pytest.raises(InvalidInputError, match="cannot be reached"):
        validate_device("pixel6", "elasticvit", n=2, out=tmp_path)


def test_command_runner_rejects_bad_templates(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="must contain"):
        CommandRunner("python bench.py")
    bad = CommandRunner(f"{sys.executable} -c \"print('fast')\" {{model}}")
    with pytest.raises(InvalidInputError, match="positive latency"):
        bad.run_file(tmp_path / "m.onnx")


@pytest.mark.slow
def test_external_command_device(cache: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "bench.py"
    script.write_text(BENCH)
    rc, out, err = _run(capsys, "profile", "--device", "tinyphone", "--space", "elasticvit",
                        "--backend", "command", "--command", f"{sys.executable} {script} {{model}}",
                        "--budget", "6", "--seed-blocks", "6", "--networks", "0",
                        "--n-archs", "2")
    assert rc == 0, err
    model = get_device("tinyphone")
    assert model.profile.extra["profiler"]["command"].endswith("{model}")
    assert model.predict(get_space("elasticvit").min_arch()) > 0
    rc, out, err = _run(capsys, "hw", "validate", "--device", "tinyphone", "--space",
                        "elasticvit", "--n", "2", "--out", str(tmp_path / "v"), "--json",
                        # the stored command runs only when asked for on the command line
                        "--command", f"{sys.executable} {script} {{model}}")
    assert rc == 0, err
    assert json.loads(out)["backend"] == "command"
    assert (tmp_path / "v" / "validate.png").is_file()


def test_cpu_clock_measures_and_needs_one_thread() -> None:
    from torch import nn

    from nasforge.hardware_models.profiling import make_runner

    with pytest.raises(InvalidInputError, match="cpu needs --threads 1"):
        make_runner("torch", threads=2, clock="cpu")
    runner = make_runner("onnxruntime", clock="cpu", repeats=3)
    (m,) = runner.measure([(nn.Conv2d(8, 8, 3, padding=1), (1, 8, 16, 16))])
    assert m.ms > 0 and m.count == 2 and runner.config()["clock"] == "cpu"


def test_profile_rejects_unreachable_backend(cache: Path) -> None:
    with pytest.raises(InvalidInputError, match="--backend command"):
        profile_device("pixel6", "elasticvit", backend="torch", budget=2, **TINY)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_profile_fusion_networks_are_never_validation_subnets(seed: int) -> None:
    import inspect

    from nasforge.hardware_models.profiling import validate_device
    from nasforge.hardware_models.profiling._steps import network_archs
    from nasforge.search_spaces import get_space

    space = get_space("elasticvit")
    fitted = {a.arch_id for a in network_archs(space, 20, seed)}
    for val_seed in {seed, seed + 1, inspect.signature(validate_device).parameters["seed"].default}:
        rng = np.random.default_rng(val_seed)  # how nas hw validate samples its subnets
        validated = {space.sample(rng).arch_id for _ in range(50)}
        assert not fitted & validated, (seed, val_seed)


def test_fusion_rule_is_refit_on_every_profiled_space(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from nasforge.hardware_models.profiling._steps import network_archs

    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path))
    folder = tmp_path / "devices" / "cpu-local-torch-t1"
    first = profile_device("cpu-local", "elasticvit", budget=4, **TINY).extra["fusion"]
    assert first["spaces"] == {"elasticvit": 2}
    both = profile_device("cpu-local", "elasticvit_efficient", budget=4, **TINY).extra["fusion"]
    assert both["spaces"] == {"elasticvit": 2, "elasticvit_efficient": 2}
    assert both["n_networks"] == 4
    wanted = [a.arch_id for s in ("elasticvit_efficient", "elasticvit")
              for a in network_archs(get_space(s), 2, 0)]
    assert both["networks"] == wanted
    saved = json.loads((folder / "profile.json").read_text())
    assert saved["spaces"] == ["elasticvit", "elasticvit_efficient"]
    assert saved["extra"]["fusion"]["networks"] == wanted
    assert set(saved["extra"]["candidates"]) == {"elasticvit", "elasticvit_efficient"}
