"""Paths (issue 26, class 3): any file name in an image folder, ``--out`` inside the data, and
files that cannot be read named as such (real files; root runs its children without the
capabilities that let it read anything)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data._stream import index_folder
from nasforge.data._stream import path_at

REPO = Path(__file__).resolve().parents[2]
FAST = ["--input-size", "16", "--resolution-scale", "0.0625", "--batch-size", "4",
        "--accelerator", "cpu", "--no-progress", "--workers", "0"]
#: class -> file names: accents, CJK, and a name that is not UTF-8 (bytes 0xe9 -> surrogate)
NAMES = {"café": ["ñandú_ü.jpg", "ß.jpg", "plain.jpg"],
         "猫": ["图.jpg", "二.jpg", os.fsdecode(b"caf\xe9.jpg")],
         "ant": ["0.jpg", "1.jpg", "2.jpg"]}


def _images(root: Path, names: dict[str, list[str]] = NAMES) -> Path:
    rng = np.random.default_rng(0)
    for label, (cls, files) in enumerate(names.items()):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for f in files:
            arr = (rng.random((24, 24, 3)) * 80).astype(np.uint8)
            arr[6:18, 6:18, label % 3] = 230
            Image.fromarray(arr).save(root / cls / f, format="JPEG")
    return root


def _one_error(err: str, *needles: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _images(tmp_path_factory.mktemp("ünïcode") / "данные")


def test_the_index_holds_any_file_name_and_ascii_paths_as_before(folder: Path,
                                                                 tmp_path: Path) -> None:
    names, (paths, _), (vpaths, _) = index_folder(folder, 0, 0.2)
    assert names == ["ant", "café", "猫"]
    got = {Path(path_at(a, i)).name for a in (paths, vpaths) for i in range(len(a))}
    assert got == {f for files in NAMES.values() for f in files}
    ascii_root = _images(tmp_path / "ascii", {"a": ["0.jpg", "1.jpg"], "b": ["2.jpg"]})
    _, (p, _), (v, _) = index_folder(ascii_root, 0, 0.2)
    every = sorted(str(f) for f in ascii_root.rglob("*.jpg"))
    assert p.dtype == np.array(every, dtype=np.bytes_).dtype  # the same bytes as before
    assert sorted([*p.tolist(), *v.tolist()]) == np.array(every, dtype=np.bytes_).tolist()


def test_train_and_eval_on_non_ascii_class_and_file_names(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    out = tmp_path / "run"
    code = run_app(app, ["train", "--data", f"imagefolder:{folder}", "--out", str(out),
                         "--steps", "2", "--no-eval", *FAST])
    assert code == 0, capsys.readouterr().err
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    capsys.readouterr()
    code = run_app(app, ["eval", "--supernet", str(out), "--arch", str(arch), "--data",
                         f"imagefolder:{folder}", "--recal-batches", "1", "--workers", "0",
                         "--batch-size", "4", "--accelerator", "cpu",
                         "--csv", str(tmp_path / "e.csv")])
    assert code == 0, capsys.readouterr().err
    assert "top-1" in capsys.readouterr().out and (tmp_path / "e.csv").is_file()


@pytest.mark.parametrize("inside", [".", "runs/a", "café/run"])
def test_train_out_inside_the_image_folder_is_refused(
        inside: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _images(tmp_path / "imgs", {"a": ["0.jpg", "1.jpg"], "café": ["2.jpg", "3.jpg"]})
    before = sorted(map(str, data.rglob("*")))
    out = data / inside
    code = run_app(app, ["train", "--data", f"imagefolder:{data}", "--out", str(out),
                         "--steps", "1", *FAST])
    assert code == 2
    _one_error(capsys.readouterr().err, f"--out {out}", f"image folder {data}")
    assert sorted(map(str, data.rglob("*"))) == before  # nothing written, no class made


@pytest.mark.parametrize("command", ["search", "export"])
def test_search_and_export_out_inside_the_image_folder_are_refused(
        command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    data = _images(tmp_path / "imgs", {"a": ["0.jpg"], "猫": ["图.jpg"]})
    before = sorted(map(str, data.rglob("*")))
    out = data / "猫" / "run"
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    args = (["search", "--space", "nasbench201", "--device", "pixel7", "--accuracy", "zc:snip",
             "--budget", "2"] if command == "search"
            else ["export", str(arch), "--format", "safetensors"])
    code = run_app(app, [*args, "--data", f"imagefolder:{data}", "--out", str(out)])
    assert code == 2
    _one_error(capsys.readouterr().err, f"--out {out}", f"image folder {data}")
    assert sorted(map(str, data.rglob("*"))) == before


def test_eval_csv_inside_the_image_folder_is_refused(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    data = shutil.copytree(folder, tmp_path / "imgs")
    out = tmp_path / "run"
    assert run_app(app, ["train", "--data", f"imagefolder:{data}", "--out", str(out),
                         "--steps", "1", "--no-eval", *FAST]) == 0
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    before = sorted(map(str, data.rglob("*")))
    common = ["eval", "--supernet", str(out), "--arch", str(arch), "--recal-batches", "1",
              "--workers", "0", "--batch-size", "4", "--accelerator", "cpu"]
    for extra in (["--data", f"imagefolder:{data}"], []):  # given, or the checkpoint's data
        capsys.readouterr()
        csv = data / "ant" / "scores.csv"
        assert run_app(app, [*common, *extra, "--csv", str(csv)]) == 2
        _one_error(capsys.readouterr().err, f"--csv {csv}", "image folder")
        assert sorted(map(str, data.rglob("*"))) == before


def _without_root_powers() -> list[str]:
    """A prefix that runs a child without root's power to read any file (empty when not root);
    skips when this machine cannot drop it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    drop = [setpriv or "setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    if setpriv is None or subprocess.run([*drop, "true"], capture_output=True).returncode:
        pytest.skip("running as root, and setpriv cannot drop CAP_DAC_OVERRIDE here: a mode "
                    "000 file stays readable, so the permission case cannot be built")
    return drop


def _cli(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([*prefix, sys.executable, "-m", "nasforge.cli", *args],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_an_unreadable_checkpoint_is_a_permission_problem_not_corruption(
        folder: Path, tmp_path: Path) -> None:
    prefix = _without_root_powers()
    out = tmp_path / "run"
    assert run_app(app, ["train", "--data", f"imagefolder:{folder}", "--out", str(out),
                         "--steps", "1", "--no-eval", *FAST]) == 0
    arch = tmp_path / "a.yaml"
    arch.write_text("space: elasticvit\n")
    ck = out / "last.ckpt"
    ck.chmod(0)
    r = _cli(prefix, "eval", "--supernet", str(out), "--arch", str(arch), "--accelerator", "cpu")
    ck.chmod(0o644)
    assert r.returncode == 2
    line = _one_error(r.stderr, str(ck), "permission denied")
    assert "corrupted" not in line


@pytest.mark.parametrize("case", ["dangling_link", "folder"])
def test_a_checkpoint_that_is_no_file_is_named_as_such(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck = tmp_path / "x.ckpt"
    if case == "dangling_link":
        ck.symlink_to(tmp_path / "gone.ckpt")
    else:
        (tmp_path / "run" / "last.ckpt").mkdir(parents=True)
        ck = tmp_path / "run"
    arch = tmp_path / "a.yaml"
    arch.write_text("space: elasticvit\n")
    assert run_app(app, ["eval", "--supernet", str(ck), "--arch", str(arch),
                         "--accelerator", "cpu"]) == 2
    need = "broken symbolic link" if case == "dangling_link" else "is a folder, not a file"
    assert "corrupted" not in _one_error(capsys.readouterr().err, need)


def test_unreadable_images_are_named_a_permission_problem(tmp_path: Path) -> None:
    prefix = _without_root_powers()
    data = _images(tmp_path / "imgs", {"a": ["0.jpg", "1.jpg"], "b": ["2.jpg", "3.jpg"]})
    for f in data.rglob("*.jpg"):
        f.chmod(0)
    out = tmp_path / "run"
    r = _cli(prefix, "train", "--data", f"imagefolder:{data}", "--out", str(out),
             "--steps", "1", "--no-eval", *FAST)
    assert r.returncode == 2
    line = _one_error(r.stderr, "unreadable", "permission denied")
    assert "corrupted" not in line
    assert not (out / "last.ckpt").exists()
