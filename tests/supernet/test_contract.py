"""Every registered supernet passes the supernet contract (extract equivalence, FLOPs, slicing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from nasforge.search_spaces import get_space
from nasforge.supernet import SUPERNETS
from nasforge.supernet import Supernet
from nasforge.supernet import build_supernet
from nasforge.testing.contracts import SupernetContract
from nasforge.testing.contracts import perturb_supernet


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: big models on a shared 2-core machine run far faster so."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=SUPERNETS.list())
def supernet(request: pytest.FixtureRequest) -> Supernet:
    space = get_space(request.param)
    net = build_supernet(space, num_classes=space.num_classes)  # type: ignore[attr-defined]
    perturb_supernet(net, seed=0)
    return net.eval()


class TestEverySupernet(SupernetContract):
    pass
