"""``nas train`` / ``nas eval`` on generated JPEG folders: 2 workers, corrupt files, bad input,
kill -9 and resume (the shipped recipes on such a folder: tests/supernet/test_cli_recipes.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nasforge.cli import app
from nasforge.cli._common import run_app
from tests.data._images import make_imagefolder

REPO = Path(__file__).resolve().parents[2]
FAST = ["--input-size", "16", "--resolution-scale", "0.0625", "--batch-size", "6",
        "--accelerator", "cpu", "--no-progress", "--set", "loader.max_bad_share=0.2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_imagefolder(tmp_path_factory.mktemp("imnet"))


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], err


def test_train_on_generated_jpegs_with_two_workers_skips_the_corrupt_file(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    code = run_app(app, ["train", "--data", f"imagefolder:{folder}", "--out", str(out),
                         "--steps", "5", "--workers", "2", "--sampler", "sandwich",
                         "--set", "train.keep_last=2", "--set", "train.checkpoint_every=2",
                         *FAST])
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "trained 5/5 steps" in text and "images/s" in text
    assert "broken.jpg" in caplog.text  # reported, then skipped
    assert sorted(p.name for p in out.glob("step-*.ckpt")) == ["step-0000004.ckpt",
                                                             "step-0000005.ckpt"]
    rows = (out / "train_log.csv").read_text().splitlines()
    header = rows[0].split(",")
    sizes = {r.split(",")[header.index("resolution")] for r in rows[1:]}
    assert {"8", "16"} <= sizes  # min subnet at 128/16 px, max at 256/16 px
    assert any((out / "tb").iterdir())  # TensorBoard event file


def test_eval_at_two_resolutions_gives_two_labelled_accuracies(
        folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    out = tmp_path / "run"
    assert run_app(app, ["train", "--data", f"imagefolder:{folder}", "--out", str(out),
                         "--steps", "2", "--workers", "0", "--no-eval", *FAST]) == 0
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    capsys.readouterr()
    assert run_app(app, ["eval", "--supernet", str(out), "--arch", str(arch), "--resolution",
                         "128", "--resolution", "256", "--recal-batches", "1", "--workers", "0",
                         "--accelerator", "cpu"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "top-1" in ln]
    assert len(lines) == 2
    assert "at 8 px input (resolution 128 px" in lines[0]
    assert "at 16 px input (resolution 256 px" in lines[1]


@pytest.mark.parametrize("case", ["missing", "no_classes", "all_corrupt", "bad_key", "bad_type",
                                  "no_shard"])
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--out", str(tmp_path / "o"), "--no-progress", "--steps", "1",
            "--accelerator", "cpu", "--workers", "0"]
    if case == "missing":
        args += ["--data", f"imagefolder:{tmp_path}/nope"]
        needle = f"{tmp_path}/nope"
    elif case == "no_classes":
        (tmp_path / "flat").mkdir()
        (tmp_path / "flat" / "a.jpg").write_bytes(b"x")
        args += ["--data", f"imagefolder:{tmp_path}/flat"]
        needle = "no class sub-folders"
    elif case == "all_corrupt":
        for c in ("a", "b"):
            (tmp_path / "bad" / c).mkdir(parents=True)
            for i in range(3):
                (tmp_path / "bad" / c / f"{i}.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        args += ["--data", f"imagefolder:{tmp_path}/bad", "--batch-size", "2"]
        needle = "unreadable"
    elif case == "bad_key":
        recipe = tmp_path / "r.yaml"
        recipe.write_text("train:\n  lrr: 0.1\n")
        args += ["--config", str(recipe)]
        needle = "'train.lrr'"
    elif case == "bad_type":
        recipe = tmp_path / "r.yaml"
        recipe.write_text("loader:\n  workers: many\n")
        args += ["--config", str(recipe)]
        needle = "'loader.workers': expected an integer"
    else:
        args += ["--data", f"webdataset:{tmp_path}/shard-{{000..009}}.tar"]
        needle = "matches no shard"
    assert run_app(app, args) == 2
    _one_line_error(capsys, needle)


def _train_cmd(out: Path, folder: Path, resume: bool = False) -> list[str]:
    return [sys.executable, "-m", "nasforge.cli", "train", "--data", f"imagefolder:{folder}",
            "--out", str(out), "--steps", "8", "--workers", "2", "--sampler", "uniform",
            "--no-eval", "--set", "train.checkpoint_every=2", "--set", "train.mixup=0.2",
            *FAST, *(["--resume"] if resume else [])]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if k.startswith(("model.", "optim."))}


@pytest.mark.slow
def test_kill_9_then_resume_with_workers_is_bitwise_identical(folder: Path,
                                                              tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    full, run = tmp_path / "full", tmp_path / "run"
    subprocess.run(_train_cmd(full, folder), check=True, env=env, capture_output=True)
    proc = subprocess.Popen(_train_cmd(run, folder), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    log = run / "train_log.csv"
    # kill -9 once the step-4 checkpoint is written and step 5 has started
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) > 4:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the trainer and its DataLoader workers
    proc.wait()
    assert (run / "last.ckpt").exists()
    subprocess.run(_train_cmd(run, folder, resume=True), check=True, env=env,
                   capture_output=True)
    a, b = _weights(full / "last.ckpt"), _weights(run / "last.ckpt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (full / "train_log.csv").read_text() == (run / "train_log.csv").read_text()
