"""Issue 26, class 8 (words): the refusals say the real cause in our words.

A pickled torch file is refused without torch's advice to retry with ``weights_only=False``
and without a warning line; a budget below the space's minimum gives the real minimum and the
flag of the bound that was given; a webdataset shard that is truncated, a folder or labelled
with words is named as such. Each case: one ``error:`` line, exit code 2, no traceback, no
result written.
"""

from __future__ import annotations

import fractions
import io
import re
import tarfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nasforge.cli import app
from nasforge.cli._common import run_app
from tests.cli._child import Answer
from tests.cli._child import assert_one_error
from tests.data._images import make_shards


def invoke(argv: list[str]) -> Answer:
    """``nas ARGV`` in process (the entry point's error boundary)."""
    with CliRunner().isolation() as streams:
        code = run_app(app, argv)
        return Answer(code, streams[0].getvalue().decode(), streams[1].getvalue().decode())


def _import_ofa(file: Path, out: Path) -> Answer:
    return invoke(["predictor", "import", "--from", "ofa", str(file), "--out", str(out)])


def test_pickled_objects_refused_in_our_words(tmp_path: Path) -> None:
    file = tmp_path / "acc_predictor.pth"
    torch.save({"w": torch.zeros(2), "f": fractions.Fraction(1, 2)}, file)
    a = _import_ofa(file, tmp_path / "pred")
    line = assert_one_error(a, str(file), "Python objects beyond tensors",
                            "nasforge loads only weights", absent=[tmp_path / "pred"])
    assert "weights_only" not in a.stderr and "trust" not in a.stderr, a.stderr
    assert a.stderr.strip() == line  # no warning line beside it


def test_a_file_that_is_not_torch_is_named_so(tmp_path: Path) -> None:
    file = tmp_path / "acc_predictor.pth"
    file.write_bytes(b"not a torch file " * 20)
    a = _import_ofa(file, tmp_path / "pred")
    assert_one_error(a, str(file), "is not a torch file", absent=[tmp_path / "pred"])
    assert "weights_only" not in a.stderr


def _search(tmp_path: Path, *bound: str) -> Answer:
    return invoke(["search", "--space", "elasticvit", "--device", "pixel7", *bound,
                   "--budget", "2", "--out", str(tmp_path / "run"), "-q"])


@pytest.mark.parametrize("flag, value, what", [
    ("--flops", "0.001", "FLOPs"), ("--params", "0.0001", "parameter"),
    ("--latency", "0.001", "latency")])
def test_budget_below_the_minimum_gives_the_real_minimum_and_its_own_hint(
        tmp_path: Path, flag: str, value: str, what: str) -> None:
    a = _search(tmp_path, flag, value)
    line = assert_one_error(a, f"{what} budget {value}", f"raise {flag}",
                            absent=[tmp_path / "run" / "best.yaml"])
    minimum = float(re.findall(r"to at least ([0-9.e+-]+)", line)[0])
    assert minimum > float(value), line  # the real minimum, not "at least 0.00"
    if what != "latency":
        assert "latency" not in line, line  # a FLOPs bound gets a FLOPs hint


def _train_on(tmp_path: Path, pattern: str) -> Answer:
    return invoke(["train", "--data", f"webdataset:{pattern}", "--steps", "1", "--no-eval",
                   "--no-progress", "--workers", "0", "--out", str(tmp_path / "run")])


def test_truncated_shard_is_named_truncated(tmp_path: Path) -> None:
    pattern = make_shards(tmp_path / "s", shards=2)
    shard = tmp_path / "s" / "train-000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2 + 100])  # cut inside a member header
    a = _train_on(tmp_path, pattern)
    assert_one_error(a, str(shard), "truncated", absent=[tmp_path / "run"])


def test_folder_given_as_a_shard_is_named_a_folder(tmp_path: Path) -> None:
    make_shards(tmp_path / "s", shards=2)
    (tmp_path / "s" / "train-002.tar").mkdir()
    a = _train_on(tmp_path, f"{tmp_path}/s/train-*.tar")
    assert_one_error(a, "train-002.tar", "is a folder", absent=[tmp_path / "run"])


def test_non_integer_label_is_named_as_such(tmp_path: Path) -> None:
    shards = tmp_path / "s"
    shards.mkdir()
    for s in range(2):
        with tarfile.open(shards / f"train-{s:03d}.tar", "w") as tar:
            for ext, data in [("jpg", b"\xff\xd8 no image"), ("cls", b"cat\n")]:
                info = tarfile.TarInfo(f"k{s}_0.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    a = _train_on(tmp_path, f"{shards}/train-*.tar")
    assert_one_error(a, "hold no integer", "'cat'", absent=[tmp_path / "run"])
