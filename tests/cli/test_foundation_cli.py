"""`nas spaces` and `nas arch`: outputs, and bad input as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.search_spaces import get_space
from nasforge.search_spaces._elasticvit_io import arch_to_elasticvit_tuple


def _nas(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nasforge.cli", *args], capture_output=True,
                          text=True)


def test_spaces_json_lists_every_space_with_size(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["spaces", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {r["space"]: r for r in rows}
    assert by["nasbench201"]["size"] == 15625
    assert by["elasticvit"]["size"] == get_space("elasticvit").size()
    assert 37 < by["elasticvit"]["mflops_reference_min"] < 38


def test_sample_describe_and_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a.yaml"
    assert run_app(app, ["arch", "sample", "--space", "elasticvit", "--n", "3", "--seed", "4",
                         "-o", str(out)]) == 0
    archs = yaml.safe_load(out.read_text())
    assert len(archs) == 3
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(archs[0]))
    capsys.readouterr()
    assert run_app(app, ["arch", "describe", str(one), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    space = get_space("elasticvit")
    arch = space.arch_from_dict(archs[0])
    assert info["arch_id"] == arch.arch_id
    assert info["flops"] == space.flops(arch)
    assert info["flops_reference"] == space.flops_reference(arch)
    assert info["params"] == space.params(arch)
    assert sum(b["flops"] for b in info["blocks"]) == info["flops"]

    tup = tmp_path / "t.json"
    tup.write_text(json.dumps(arch_to_elasticvit_tuple(arch)))
    assert run_app(app, ["arch", "import", "--from", "elasticvit-tuple", str(tup)]) == 0
    assert space.arch_from_dict(yaml.safe_load(capsys.readouterr().out)) == arch


def _bad_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "bad_yaml.yaml").write_text("space: [elasticvit\n")
    (tmp / "bad_value.yaml").write_text(
        get_space("elasticvit").min_arch().to_yaml().replace("resolution: 128",
                                                             "resolution: 100"))
    (tmp / "no_space.yaml").write_text("resolution: 128\n")
    (tmp / "bad_tuple.json").write_text("[224, [16, 16]]")
    (tmp / "bad_json.json").write_text("{not json")
    return [
        (["arch", "sample", "--space", "elasticvt"], "did you mean 'elasticvit'"),
        (["arch", "describe", str(tmp / "bad_yaml.yaml")], "line"),
        (["arch", "describe", str(tmp / "bad_value.yaml")], "resolution = 100"),
        (["arch", "describe", str(tmp / "no_space.yaml")], "missing `space`"),
        (["arch", "describe", str(tmp / "missing.yaml")], "cannot read"),
        (["arch", "import", "--from", "elasticvit-tuple", str(tmp / "bad_tuple.json")],
         "10 fields"),
        (["arch", "import", "--from", "elasticvit-tuple", str(tmp / "bad_json.json")],
         "malformed"),
        (["arch", "import", "--from", "tupel", str(tmp / "bad_tuple.json")], "did you mean"),
    ]


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args, needle in _bad_inputs(tmp_path):
        proc = _nas(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, (args, proc.stderr)
        assert needle in lines[0], (args, lines[0])
        assert "Traceback" not in proc.stderr
