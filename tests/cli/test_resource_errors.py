"""Issue 26, class 6 (resources) and the deleted working directory of class 3: a full disk, a
memory limit, a flag that sizes an allocation past the memory there is, a device or a
decompression bomb given as data end in one ``error:`` line naming the file or the flag, exit
code 2, no traceback and no result written.

The bad inputs are real: limits set with ``resource.setrlimit`` in the child process
(:mod:`tests.cli._child`), files written here.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from nasforge.data._webdataset import MAX_MEMBER_BYTES
from tests.cli._child import assert_one_error
from tests.cli._child import limits
from tests.cli._child import run_nas
from tests.data._images import make_shards

TRAIN = ["train", "--steps", "1", "--no-eval", "--no-progress", "--workers", "0"]


def test_file_size_limit_on_a_yaml_output_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "archs.yaml"
    a = run_nas(["arch", "sample", "--space", "elasticvit", "-n", "2000", "--out", str(out)],
                tmp_path, limits(fsize=16 << 10))
    assert_one_error(a, "no space or file size limit", str(out), absent=[out])
    assert list(tmp_path.iterdir()) == []  # no temporary file left either


def test_file_size_limit_on_a_checkpoint_names_the_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "run"
    a = run_nas([*TRAIN, "--out", str(out)], tmp_path, limits(fsize=64 << 10))
    assert_one_error(a, "no space or file size limit", f"--out {out}", absent=[out])


def test_memory_limit_during_training_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "run"
    a = run_nas([*TRAIN, "--batch-size", "20000", "--out", str(out)], tmp_path,
                limits(**{"as": 6 << 30}))
    assert_one_error(a, "out of memory", "--batch-size 20000", absent=[out])


@pytest.mark.parametrize("flags, needle", [
    (["--batch-size", "100000000"], "--batch-size 100000000 at --input-size 32"),
    (["--batch-size", "20000", "--input-size", "4096"], "--batch-size 20000 at --input-size 4096"),
])
def test_train_refuses_a_batch_past_the_memory_before_any_tensor(
        tmp_path: Path, flags: list[str], needle: str) -> None:
    out = tmp_path / "run"
    a = run_nas([*TRAIN, *flags, "--out", str(out)], tmp_path)
    assert_one_error(a, needle, "memory available", absent=[out])


def test_eval_refuses_a_batch_past_the_memory(tmp_path: Path) -> None:
    csv = tmp_path / "acc.csv"
    a = run_nas(["eval", "--supernet", str(tmp_path / "none.ckpt"), "--arch",
                 str(tmp_path / "a.yaml"), "--batch-size", "100000000000", "--resolution", "224",
                 "--csv", str(csv)], tmp_path)
    assert_one_error(a, "--batch-size 100000000000 at --resolution 224", "memory available",
                     absent=[csv])


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_benchmark_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path,
                                                                 kind: str) -> None:
    table = Path("/dev/zero")
    if kind == "fifo":
        table = tmp_path / "table.csv"
        os.mkfifo(table)  # a reader would block forever
    out = tmp_path / "run"
    a = run_nas(["search", "--space", "nasbench201", "--device", "pixel3_ms", "--benchmark",
                 str(table), "--metric", "cifar10_val", "--budget", "2", "--out", str(out)],
                tmp_path, timeout=60)
    assert_one_error(a, str(table), "not a regular file", absent=[out / "best.yaml"])


def test_webdataset_gzip_bomb_is_refused_before_decompression(tmp_path: Path) -> None:
    make_shards(tmp_path / "s", shards=2)
    bomb = tmp_path / "s" / "train-000.tar"  # replaced: one gzip member of zeros
    size = 4 * MAX_MEMBER_BYTES
    with open(bomb, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1) as gz, \
            tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo("s000_00000.jpg")
        info.size = size
        tar.addfile(info, _Zeros(size))
    assert bomb.stat().st_size < size // 100
    out = tmp_path / "run"
    a = run_nas([*TRAIN, "--data", f"webdataset:{tmp_path}/s/train-*.tar", "--out", str(out)],
                tmp_path)
    assert_one_error(a, str(bomb), "s000_00000.jpg", "cap", absent=[out / "last.ckpt"])


class _Zeros:
    """A readable stream of ``n`` zero bytes."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        self.left -= n
        return bytes(n)


def test_deleted_working_directory_is_one_line_not_an_mkl_crash(tmp_path: Path) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()

    def enter_and_delete() -> None:
        os.chdir(gone)
        os.rmdir(gone)

    out = tmp_path / "run"
    a = run_nas([*TRAIN, "--out", str(out)], tmp_path, enter_and_delete)
    assert "MKL" not in a.stderr
    assert_one_error(a, "working directory no longer exists", absent=[out])
