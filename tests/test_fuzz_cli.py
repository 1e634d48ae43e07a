"""Property-based fuzzing of the ``nas`` CLI's file inputs and numeric flags (issue 16).

Whatever the bytes of an input file or the value of a numeric flag, a command ends with exit
code 0 or 2, never a traceback, and on error prints exactly one ``error: ...`` line. Runs in
process (``typer.testing.CliRunner``'s isolation around :func:`run_app`), with few examples
per property so that the file stays under ~30 s.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.hardware_models._devices import clear_device_cache
from nasforge.search_spaces import get_space

_FAST = settings(max_examples=25, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])


def _invoke(argv: list[str]) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[1].getvalue().decode()


def _check(argv: list[str]) -> int:
    code, err = _invoke(argv)  # an exception escaping run_app is a traceback: the test fails
    assert code in (0, 2), (argv, code, err)
    assert "Traceback" not in err, err
    if code == 2:
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, (argv, err)
    return code


# ---- values that end up in files: JSON-able trees with awkward leaves ----------------------
_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["elasticvit", "nasbench201", "resolution", "space", "arch", "budget"]),
)
_tree = st.recursive(_leaf, lambda kids: st.one_of(
    st.lists(kids, max_size=4),
    st.dictionaries(st.sampled_from(["space", "resolution", "widths", "depths", "arch",
                                     "search_space", "device", "budget", "seed", "grid",
                                     "base", "name", "predictor", "x"]), kids, max_size=4)),
    max_leaves=12)


def _dump(value: Any, as_json: bool) -> str:
    if as_json:
        return json.dumps(value)  # NaN / Infinity as JSON's common extension
    return yaml.safe_dump(value)


def _mutated_arch(data: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**data, key: value}


_ARCH = get_space("elasticvit").min_arch().to_dict()
_FILE_COMMANDS: list[list[str]] = [
    ["arch", "describe", "FILE"],
    ["arch", "export", "FILE", "--to", "elasticvit-tuple"],
    ["arch", "import", "--from", "elasticvit-tuple", "FILE"],
    ["arch", "import", "--from", "ofa", "FILE"],
    ["arch", "import", "--from", "nb201", "FILE"],
    ["hw", "predict", "FILE", "--device", "pixel7"],
    ["run", "FILE"],
    ["sweep", "FILE"],
    ["hw", "import", "FILE", "--format", "nnmeter-hybrid", "--device", "fuzz", "--space",
     "elasticvit"],
    ["hw", "import", "FILE", "--format", "ofa-yaml", "--device", "fuzz", "--space",
     "elasticvit"],
    ["hw", "import", "FILE", "--format", "csv", "--device", "fuzz", "--space", "elasticvit"],
]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASFORGE_CACHE", str(tmp_path / "cache"))
    clear_device_cache()


def _run_file(tmp_path: Path, command: list[str], payload: bytes, suffix: str) -> int:
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        f = Path(d) / f"input{suffix}"
        f.write_bytes(payload)
        return _check([str(f) if a == "FILE" else a for a in command])


@_FAST
@given(command=st.sampled_from(_FILE_COMMANDS), tree=_tree, as_json=st.booleans())
def test_structured_file_inputs_exit_0_or_2(tmp_path: Path, command: list[str], tree: Any,
                                            as_json: bool) -> None:
    if command[0] in ("run", "sweep") and isinstance(tree, dict):
        tree = {**tree, "out": str(tmp_path / "out")}  # never the cwd
    _run_file(tmp_path, command, _dump(tree, as_json).encode(), ".json" if as_json else ".yaml")


@_FAST
@given(command=st.sampled_from(_FILE_COMMANDS), payload=st.binary(max_size=64))
def test_raw_bytes_exit_0_or_2(tmp_path: Path, command: list[str], payload: bytes) -> None:
    _run_file(tmp_path, command, payload, ".yaml")


@_FAST
@given(key=st.sampled_from(sorted(_ARCH)), value=_leaf)
def test_arch_fields_exit_0_or_2(tmp_path: Path, key: str, value: Any) -> None:
    """One field of a valid architecture replaced by an awkward value."""
    for as_json in (True, False):
        code = _run_file(tmp_path, ["arch", "describe", "FILE"],
                         _dump(_mutated_arch(_ARCH, key, value), as_json).encode(),
                         ".json" if as_json else ".yaml")
        if isinstance(value, float) and not math.isfinite(value):
            assert code == 2


_number_text = st.one_of(
    st.integers(min_value=-(2 ** 66), max_value=2 ** 66).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0x10", "", "ten", "1_000"]),
)


@_FAST
@given(flag=st.sampled_from(["--n", "--seed"]), value=_number_text)
def test_arch_sample_numbers_exit_0_or_2(tmp_path: Path, flag: str, value: str) -> None:
    argv = ["arch", "sample", "--space", "nasbench201", flag, value, "-o",
            str(tmp_path / "a.yaml")]
    if flag == "--seed":
        argv += ["--n", "1"]
    code = _check(argv)
    if code == 0:
        assert (tmp_path / "a.yaml").is_file()


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flag=st.sampled_from(["--latency", "--flops", "--params", "--budget", "--seed",
                             "--workers"]), value=_number_text)
def test_search_numbers_exit_0_or_2(tmp_path: Path, nb201_table: Path, flag: str,
                                    value: str) -> None:
    """Numeric flags of a tabular search; a value accepted must produce a finished run."""
    with tempfile.TemporaryDirectory(dir=tmp_path) as d:
        out = Path(d) / "run"
        argv = ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
                str(nb201_table), "--metric", "cifar10_val",
                "--strategy", "random", "--budget", "2", "--out", str(out), "-q", flag, value]
        if flag == "--budget":  # keep accepted runs short
            try:
                if int(value) > 3:
                    argv[argv.index(value)] = "3"
            except ValueError:
                pass
        code = _check(argv)
        assert (code == 0) == (out / "run.json").is_file()
