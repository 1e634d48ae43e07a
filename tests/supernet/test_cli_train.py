from __future__ import annotations

from pathlib import Path

import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app

TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--steps", "1", "--input-size", "16",
        "--batch-size", "4", "--accelerator", "cpu", "--no-progress", "--no-eval"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sn")
    assert run_app(app, ["train", "--space", "elasticvit", "--out", str(out), *TINY]) == 0
    assert (out / "last.ckpt").exists() and (out / "train_log.csv").exists()
    return out


def _one_line_error(capsys: pytest.CaptureFixture[str], *needles: str) -> None:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err


def test_eval_prints_top1_with_its_input_size(run_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elasticvit").min_arch().to_yaml())
    capsys.readouterr()
    assert run_app(app, ["eval", "--supernet", str(run_dir / "last.ckpt"), "--arch", str(arch),
                         "--recal-batches", "1", "--accelerator", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "at 16 px input" in out


def test_missing_data_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, ["train", "--data", f"imagefolder:{tmp_path}/nope", "--out",
                         str(tmp_path / "o"), "--no-progress"])
    assert code == 2
    _one_line_error(capsys, f"{tmp_path}/nope")


def test_corrupted_checkpoint(run_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "last.ckpt"
    raw = (run_dir / "last.ckpt").read_bytes()
    bad.write_bytes(raw[: len(raw) // 3])
    arch = tmp_path / "a.yaml"
    arch.write_text("{}")
    assert run_app(app, ["eval", "--supernet", str(bad), "--arch", str(arch)]) == 2
    _one_line_error(capsys, "corrupted or truncated")


def test_checkpoint_of_another_space(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_app(app, ["train", "--space", "elasticvit_efficient", "--out", str(run_dir),
                         "--resume", *TINY])
    assert code == 2
    _one_line_error(capsys, "space 'elasticvit'", "elasticvit_efficient")


def test_arch_the_supernet_cannot_hold(run_dir: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.search_spaces import get_space

    arch = get_space("elasticvit").max_arch().to_dict()
    arch["widths"][6] = 336  # wider than the largest T4
    path = tmp_path / "wide.yaml"
    import yaml

    path.write_text(yaml.safe_dump(arch))
    assert run_app(app, ["eval", "--supernet", str(run_dir), "--arch", str(path)]) == 2
    _one_line_error(capsys, "widths[6] = 336")


@pytest.mark.parametrize(("flags", "needles"), [
    (["--seed", "-1"], ["train.seed", "-1", "[0, 2**32)"]),
    (["--lr", "nan"], ["train.lr", "nan", "finite"]),
    (["--lr", "0"], ["train.lr", "(0, 1000]"]),
    (["--ema", "2"], ["train.ema_decay", "2.0", "(0, 1)"]),
    (["--set", "train.batch_size=0"], ["train.batch_size", "0", ">= 1"]),
    (["--set", "train.batch_size=-4"], ["train.batch_size", "-4"]),
    (["--set", "train.warmup_steps=-1"], ["train.warmup_steps", "-1"]),
    (["--set", "train.grad_clip=.inf"], ["train.grad_clip", "inf"]),
    (["--set", "train.label_smoothing=1.5"], ["train.label_smoothing", "1.5"]),
    (["--precision", "fp8"], ["fp8", "fp32, bf16, fp16"]),
    (["--precision", "fp16"], ["fp16 needs a CUDA device"]),
    (["--ckpt-every", "0"], ["--ckpt-every '0'", "5m"]),
    (["--ckpt-every", "5x"], ["--ckpt-every '5x'"]),
    (["--nproc", "0"], ["--nproc 0", "give 1.."]),
    (["--nproc", "4096"], ["--nproc 4096", "CPU cores"]),
])
def test_bad_numbers_are_one_line_before_any_work(flags: list[str], needles: list[str],
                                                  tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    args = [a for a in TINY if a not in ("--steps", "1")]
    code = run_app(app, ["train", "--out", str(tmp_path / "o"), "--steps", "1", *args, *flags])
    assert code == 2
    _one_line_error(capsys, *needles)
    assert not (tmp_path / "o").exists()  # nothing was written


def test_resume_without_a_checkpoint_and_a_second_run_into_one_folder(
        run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["train", "--out", str(tmp_path / "new"), "--resume", *TINY]) == 2
    _one_line_error(capsys, "no checkpoint", "without --resume")
    assert run_app(app, ["train", "--out", str(run_dir), *TINY]) == 2
    _one_line_error(capsys, "already holds a run", "--resume")
    (tmp_path / "file").write_text("x")
    assert run_app(app, ["train", "--out", str(tmp_path / "file"), *TINY]) == 2
    _one_line_error(capsys, "is a file")


def test_ckpt_every_minutes_is_a_recipe_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["train", "--ckpt-every", "90s", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint_minutes: 1.5" in text and "checkpoint_every: null" in text
    assert run_app(app, ["train", "--ckpt-every", "20", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "checkpoint_every: 20" in text and "checkpoint_minutes: null" in text
