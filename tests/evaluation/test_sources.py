"""``ACCURACY_SOURCES``: every scheme resolves, for ``nas search`` (``resolve_inputs``) and for
``nas rank`` (``run_rank``), through the one resolver, to an objective of its kind; the specs'
grammar errors; the latency side (a device or a benchmark's latency column)."""

from __future__ import annotations

import json
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nasforge.errors import InvalidInputError
from nasforge.evaluation import ACCURACY_SOURCES
from nasforge.evaluation import AccuracyObjective
from nasforge.evaluation import EvalSettings
from nasforge.evaluation import PredictorObjective
from nasforge.evaluation import ProxyObjective
from nasforge.evaluation import ReportColumn
from nasforge.evaluation import SourceRequest
from nasforge.evaluation import StandaloneAccuracy
from nasforge.evaluation import SupernetAccuracyObjective
from nasforge.evaluation import TableLatency
from nasforge.evaluation import TabularBenchmark
from nasforge.evaluation import UnknownSourceError
from nasforge.evaluation import resolve
from nasforge.evaluation import resolve_latency
from nasforge.experiments._inputs import resolve_inputs
from nasforge.experiments.config import AccuracySource
from nasforge.experiments.config import ExperimentConfig
from nasforge.experiments.rank import RankConfig
from nasforge.experiments.rank import rank_agreement
from nasforge.experiments.rank import run_rank
from nasforge.search_spaces import get_space
from nasforge.strategies import FlopsObjective
from nasforge.strategies import LatencyObjective
from nasforge.strategies import ParamsObjective

SPACE = "nasbench201_net"

#: scheme -> (the objective class it resolves to, its metric label, batched)
KINDS: dict[str, tuple[type[AccuracyObjective], bool]] = {
    "quick": (SupernetAccuracyObjective, True),
    "supernet": (SupernetAccuracyObjective, True),
    "predictor": (PredictorObjective, False),
    "csv": (TabularBenchmark, False),
    "zc": (ProxyObjective, True),
    "standalone": (StandaloneAccuracy, True),
    "report": (ReportColumn, False),
}


class _Stop(Exception):
    """Raised by the spy once the source is built (rank need not score anything)."""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny supernet checkpoint, a tiny table, a tiny predictor and a tiny rank report."""
    import torch

    from nasforge.predictors import PREDICTORS
    from nasforge.supernet import build_supernet
    from nasforge.supernet.checkpoint import write_checkpoint

    root = tmp_path_factory.mktemp("sources")
    space = get_space(SPACE)
    torch.manual_seed(0)
    ckpt = write_checkpoint(root / "sn" / "last.ckpt", model=build_supernet(space, 10), step=1,
                            config={"space": SPACE, "num_classes": 10, "input_size": 16,
                                    "data": "synthetic:32"})
    nb = get_space("nasbench201")
    rng = np.random.default_rng(0)
    archs = list({a.arch_id: a for a in (nb.sample(rng) for _ in range(12))}.values())
    table = root / "t.csv"
    pd.DataFrame({"arch_str": [a.to_arch_str() for a in archs],  # type: ignore[attr-defined]
                  "acc": np.linspace(10.0, 90.0, len(archs)),
                  "pixel3_ms": np.linspace(1.0, 9.0, len(archs))}).to_csv(table, index=False)
    sarchs = [space.sample(rng) for _ in range(16)]
    gbdt = PREDICTORS.get("gbdt")(n_estimators=5).fit(
        space.encode_many(sarchs), np.array([space.params(a) for a in sarchs]))
    pred = gbdt.save(root / "pred")
    report = root / "rank.json"
    report.write_text(json.dumps(rank_agreement(
        space, FlopsObjective(space, name="flops"), ParamsObjective(space, name="params"),
        n=3, seed=0).to_dict()))
    return {"ckpt": Path(ckpt), "csv": table, "pred": pred, "report": report}


def _spec(scheme: str, files: dict[str, Path]) -> str:
    return {"quick": "quick", "supernet": f"supernet:{files['ckpt']}",
            "predictor": f"predictor:{files['pred']}", "csv": f"csv:{files['csv']}:acc",
            "zc": "zc:synflow", "standalone": "standalone",
            "report": f"report:{files['report']}:a"}[scheme]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]
        ) -> Iterator[Callable[[str, bool], list[tuple[SourceRequest, AccuracyObjective]]]]:
    """Wrap one scheme's builder: record each request and what it built (optionally stop)."""
    import nasforge.supernet

    # the quick supernet is the tiny checkpoint (no training in a unit test)
    monkeypatch.setattr(nasforge.supernet, "train_quick_supernet",
                        lambda space, cache, **kw: files["ckpt"])
    restore: list[tuple[str, Callable[[SourceRequest], AccuracyObjective]]] = []

    def install(scheme: str, stop: bool) -> list[tuple[SourceRequest, AccuracyObjective]]:
        builder = ACCURACY_SOURCES.get(scheme)
        calls: list[tuple[SourceRequest, AccuracyObjective]] = []

        def wrapped(req: SourceRequest) -> AccuracyObjective:
            obj = builder(req)
            calls.append((req, obj))
            if stop:
                raise _Stop
            return obj

        ACCURACY_SOURCES.remove(scheme)
        ACCURACY_SOURCES.add(scheme, wrapped)
        restore.append((scheme, builder))
        return calls

    yield install
    for scheme, builder in restore:
        ACCURACY_SOURCES.remove(scheme)
        ACCURACY_SOURCES.add(scheme, builder)


