"""Language-model training in the supernet trainer: each subnet at its own context, per-token
in-place distillation aligned with the teacher's positions, the samplers, resume, and a
teacher-forced HAT step on pairs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data import IGNORE
from nasforge.data import open_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.losses import soft_target_ce
from nasforge.supernet.training.recipe import TrainConfig
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.task import LMTask
from nasforge.supernet.training.task import Seq2SeqTask
from nasforge.supernet.training.task import lm_loss
from nasforge.supernet.training.trainer import SupernetTrainer


def _corpus(tmp_path: Path, n: int = 40_000) -> Path:
    rng = np.random.default_rng(0)
    words = ["def", "return", "self", "import", "value", "(", ")", ":", "\n    ", "x", "=", "1"]
    path = tmp_path / "code.txt"
    path.write_text(" ".join(words[i] for i in rng.integers(0, len(words), n // 3))[:n],
                    encoding="utf-8")
    return path


def _trainer(tmp_path: Path, sampler: str = "sandwich", steps: int = 8, out: Path | None = None,
             **opts: object) -> SupernetTrainer:
    space = get_space("elastic_lm")
    data = open_data(f"text:{_corpus(tmp_path)}", 128, 0)
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes)
    cfg = TrainConfig(steps=steps, batch_size=4, lr=3e-3, warmup_steps=1, input_size=128,
                      label_smoothing=0.0, distill="kd", augment=False, checkpoint_every=2)
    return SupernetTrainer(net, create_sampler(sampler, space, np.random.default_rng(0), **opts),
                           data, cfg, out)


@pytest.mark.slow
def test_subnets_train_at_their_own_context_and_the_loss_falls(tmp_path: Path) -> None:
    tr = _trainer(tmp_path, steps=10)
    before = tr.validate()
    records = [r for _ in range(10) for r in tr.train_step()]
    after = tr.validate()
    space = tr.model.space
    for r in records:  # the size logged is the arch's context, cropped to the 128-token window
        ctx = {"max": space.max_arch(), "min": space.min_arch()}.get(r["role"])
        if ctx is not None:
            assert r["resolution"] == min(ctx.context_length, 128)
    assert {r["resolution"] for r in records} >= {64, 128}
    assert after["max_loss"] < before["max_loss"] - 0.3, (before, after)
    assert after["min_loss"] < before["min_loss"], (before, after)


def test_distillation_targets_are_the_teachers_first_positions() -> None:
    torch.manual_seed(0)
    task = LMTask()
    teacher = torch.randn(2, 16, 7)
    student = torch.randn(2, 8, 7, requires_grad=True)
    y = torch.randint(0, 7, (2, 16))
    logits, t = task.loss_view(student, y, 8)
    target = task.target_view(teacher, y, 8)
    assert torch.equal(t, y[:, :8].reshape(-1))
    assert torch.equal(target, teacher[:, :8].reshape(-1, 7))
    loss = soft_target_ce(logits, target)
    want = -(teacher[:, :8].softmax(-1) * student.log_softmax(-1)).sum(-1).mean()
    assert torch.allclose(loss, want)


def test_complexity_aware_levels_fall_inside_the_lm_flops_range(tmp_path: Path) -> None:
    tr = _trainer(tmp_path, sampler="complexity_aware", steps=2, bound=5.0)
    space = tr.model.space
    lo, hi = (space.flops(a) / 1e6 for a in (space.min_arch(), space.max_arch()))
    levels = tr.sampler.levels  # type: ignore[attr-defined]
    assert lo < levels[0] < levels[-1] < hi and len(levels) >= 4
    records = tr.train_step()
    for r in records:
        if r["role"] not in ("max", "min") and r["level_mflops"] != "":
            assert r["level_mflops"] <= r["mflops"] <= r["level_mflops"] + 5.0


def test_resumed_lm_run_equals_the_uninterrupted_one(tmp_path: Path) -> None:
    full = _trainer(tmp_path, steps=4, out=tmp_path / "full")
    full.fit()
    cut = _trainer(tmp_path, steps=4, out=tmp_path / "cut")
    cut.fit(stop_at=2)
    again = _trainer(tmp_path, steps=4, out=tmp_path / "cut")
    assert again.resume() == 2
    again.fit()
    a = load_file(str(tmp_path / "full" / "last.ckpt"))
    b = load_file(str(tmp_path / "cut" / "last.ckpt"))
    model = [k for k in a if k.startswith("model.")]
    assert model and all(torch.equal(a[k], b[k]) for k in model)


def test_seq2seq_loss_skips_padding() -> None:
    task = Seq2SeqTask()
    logits = torch.randn(2, 4, 5)
    y = torch.tensor([[1, 2, IGNORE, IGNORE], [3, IGNORE, IGNORE, IGNORE]])
    flat, t = task.loss_view(logits, y, 4)
    assert t.tolist() == [1, 2, 3] and torch.equal(flat[2], logits[1, 0])
    assert torch.equal(task.target_view(logits, y, 4), flat)


@pytest.mark.slow
def test_hat_trains_teacher_forced_on_pairs_and_scores_by_loss(tmp_path: Path) -> None:
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"a{i} b{i} c\tc b{i} a{i}\n" for i in range(40)), encoding="utf-8")
    space = get_space("hat_iwslt14deen")
    data = open_data(f"textpairs:{tsv}", 8, 0)
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes)
    cfg = TrainConfig(steps=1, batch_size=2, lr=1e-4, warmup_steps=0, input_size=8,
                      distill="kd", augment=False)
    tr = SupernetTrainer(net, create_sampler("sandwich", space, np.random.default_rng(0),
                                             num_random=0), data, cfg)
    records = tr.train_step()
    assert [r["role"] for r in records] == ["max", "min"]
    assert all(np.isfinite(r["loss"]) for r in records)
    net.set_active(space.min_arch())
    loss, tokens = lm_loss(net, data, batch_size=4, max_batches=1, device="cpu")
    assert np.isfinite(loss) and 0 < tokens <= 4 * 8


@pytest.mark.slow
def test_nas_train_elastic_lm_defaults_to_the_embedded_corpus(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    out = tmp_path / "run"
    code = run_app(app, ["train", "--space", "elastic_lm", "--out", str(out), "--steps", "2",
                         "--batch-size", "2", "--input-size", "64", "--accelerator", "cpu",
                         "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "validation loss" in text and "nats/token" in text
    with (out / "train_log.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["role"] for r in rows} == {"max", "random", "min"}
    from nasforge.supernet.checkpoint import read_checkpoint

    cfg = read_checkpoint(out / "last.ckpt").config
    assert cfg["data"] == "pystdlib"
    assert cfg["data_provenance"]["python"] and cfg["data_provenance"]["files"] > 0


def test_nas_eval_refuses_a_text_checkpoint_in_one_line(tmp_path: Path) -> None:
    from tests._refusals import assert_one_line
    from tests._refusals import invoke

    _trainer(tmp_path, steps=1, out=tmp_path / "run").fit()
    arch = tmp_path / "a.yaml"
    arch.write_text(get_space("elastic_lm").min_arch().to_yaml())
    code, err = invoke(["eval", "--supernet", str(tmp_path / "run" / "last.ckpt"), "--arch",
                        str(arch), "--accelerator", "cpu"])
    assert_one_line(code, err, "trained on text", "nas search --supernet")
