"""``nas rank``: FLOPs-stratified subnets, rank agreement of two accuracy sources, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nasforge.cli import app
from nasforge.cli._common import run_app
from nasforge.data import load_data
from nasforge.errors import InvalidInputError
from nasforge.evaluation import StandaloneAccuracy
from nasforge.evaluation import resolve
from nasforge.experiments.rank import rank_agreement
from nasforge.experiments.rank import stratified_archs
from nasforge.search_spaces import get_space
from nasforge.strategies import FlopsObjective
from nasforge.strategies import ParamsObjective


def test_stratified_archs_spread_over_flops_and_repeat_per_seed() -> None:
    space = get_space("elasticvit")
    archs = stratified_archs(space, 6, np.random.default_rng(0))
    flops = [space.flops(a) for a in archs]
    assert len({a.arch_id for a in archs}) == 6
    assert flops == sorted(flops)
    assert flops[-1] / flops[0] > 2.0, flops  # one per stratum: small to large
    again = stratified_archs(space, 6, np.random.default_rng(0))
    assert [a.arch_id for a in again] == [a.arch_id for a in archs]


def test_rank_agreement_of_flops_and_params() -> None:
    space = get_space("nasbench201_net")
    r = rank_agreement(space, FlopsObjective(space, name="flops"),
                       ParamsObjective(space, name="params"), n=10, seed=0, top_k=3)
    assert r.n == 10 and r.top_k == 3
    assert r.kendall_tau > 0.8 and r.spearman > 0.9  # params and FLOPs agree on NB201 cells
    assert 0.0 <= r.top_k_overlap <= 1.0
    d = r.to_dict()
    assert len(d["subnets"]) == 10 and set(d["seconds"]) == {"flops", "params"}
    with pytest.raises(InvalidInputError, match="two different"):
        rank_agreement(space, FlopsObjective(space, name="x"), ParamsObjective(space, name="x"))


def test_standalone_training_is_deterministic() -> None:
    space = get_space("nasbench201_net")
    data = load_data("synthetic:32", input_size=16, seed=0)
    arch = space.arch_from_str(  # type: ignore[attr-defined]
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|none~1|none~2|")
    a1 = StandaloneAccuracy(space, data, steps=2, batch_size=8).evaluate_many([arch])
    a2 = StandaloneAccuracy(space, data, steps=2, batch_size=8).evaluate_many([arch])
    assert a1[0] == a2[0] and 0.0 <= a1[0] <= 100.0
    with pytest.raises(InvalidInputError, match="steps >= 1"):
        StandaloneAccuracy(space, data, steps=0)


def test_bad_sources_are_one_line() -> None:
    space = get_space("nasbench201_net")
    for spec, match in (("oracle", "unknown accuracy source"), ("csv:only", "csv:PATH:COLUMN"),
                        ("supernet", "--supernet"), ("standalone", "--data")):
        with pytest.raises(InvalidInputError, match=match) as e:
            resolve(spec, space)
        assert "\n" not in str(e.value)


def test_cli_rank_identical_sources_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_app(app, ["rank", "--a", "zc:synflow", "--b", "zc:synflow"]) == 2
    err = capsys.readouterr().err
    assert "two different accuracy sources" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_rank_supernet_vs_standalone(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A 1-step NB201 supernet against 1-step stand-alone training on 32 synthetic images: the
    plumbing (both sources, JSON, plot), not the figure."""
    sn = tmp_path / "sn"
    assert run_app(app, ["train", "--space", "nasbench201_net", "--out", str(sn), "--data",
                         "synthetic:32", "--sampler", "uniform", "--steps", "1",
                         "--input-size", "16", "--batch-size", "4", "--accelerator", "cpu",
                         "--no-progress", "--no-eval"]) == 0
    capsys.readouterr()
    png = tmp_path / "rank.png"
    assert run_app(app, ["rank", "--space", "nasbench201_net", "--supernet",
                         str(sn / "last.ckpt"), "--a", "supernet", "--b", "standalone",
                         "--n", "3", "--steps", "1", "--json", "--plot", str(png)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["a"], out["b"], out["n"]) == ("supernet", "standalone", 3)
    assert -1.0 <= out["kendall_tau"] <= 1.0
    assert out["provenance"]["standalone"]["steps"] == 1
    assert out["provenance"]["supernet"]["data"].startswith("synthetic")
    assert all(0.0 <= s["a"] <= 100.0 and 0.0 <= s["b"] <= 100.0 for s in out["subnets"])
    assert png.stat().st_size > 1000


def test_cli_rank_proxy_against_a_benchmark_column(nb201_table: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    TABLE = nb201_table  # the generated NB201 table (tests/nb201_table.py)
    assert run_app(app, ["rank", "--space", "nasbench201_net", "--a", "zc:synflow", "--b",
                         f"csv:{TABLE}:cifar10_val", "--n", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 4 and out["b"] == f"csv:{TABLE}:cifar10_val"
    assert all(s["b"] > 10.0 for s in out["subnets"])  # top-1 % from the table


def test_a_saved_report_is_a_source_for_the_same_subnets(tmp_path: Path) -> None:
    space = get_space("nasbench201_net")
    first = rank_agreement(space, FlopsObjective(space, name="flops"),
                           ParamsObjective(space, name="params"), n=6, seed=3)
    path = tmp_path / "rank.json"
    path.write_text(json.dumps(first.to_dict()))
    src = resolve(f"report:{path}:a", space)
    again = rank_agreement(space, src, ParamsObjective(space, name="params"), n=6, seed=3)
    assert again.a_values == first.a_values and again.kendall_tau == first.kendall_tau
    assert src.provenance()["source"] == "flops"
    other = stratified_archs(space, 6, np.random.default_rng(4))
    with pytest.raises(InvalidInputError, match="not in report"):
        src.evaluate_many(other)
    with pytest.raises(InvalidInputError, match="report:PATH:a"):
        resolve(f"report:{path}:c", space)


def test_cli_rank_threads_apply_to_the_run_only(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--threads`` sets torch's intra-op threads for the run and restores them after (on a
    busy 2-core machine two threads measured 10x slower per training step than one)."""
    import torch

    space = get_space("nasbench201_net")
    rep = rank_agreement(space, FlopsObjective(space, name="flops"),
                         ParamsObjective(space, name="params"), n=5, seed=1)
    path = tmp_path / "rank.json"
    path.write_text(json.dumps(rep.to_dict()))
    before = torch.get_num_threads()
    assert run_app(app, ["rank", "--space", "nasbench201_net", "--a", f"report:{path}:a",
                         "--b", f"report:{path}:b", "--n", "5", "--seed", "1", "--threads",
                         str(before + 1), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kendall_tau"] == round(rep.kendall_tau, 4)
    assert torch.get_num_threads() == before
    assert run_app(app, ["rank", "--space", "nasbench201_net", "--a", f"report:{path}:a",
                         "--b", f"report:{path}:b", "--threads", "0"]) == 2
