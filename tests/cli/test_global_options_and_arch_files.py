"""The CLI's global -q/-v (logging decided once by the CLI), its independence from `click`,
and the one arch-file reader behind `nas arch`, `nas hw predict` and `nas export`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.io import load_arch
from nasforge.search_spaces.io import read_arch_file


def _tabular(nb201_table: Path, out: Path) -> list[str]:
    return ["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
            str(nb201_table), "--metric", "cifar10_val",
            "--strategy", "random", "--budget", "16", "--out", str(out)]


def test_progress_goes_to_stderr_unless_quiet(nb201_table: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, _tabular(nb201_table, tmp_path / "a")) == 0
    out, err = capsys.readouterr()
    assert "search 16/16 (100%)" in err  # the plain progress line (stderr is no terminal)
    assert "nas search" in out and "search 16/16" not in out  # results on stdout only
    assert run_app(app, ["-q", *_tabular(nb201_table, tmp_path / "b")]) == 0
    out, err = capsys.readouterr()
    assert err == "" and "nas search" in out
    assert run_app(app, [*_tabular(nb201_table, tmp_path / "c"), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_cli_runs_without_click_installed(tmp_path: Path) -> None:
    # `click` is not a declared dependency: hide it and run the CLI
    code = ("import sys; sys.modules['click'] = None; from nasforge.cli import main; "
            "main(sys.argv[1:])")
    arch = tmp_path / "a.yaml"
    for argv, rc in ((["--help"], 0), (["arch", "sample", "--space", "nasbench201"], 0),
                     (["arch", "sample", "--space", "elasticvt"], 2), (["nope"], 2)):
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                              text=True)
        assert proc.returncode == rc, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
    arch.write_text(get_space("nasbench201").min_arch().to_yaml())
    assert load_arch(arch) == get_space("nasbench201").min_arch()


def test_one_reader_for_every_arch_file_form(tmp_path: Path) -> None:
    space = get_space("elasticvit")
    a, b = space.min_arch(), space.max_arch()
    plain, listed, wrapped, bare = (tmp_path / n for n in ("p.yaml", "l.yaml", "w.yaml",
                                                            "b.json"))
    plain.write_text(a.to_yaml())
    listed.write_text(yaml.safe_dump([a.to_dict(), b.to_dict()]))
    wrapped.write_text(yaml.safe_dump({"arch": {k: v for k, v in a.to_dict().items()
                                                if k != "space"},
                                       "space": "elasticvit", "num_classes": 10}))
    bare.write_text(json.dumps({k: v for k, v in b.to_dict().items() if k != "space"}))
    assert load_arch(plain) == a
    assert read_arch_file(listed).archs == (a, b)
    f = read_arch_file(wrapped)
    assert f.one() == a and f.extra == {"num_classes": 10}
    assert load_arch(bare, space="elasticvit") == b
    with pytest.raises(InvalidInputError, match="missing `space`"):
        load_arch(bare)
    with pytest.raises(InvalidInputError, match="holds 2"):
        load_arch(listed)
    with pytest.raises(IncompatibleComponentsError, match="of space 'elasticvit'"):
        load_arch(plain, expect_space="ofa_mbv3")


def test_hw_predict_and_describe_read_the_same_files(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    space = get_space("elasticvit")
    arch = space.min_arch()
    bare = tmp_path / "bare.yaml"
    bare.write_text(yaml.safe_dump({k: v for k, v in arch.to_dict().items() if k != "space"}))
    assert run_app(app, ["hw", "predict", "--device", "pixel7", "--space", "elasticvit",
                         str(bare), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch_id"] == arch.arch_id
    assert run_app(app, ["hw", "predict", "--device", "pixel7", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "missing `space`" in err and len(err.strip().splitlines()) == 1
    wrapped = tmp_path / "export.yaml"
    wrapped.write_text(yaml.safe_dump({"arch": arch.to_dict(), "num_classes": 10}))
    assert run_app(app, ["arch", "describe", str(wrapped), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch_id"] == arch.arch_id
