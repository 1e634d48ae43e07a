"""Issue 16's edge checks (:mod:`nasforge.validation`) and its security point: a device folder
never carries a command that runs without the user asking, and stored paths stay inside
their folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.errors import InvalidInputError
from nasforge.hardware_models import DeviceProfile
from nasforge.hardware_models import get_device
from nasforge.hardware_models._devices import clear_device_cache
from nasforge.search_spaces import get_space
from nasforge.validation import check_inside
from nasforge.validation import check_number
from nasforge.validation import check_output_dir
from nasforge.validation import check_output_file
from nasforge.validation import check_unique
from nasforge.validation import parse_structured
from nasforge.validation import read_text


def _invoke(argv: list[str]) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as streams:
        code = run_app(app, argv)
        return code, streams[1].getvalue().decode()


# ---- security -------------------------------------------------------------------------------
def _command_device(cache: Path, marker: Path) -> str:
    """A device folder as someone else could hand it over: a profile whose stored command
    would create ``marker`` if it ever ran."""
    key = next(iter(get_device("pixel6").keys(get_space("elasticvit").min_arch())))  # type: ignore[attr-defined]
    folder = cache / "devices" / "handed-over"
    folder.mkdir(parents=True)
    (folder / "table.csv").write_text(f"key,mean_ms,std_ms,count\n{key},1.5,0.1,3\n")
    evil = f"{sys.executable} -c \"open({str(marker)!r}, 'w').write('ran')\" {{model}}"
    DeviceProfile("handed-over", hardware="a phone", provenance="measured",
                  spaces=["elasticvit"], table="table.csv",
                  extra={"profiler": {"backend": "command", "command": evil, "threads": 1,
                                      "repeats": 3, "clock": "wall"}}).save(folder)
    return "handed-over"


def test_hw_validate_never_runs_a_command_stored_in_a_device_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("NASFORGE_CACHE", str(cache))
    clear_device_cache()
    marker = tmp_path / "marker"
    device = _command_device(cache, marker)
    code, err = _invoke(["hw", "validate", "--device", device, "--space", "elasticvit", "--n",
                         "2", "--out", str(tmp_path / "v")])
    clear_device_cache()
    assert code == 2, err
    assert not marker.exists()  # the stored command did not run
    (line,) = [ln for ln in err.splitlines() if ln.strip()]
    assert line.startswith("error:") and "--command" in line
    assert not (tmp_path / "v").exists()


def test_profile_paths_stay_inside_their_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dev"
    DeviceProfile("dev", table="table.csv").save(folder)
    assert DeviceProfile.load(folder).table == "table.csv"
    outside = tmp_path / "secret.csv"
    outside.write_text("x")
    (folder / "link.csv").symlink_to(outside)
    for bad in ("../secret.csv", str(outside), "link.csv", "sub/../../secret.csv"):
        data = json.loads((folder / "profile.json").read_text())
        (folder / "profile.json").write_text(json.dumps({**data, "table": bad}))
        with pytest.raises(InvalidInputError, match="outside its folder"):
            DeviceProfile.load(folder)


def test_check_inside_accepts_nested_names(tmp_path: Path) -> None:
    assert check_inside(tmp_path, "a/b.json", "x") == tmp_path / "a" / "b.json"
    with pytest.raises(InvalidInputError, match="must be a file name"):
        check_inside(tmp_path, 5, "x")


# ---- numbers, text, structure ---------------------------------------------------------------
def test_check_number_names_flag_value_and_rule() -> None:
    assert check_number(3, "--x", low=0) == 3.0
    for bad, rule in ((float("nan"), "> 0"), (float("inf"), "> 0"), (-1, "> 0"), ("5", "> 0"),
                      (True, "> 0"), (10 ** 400, "> 0")):
        with pytest.raises(InvalidInputError, match=rf"--x must be a finite number {rule}"):
            check_number(bad, "--x", low=0, low_open=True)
    with pytest.raises(InvalidInputError, match="<= 100"):
        check_number(101, "--top1", low=0, high=100)


def test_read_text_refuses_non_utf8_and_directories(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_bytes(b"a: \xff\n")
    with pytest.raises(InvalidInputError, match=r"not UTF-8 text \(byte 0xff at offset 3\)"):
        read_text(f)
    with pytest.raises(InvalidInputError, match="is a directory"):
        read_text(tmp_path)
    with pytest.raises(InvalidInputError, match="cannot read"):
        read_text(tmp_path / "missing")


def test_parse_structured_refuses_duplicate_keys_and_deep_nesting() -> None:
    with pytest.raises(InvalidInputError, match=r"duplicate key 'b' \(line 3\)"):
        parse_structured("a: 1\nb: 2\nb: 3\n", "x.yaml")
    with pytest.raises(InvalidInputError, match=r"duplicate key 'k' \(line 2\)"):
        parse_structured('{"k": 1,\n "k": 2}', "x.json")
    with pytest.raises(InvalidInputError, match=r"duplicate key 'n'"):  # nested mappings too
        parse_structured("top:\n  n: 1\n  n: 2\n", "x.yaml")
    for text in ("[" * 100 + "]" * 100, "a:\n" + "".join(" " * i + f"k{i}:\n"
                                                       for i in range(1, 200))):
        with pytest.raises(InvalidInputError, match="nested deeper than 64"):
            parse_structured(text, "x.yaml")
    assert parse_structured("a: [1, {b: 2}]\n", "x.yaml") == {"a": [1, {"b": 2}]}
    with pytest.raises(InvalidInputError, match=r"x\.yaml line 2: malformed YAML"):
        parse_structured("a: [1\n", "x.yaml")


def test_check_unique_counts_the_duplicates() -> None:
    check_unique(["a", "b"], "t")
    with pytest.raises(InvalidInputError, match=r"key 'a' appears 3 times \(2 duplicated"):
        check_unique(["a", "b", "a", "b", "a"], "t")


# ---- output paths ---------------------------------------------------------------------------
def test_output_paths_are_checked_without_creating_anything(tmp_path: Path) -> None:
    a_file = tmp_path / "f"
    a_file.write_text("x")
    check_output_dir(tmp_path / "new" / "deeper", "--out")
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probe file is gone
    with pytest.raises(InvalidInputError, match="is an existing file; give a folder"):
        check_output_dir(a_file, "--out")
    with pytest.raises(InvalidInputError, match="is a file, not a folder"):
        check_output_dir(a_file / "sub", "--out")
    with pytest.raises(InvalidInputError, match="is a directory; give a file name"):
        check_output_file(tmp_path, "--out")
    with pytest.raises(InvalidInputError, match=r"must end in \.png"):
        check_output_file(tmp_path / "r.txt", "--out", suffixes=(".png",))
    check_output_file(tmp_path / "new" / "r.png", "--out", suffixes=(".png",))


def test_click_usage_errors_are_one_line() -> None:
    code, err = _invoke(["arch", "sample", "--space", "elasticvit", "--n", "0"])
    assert code == 2
    (line,) = [ln for ln in err.splitlines() if ln.strip()]
    assert line.startswith("error: Invalid value for '--n'") and "nas arch sample --help" in line
