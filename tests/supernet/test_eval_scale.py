"""Evaluation at scale: one held EvalSet gives the numbers of a fresh read per subnet, and
sharding over 2 gloo ranks or 2 Ray actors gives the numbers of one process, in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nasforge.data import load_data
from nasforge.data import resize_batch
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet
from nasforge.supernet.evaluate import EvalSet
from nasforge.supernet.evaluate import SubnetAccuracy
from nasforge.supernet.evaluate import evaluate_subnet
from nasforge.supernet.evaluate import evaluate_subnets
from nasforge.supernet.evaluate import recalibrate_at_resolution
from nasforge.supernet.evaluate import shard_positions
from nasforge.supernet.training.distributed import launch

OPTS = {"recal_batches": 2, "batch_size": 8, "seed": 1}


def _setup() -> tuple[object, object, list[object]]:
    space = get_space("elasticvit")
    data = load_data("synthetic:60", 32, seed=0, resolution_scale=0.125)
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes).eval()
    small = space.min_arch()
    archs = [space.arch_from_dict({**small.to_dict(), "resolution": r})
             for r in (256, 128, 192, 128)]
    return net, data, archs


def _reference(net: object, arch: object, data: object) -> float:
    """Top-1 read the way evaluation did before EvalSet: source batches afresh."""
    res = arch.resolution  # type: ignore[attr-defined]
    size = recalibrate_at_resolution(net, data, res, batches=OPTS["recal_batches"],  # type: ignore[arg-type]
                                     batch_size=OPTS["batch_size"], seed=OPTS["seed"])
    net.eval()  # type: ignore[attr-defined]
    correct = n = 0
    with torch.no_grad():
        for x, y in data.val_batches(OPTS["batch_size"]):  # type: ignore[attr-defined]
            correct += int((net(resize_batch(x, size)).argmax(1) == y).sum())  # type: ignore[operator]
            n += len(y)
    return correct / n


def test_held_eval_set_gives_the_fresh_numbers_in_order() -> None:
    net, data, archs = _setup()
    accs = evaluate_subnets(net, archs, data, **OPTS)  # type: ignore[arg-type]
    assert [a.resolution for a in accs] == [256, 128, 192, 128]
    assert [a.input_size for a in accs] == [32, 16, 24, 16]
    assert all(a.recal_images == 16 and a.num_images == data.num_val for a in accs)  # type: ignore[attr-defined]
    for arch, acc in zip(archs, accs, strict=True):
        net.set_active(arch)  # type: ignore[attr-defined]
        assert acc.top1 == _reference(net, arch, data)
    assert accs[1] == accs[3]  # same subnet, same held images: same number


def test_val_subset_and_bad_sizes() -> None:
    net, data, archs = _setup()
    es = EvalSet(data, val_images=5, **OPTS)  # type: ignore[arg-type]
    acc = evaluate_subnet(net, archs[0], data, eval_set=es)  # type: ignore[arg-type]
    assert acc.num_images == 5 and es.num_val == 5
    assert es.provenance()["val_images"] == 5
    assert es.provenance()["val_split_images"] == data.num_val  # type: ignore[attr-defined]
    with pytest.raises(InvalidInputError, match="recal_batches >= 1"):
        EvalSet(data, recal_batches=0)  # type: ignore[arg-type]


def test_shards_cover_every_position_once() -> None:
    sizes = [16, 32, 16, 24, 32, 16, 20]
    shards = [shard_positions(sizes, r, 3) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(len(sizes)))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def _eval_rank(rank: int, world_size: int, out: str) -> None:
    torch.set_num_threads(1)
    net, data, archs = _setup()
    accs = evaluate_subnets(net, archs, data, **OPTS)  # type: ignore[arg-type]
    Path(out, f"rank{rank}.json").write_text(json.dumps([a.__dict__ for a in accs]))


@pytest.mark.slow
def test_two_gloo_ranks_give_the_one_process_numbers(tmp_path: Path) -> None:
    launch(_eval_rank, 2, str(tmp_path))
    net, data, archs = _setup()
    local = [a.__dict__ for a in evaluate_subnets(net, archs, data, **OPTS)]  # type: ignore[arg-type]
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank{rank}.json").read_text()) == local


@pytest.mark.slow
@pytest.mark.ray
def test_ray_actor_pool_gives_the_one_process_numbers() -> None:
    ray = pytest.importorskip("ray")
    from nasforge.evaluation.pool import SupernetActorPool

    net, data, archs = _setup()
    local = evaluate_subnets(net, archs, data, **OPTS)  # type: ignore[arg-type]
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    try:
        with SupernetActorPool(net, data, workers=2, **OPTS) as pool:  # type: ignore[arg-type]
            remote = pool.evaluate_subnets(archs)  # type: ignore[arg-type]
            top1 = pool.evaluate_many(archs)  # type: ignore[arg-type]
    finally:
        if started:
            ray.shutdown()
    assert remote == local
    assert all(isinstance(a, SubnetAccuracy) for a in remote)
    np.testing.assert_array_equal(top1, [100.0 * a.top1 for a in local])
