"""Issue 26, class 1: parsing that can be made to hang.

Every YAML/JSON input goes through one bounded reader (:mod:`nasforge.structured`): a "billion
laughs" file, a FIFO, a device or an oversized file is refused with one ``error:`` line, exit
code 2, no traceback and nothing written; YAML 1.1 merge keys read as the expanded file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.experiments.config import load_experiment
from nasforge.structured import MAX_CONFIG_BYTES
from nasforge.structured import load_structured
from nasforge.structured import parse_structured

#: a guard against hanging only: the bomb is refused in microseconds
_GUARD_S = 20


def _invoke(argv: list[str]) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[1].getvalue().decode()


def _bomb(path: Path) -> Path:
    """Nine levels of anchors and aliases: 10**9 leaves once expanded, 100 nodes as written."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _assert_one_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], err


def _listing(root: Path) -> set[Path]:
    return set(root.rglob("*"))


_BOMB_COMMANDS = {
    "recipe (nas train --config)": lambda f, t: ["train", "--config", str(f), "--out",
                                                 str(t / "run")],
    "experiment (nas run)": lambda f, t: ["run", str(f)],
    "sweep file (nas sweep)": lambda f, t: ["sweep", str(f)],
    "arch file (nas arch describe)": lambda f, t: ["arch", "describe", str(f)],
    "arch file (nas export)": lambda f, t: ["export", str(f), "-f", "safetensors", "--out",
                                            str(t / "export")],
}


@pytest.mark.timeout(_GUARD_S)
@pytest.mark.parametrize("what", list(_BOMB_COMMANDS))
def test_billion_laughs_is_refused_at_once(what: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bomb = _bomb(tmp_path / "bomb.yaml")
    before = _listing(tmp_path)
    code, err = _invoke(_BOMB_COMMANDS[what](bomb, tmp_path))
    _assert_one_error(code, err, str(bomb), "nodes with its aliases expanded", "limit of 4000000")
    assert _listing(tmp_path) == before


@pytest.mark.timeout(_GUARD_S)
def test_billion_laughs_in_a_set_flag_is_refused(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    flow = "[&a [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
        f"&{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)) + "]"
    code, err = _invoke(["train", "--set", f"data={flow}", "--out", str(tmp_path / "run")])
    _assert_one_error(code, err, "--set data", "nodes with its aliases expanded")
    assert not (tmp_path / "run").exists()


def _nas(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "nasforge.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


@pytest.mark.timeout(180)
def test_a_fifo_as_arch_file_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "arch.yaml"
    os.mkfifo(fifo)
    before = _listing(tmp_path)
    proc = _nas(["arch", "describe", str(fifo)], tmp_path)  # a hang is a TimeoutExpired
    _assert_one_error(proc.returncode, proc.stderr, str(fifo), "named pipe (FIFO)",
                      "not a regular file")
    assert _listing(tmp_path) == before


@pytest.mark.timeout(_GUARD_S)
def test_a_device_as_experiment_file_is_refused(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, err = _invoke(["run", "/dev/zero"])
    _assert_one_error(code, err, "experiment file /dev/zero is a character device")
    assert _listing(tmp_path) == set()


@pytest.mark.timeout(_GUARD_S)
def test_an_arch_file_over_the_cap_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)  # a real (sparse) file one byte over the cap
    code, err = _invoke(["arch", "describe", str(big)])
    _assert_one_error(code, err, f"arch file {big}", "16.0 MiB", "over the 16 MiB limit")


_RECIPE_MERGED = """\
data: digits
train:
  <<: &short {steps: 3, batch_size: 8, lr: 0.002, seed: 4}
  lr: 0.003
loader:
  <<: [{workers: 0}, {prefetch: 2, workers: 1}]
"""
_RECIPE_EXPANDED = """\
data: digits
train: {steps: 3, batch_size: 8, lr: 0.003, seed: 4}
loader: {workers: 0, prefetch: 2}
"""


@pytest.mark.timeout(120)
def test_merge_keys_in_a_recipe_read_as_the_expanded_file(tmp_path: Path) -> None:
    outs = []
    for name, text in (("merged.yaml", _RECIPE_MERGED), ("expanded.yaml", _RECIPE_EXPANDED)):
        recipe = tmp_path / name
        recipe.write_text(text)
        outs.append(_print_config(recipe))
    assert outs[0] == outs[1] and outs[0][0] == 0
    assert "lr: 0.003" in outs[0][1] and "prefetch: 2" in outs[0][1]


def _print_config(recipe: Path) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, ["train", "--config", str(recipe), "--print-config"])
        return code, streams[0].getvalue().decode() + streams[1].getvalue().decode()


def test_merge_keys_in_an_experiment_file_read_as_the_expanded_file(tmp_path: Path) -> None:
    merged = tmp_path / "merged.yaml"
    merged.write_text("<<: &c {search_space: elasticvit, device: pixel7, strategy: evolution,"
                      " budget: 20, constraints: {latency_ms: 25}}\nseed: 3\nbudget: 30\n")
    expanded = tmp_path / "expanded.yaml"
    expanded.write_text("search_space: elasticvit\ndevice: pixel7\nstrategy: evolution\n"
                        "constraints: {latency_ms: 25}\nseed: 3\nbudget: 30\n")
    a, b = load_experiment(merged), load_experiment(expanded)
    assert a.to_dict() == b.to_dict()
    assert a.budget == 30 and a.seed == 3 and a.constraints.latency_ms == 25


def test_json_goes_through_the_same_bounds(tmp_path: Path) -> None:
    table = tmp_path / "t.json"
    table.write_text('{"k": [' + "1, " * 600 + "1]}")
    with pytest.raises(InvalidInputError, match=r"over the 1024 bytes limit for a latency"):
        load_structured(table, "latency table", kind="json", max_bytes=1024)
    with pytest.raises(InvalidInputError, match="nested deeper than 64 levels"):
        parse_structured('{"a": ' + "[" * 65 + "]" * 65 + "}", "d.json")
    with pytest.raises(InvalidInputError,
                       match=r"t\.json: 604 nodes with its aliases expanded, over the limit"):
        parse_structured(table.read_text(), "t.json", max_nodes=600)


def test_alias_cycles_and_duplicate_keys_beside_merges() -> None:
    with pytest.raises(InvalidInputError, match=r"c\.yaml line 1: an alias refers to a node "
                                                "that contains it"):
        parse_structured("a: &a [1, *a]\n", "c.yaml")
    assert parse_structured("b: &b {x: 1}\nc: {<<: *b, x: 2}\n", "m.yaml")["c"] == {"x": 2}
    with pytest.raises(InvalidInputError, match=r"duplicate key 'x' \(line 2\)"):
        parse_structured("b: &b {x: 1}\nc: {<<: *b, x: 2, x: 3}\n", "m.yaml")
