"""``nas search`` end to end on the language spaces: a HAT SubTransformer within a latency
budget on an imported HAT-format device (no supernet: the documented capacity proxy), and
``elastic_lm`` scored by a text supernet's validation loss (minimised)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data import open_data
from nasforge.hardware_models import get_device
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.training.recipe import TrainConfig
from nasforge.supernet.training.samplers import create_sampler
from nasforge.supernet.training.trainer import SupernetTrainer
from tests.hardware_models.test_hat_csv import write_hat_csv


def test_hat_search_returns_a_subtransformer_within_the_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = write_hat_csv(tmp_path / "rpi.csv", n=200)
    assert run_app(app, ["hw", "import", str(csv_path), "--format", "hat-csv", "--device",
                         "rpi_gen", "--space", "hat_wmt14ende"]) == 0
    space = get_space("hat_wmt14ende")
    rng = np.random.default_rng(0)
    lat = get_device("rpi_gen").predict_many([space.sample(rng) for _ in range(50)])
    budget = float(np.quantile(lat, 0.3))  # a budget most SubTransformers exceed
    out = tmp_path / "search"
    code = run_app(app, ["search", "--space", "hat_wmt14ende", "--device", "rpi_gen",
                         "--latency", f"{budget:.3f}", "--budget", "40", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["space"] == "hat_wmt14ende" and 1 <= best["decoder_layer_num"] <= 6
    run = json.loads((out / "run.json").read_text())
    assert run["summary"]["best"]["latency_ms"] <= budget
    assert "proxy: log10(parameters)" in run["accuracy"]["kind"]
    # the proxy is monotone in size: no feasible candidate is larger than the best
    cands = [ln.split(",") for ln in (out / "candidates.csv").read_text().splitlines()]
    head, rows = cands[0], cands[1:]
    i_lat, i_par = head.index("latency_ms"), head.index("params_m")
    feasible = [float(r[i_par]) for r in rows if float(r[i_lat]) <= budget]
    assert run["summary"]["best"]["params_m"] == pytest.approx(max(feasible))


@pytest.fixture(scope="module")
def lm_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("lmsearch")
    rng = np.random.default_rng(0)
    words = ["while", "not", "done", ":", "x", "+=", "1", "\n"]
    corpus = folder / "c.txt"
    corpus.write_text(" ".join(words[i] for i in rng.integers(0, len(words), 5000)),
                      encoding="utf-8")
    space = get_space("elastic_lm")
    data = open_data(f"text:{corpus}", 64, 0)
    torch.manual_seed(0)
    cfg = TrainConfig(steps=2, batch_size=4, lr=3e-3, warmup_steps=1, input_size=64,
                      label_smoothing=0.0, distill="kd", augment=False)
    SupernetTrainer(build_supernet(space, data.num_classes),
                    create_sampler("sandwich", space, np.random.default_rng(0)), data, cfg,
                    folder / "run").fit()
    return folder / "run" / "last.ckpt"


@pytest.mark.slow
def test_elastic_lm_search_on_cpu_local_minimises_the_supernet_loss_per_token_budget(
        lm_ckpt: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["profile", "--device", "cpu-local", "--space", "elastic_lm",
                         "--budget", "8"]) == 0
    space = get_space("elastic_lm")
    rng = np.random.default_rng(0)
    ms = get_device("cpu-local-elastic_lm").predict_many([space.sample(rng) for _ in range(40)])
    budget = float(np.median(ms))  # ms per generated token
    out = tmp_path / "search"
    code = run_app(app, ["search", "--space", "elastic_lm", "--device", "cpu-local",
                         "--supernet", str(lm_ckpt), "--latency", f"{budget:.4f}",
                         "--budget", "8", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    assert "lower is better" in run["accuracy"]["kind"]
    assert run["summary"]["best"]["latency_ms"] <= budget
    rows = [ln.split(",") for ln in (out / "candidates.csv").read_text().splitlines()]
    i_acc, i_lat = rows[0].index("accuracy"), rows[0].index("latency_ms")
    losses = [float(r[i_acc]) for r in rows[1:] if float(r[i_lat]) <= budget]
    assert run["summary"]["best"]["accuracy"] == pytest.approx(min(losses))
