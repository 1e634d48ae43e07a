from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from safetensors.torch import save_file

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data import load_data
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.distributed import all_reduce_gradients
from nasforge.supernet.training.distributed import gradient_buckets
from nasforge.supernet.training.distributed import launch
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.trainer import SupernetTrainer
from nasforge.supernet.training.trainer import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic:32", "--sampler", "uniform", "--input-size", "16",
        "--batch-size", "8", "--accelerator", "cpu", "--no-progress", "--no-eval",
        "--set", "train.warmup_steps=1", "--set", "train.lr=0.05", "--set",
        "train.optimizer=sgd", "--set", "train.dropout=0"]


def _train_rank(rank: int, world_size: int, out: str) -> None:
    torch.set_num_threads(1)
    space = get_space("elasticvit")
    data = load_data("synthetic:64", input_size=16, seed=0)
    cfg = TrainConfig(steps=5, batch_size=16, input_size=16, warmup_steps=1, lr=1e-3)
    torch.manual_seed(0)
    net = build_supernet(space, 10)
    sampler = create_sampler("performance_aware", space, np.random.default_rng(0),
                             levels=[77, 110], pool_size=4, bank_size=2, num_subnets=1,
                             include_max=False, include_min="level")
    trainer = SupernetTrainer(net, sampler, data, cfg, None)
    probe = space.min_arch()
    x, y = data.train_x[:32], data.train_y[:32]

    def loss() -> float:
        net.set_active(probe)
        net.eval()
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(net(x), y))

    before = loss()
    trainer.fit()
    after = loss()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    state["losses"] = torch.tensor([before, after], dtype=torch.float64)
    save_file(state, str(Path(out) / f"rank{rank}.safetensors"))


@pytest.mark.slow
def test_two_gloo_ranks_end_with_identical_weights_and_lower_loss(tmp_path: Path) -> None:
    launch(_train_rank, 2, str(tmp_path))
    r0 = load_file(str(tmp_path / "rank0.safetensors"))
    r1 = load_file(str(tmp_path / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    # BatchNorm running statistics stay per rank (recalibrated before any evaluation)
    assert all(torch.equal(r0[k], r1[k]) for k in r0
               if k != "losses" and "running" not in k and "num_batches" not in k)
    before, after = r0["losses"].tolist()
    assert np.isfinite(after) and after < before


def test_buckets_group_by_dtype_and_respect_the_size_limit() -> None:
    grads = [torch.zeros(256), torch.zeros(256), torch.zeros(4, dtype=torch.float64),
             torch.zeros(300_000), torch.zeros(8)]
    per_tensor = gradient_buckets(grads, bucket_mb=0)
    assert [len(b) for b in per_tensor] == [1] * 5
    buckets = gradient_buckets(grads, bucket_mb=1.0)  # 1 MB: the 1.2 MB tensor is alone
    assert sorted(len(b) for b in buckets) == [1, 1, 1, 2]  # [a, b] [f64] [big] [c]
    assert all(len({g.dtype for g in b}) == 1 for b in buckets)
    assert sum(len(b) for b in buckets) == len(grads)
    assert len(gradient_buckets(grads, bucket_mb=25.0)) == 2  # float32, float64


def _reduce_rank(rank: int, world_size: int, out: str) -> None:
    gen = torch.Generator().manual_seed(rank)
    shapes = [(3, 5), (7,), (2, 2, 3), (11,)]
    a = [torch.randn(s, generator=gen) for s in shapes]
    b = [t.clone() for t in a]
    calls_bucketed = all_reduce_gradients(a, bucket_mb=25.0)
    calls_single = all_reduce_gradients(b, bucket_mb=0)
    save_file({**{f"a{i}": t for i, t in enumerate(a)}, **{f"b{i}": t for i, t in enumerate(b)},
               "calls": torch.tensor([calls_bucketed, calls_single])},
              str(Path(out) / f"r{rank}.safetensors"))


@pytest.mark.slow
def test_bucketed_all_reduce_averages_like_per_tensor(tmp_path: Path) -> None:
    launch(_reduce_rank, 2, str(tmp_path))
    r0, r1 = (load_file(str(tmp_path / f"r{i}.safetensors")) for i in (0, 1))
    assert r0["calls"].tolist() == [1, 4]
    shapes = [(3, 5), (7,), (2, 2, 3), (11,)]
    g0, g1 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    for i, s in enumerate(shapes):
        want = (torch.randn(s, generator=g0) + torch.randn(s, generator=g1)) / 2
        for r in (r0, r1):
            assert torch.allclose(r[f"a{i}"], want, atol=1e-6)
            assert torch.allclose(r[f"b{i}"], want, atol=1e-6)


def _params(run: Path) -> dict[str, torch.Tensor]:
    t = load_file(str(run / "last.ckpt"))
    return {k: v for k, v in t.items() if k.startswith("model.")
            and "running" not in k and "num_batches" not in k}


def _log_steps(run: Path) -> list[int]:
    with (run / "train_log.csv").open(newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_torchrun_and_nproc_equal_one_process_with_the_same_global_batch(tmp_path: Path) -> None:
    steps = ["--steps", "3"]
    one, nproc, trun = tmp_path / "one", tmp_path / "nproc", tmp_path / "torchrun"
    # one process, each batch split into the two ranks' strided halves (BN sees each half);
    # no dropout (masks cannot match) and SGD (Adam magnifies float noise in tiny gradients)
    assert run_app(app, ["train", "--out", str(one), *steps, *TINY,
                         "--set", "train.micro_batches=2"]) == 0
    assert run_app(app, ["train", "--out", str(nproc), *steps, *TINY, "--nproc", "2"]) == 0
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                    "--nproc-per-node", "2", "-m", "nasforge.cli", "train", "--out", str(trun),
                    *steps, *TINY], check=True, env=_env(), capture_output=True, timeout=300)
    ref = _params(one)
    for run in (nproc, trun):
        got = _params(run)
        assert got.keys() == ref.keys()
        worst = max(float((got[k] - ref[k]).abs().max()) for k in ref)
        assert worst < 1e-5, (run.name, worst)
        # one checkpoint, one log (rank 0 writes), each step logged once
        assert sorted(p.name for p in run.iterdir() if p.is_file()) == ["last.ckpt",
                                                                          "train_log.csv"]
        assert _log_steps(run) == _log_steps(one)
    assert sorted(set(_log_steps(one))) == [0, 1, 2]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.mark.slow
def test_kill_9_of_one_rank_stops_the_run_with_one_line_then_resume(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "nasforge.cli", "train", "--out", str(run), "--steps", "6",
           *TINY, "--nproc", "2", "--ckpt-every", "1"]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if (run / "last.ckpt").exists() and len(_log_steps(run)) >= 2:
            break
        time.sleep(0.2)
    ranks = [c for c in _children(proc.pid)
             if "spawn" in Path(f"/proc/{c}/cmdline").read_text()]
    assert len(ranks) >= 2, ranks
    os.kill(ranks[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training rank "), err
    assert "SIGKILL" in lines[0] and "--resume" in lines[0]
    assert run_app(app, ["train", "--out", str(run), "--steps", "6", *TINY, "--nproc", "2",
                         "--ckpt-every", "1", "--resume"]) == 0
    with (run / "train_log.csv").open(newline="") as f:
        rows = [(r["step"], r["role"], r["arch_id"]) for r in csv.DictReader(f)]
    assert len(rows) == len(set(rows))  # no step logged twice
    assert sorted({int(s) for s, _, _ in rows}) == list(range(6))