def test_every_registered_scheme_has_a_case() -> None:
    assert set(ACCURACY_SOURCES.list()) == set(KINDS)


@pytest.mark.parametrize("scheme", ACCURACY_SOURCES.list())
def test_search_and_rank_resolve_every_scheme_through_the_registry(
        scheme: str, files: dict[str, Path], spy: Callable[..., list], tmp_path: Path) -> None:
    kind, batched = KINDS[scheme]
    spec = _spec(scheme, files)
    calls = spy(scheme, False)
    cfg = ExperimentConfig(SPACE, "pixel7", accuracy=AccuracySource(spec, "synthetic:32"),
                           out=str(tmp_path / "run"),
                           evaluation=EvalSettings(accelerator="cpu"))
    inputs = resolve_inputs(cfg, progress=False)
    try:
        assert type(inputs.accuracy) is kind
        # the saved report's side a is FLOPs, minimised: a report source keeps its direction
        want = "minimize" if scheme == "report" else "maximize"
        assert inputs.accuracy.name == "accuracy" and inputs.accuracy.direction == want
        assert inputs.accuracy.batched is batched
        assert [req.spec for req, _ in calls] == [spec]
        assert calls[0][1] is inputs.accuracy
    finally:
        inputs.close()

    calls = spy(scheme, True)
    with pytest.raises(_Stop):
        run_rank(RankConfig(SPACE, spec, "zc:synflow" if scheme != "zc" else "zc:snip",
                            data="synthetic:32", n=2, steps=1,
                            settings=EvalSettings(accelerator="cpu", recal_batches=8)),
                 progress=False)
    (req, obj), = calls
    assert type(obj) is kind and obj.name == spec and req.spec == spec
    if isinstance(obj, SupernetAccuracyObjective):  # rank recalibrates on 8 batches
        assert obj.recal_batches == 8


def test_search_keeps_the_checkpoint_seed_and_rank_takes_its_own(files: dict[str, Path]) -> None:
    space = get_space(SPACE)
    spec = f"supernet:{files['ckpt']}"
    search = resolve(spec, space, seed=5, checkpoint_seed=True,
                     settings=EvalSettings(accelerator="cpu"))
    rank = resolve(spec, space, seed=5, settings=EvalSettings(accelerator="cpu"))
    assert isinstance(search, SupernetAccuracyObjective)
    assert isinstance(rank, SupernetAccuracyObjective)
    assert (search.seed, rank.seed) == (0, 5) and search.metric == "top1"


def test_bare_supernet_takes_the_rank_flag(files: dict[str, Path]) -> None:
    space = get_space(SPACE)
    obj = resolve("supernet", space, supernet=str(files["ckpt"]),
                  settings=EvalSettings(accelerator="cpu"))
    assert isinstance(obj, SupernetAccuracyObjective)
    assert obj.checkpoint == str(files["ckpt"])


@pytest.mark.parametrize(("spec", "error", "match"), [
    ("supernt:x", UnknownSourceError, "did you mean 'supernet'"),
    ("csv:only", InvalidInputError, "csv:PATH:COLUMN"),
    ("predictor:", InvalidInputError, "predictor:DIR"),
    ("quick:x", InvalidInputError, "takes no argument"),
    ("report:nope.json:c", InvalidInputError, "report:PATH:a"),
])
def test_bad_specs_state_the_rule(spec: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as e:
        resolve(spec, get_space(SPACE))
    assert "\n" not in str(e.value)


def test_latency_is_a_device_or_a_table_column(files: dict[str, Path]) -> None:
    nb = get_space("nasbench201")
    table = TabularBenchmark.from_csv(files["csv"], "acc", nb)
    column = resolve_latency("pixel3_ms", table=table, upper=5.0, name="latency_ms")
    assert isinstance(column, TableLatency) and column.table is table.table
    assert column.bound is not None and column.bound.upper == 5.0 and column.cheap
    assert isinstance(resolve_latency("pixel7"), LatencyObjective)
    with pytest.raises(InvalidInputError, match="no metric column"):
        resolve_latency("pixel5_ms", table=table)
