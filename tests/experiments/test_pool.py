"""The Ray actor pool gives the in-process evaluator's numbers, from one shared copy of the
weights (a local Ray with two 1-CPU actors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nasforge.data import load_data
from nasforge.errors import InvalidInputError
from nasforge.evaluation import SupernetAccuracyObjective as SubnetEvaluator
from nasforge.search_spaces import get_space
from nasforge.supernet import build_supernet

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def local_ray() -> object:
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    yield ray
    if started:
        ray.shutdown()


def test_pool_rejects_bad_sizes() -> None:
    from nasforge.evaluation.pool import SupernetActorPool

    space = get_space("elasticvit")
    with pytest.raises(InvalidInputError, match="workers >= 1"):
        SupernetActorPool(build_supernet(space, 10), load_data("synthetic:40", 16), workers=0)


@pytest.mark.slow
def test_pool_matches_local_evaluator(local_ray: object) -> None:
    from nasforge.evaluation.pool import SupernetActorPool

    space = get_space("elasticvit")
    data = load_data("synthetic:120", 24, seed=0)
    torch.manual_seed(0)
    net = build_supernet(space, data.num_classes).eval()
    rng = np.random.default_rng(0)
    archs = [space.min_arch(), *[space.sample(rng) for _ in range(3)]]
    archs.append(archs[1])  # a duplicate is evaluated once
    opts = {"recal_batches": 2, "batch_size": 32, "seed": 3}
    local = SubnetEvaluator(net, data, **opts).evaluate_many(archs)
    with SupernetActorPool(net, data, workers=2, **opts) as pool:
        remote = pool.evaluate_many(archs)
        assert pool.provenance()["workers"] == 2
        assert remote.shape == (len(archs),)
        assert np.array_equal(pool.evaluate_many(archs[:1]), remote[:1])  # cached
    np.testing.assert_allclose(remote, local, atol=1e-9)
    assert ray.is_initialized()  # the pool leaves a Ray it did not start running
