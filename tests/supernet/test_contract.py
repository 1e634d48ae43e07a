"""Every registered supernet passes the supernet contract (extract equivalence, FLOPs, slicing)."""

from __future__ import annotations

import pytest

from nasforge.search_spaces import get_space
from nasforge.supernet import SUPERNETS
from nasforge.supernet import Supernet
from nasforge.supernet import build_supernet
from nasforge.testing.contracts import SupernetContract
from nasforge.testing.contracts import perturb_supernet


# the language supernets (a spec with a builder) keep their own contract: test_lm_supernets.py
@pytest.fixture(scope="module",
                params=[n for n in SUPERNETS.list() if SUPERNETS.get(n).builder is None])
def supernet(request: pytest.FixtureRequest) -> Supernet:
    space = get_space(request.param)
    net = build_supernet(space, num_classes=space.num_classes)  # type: ignore[attr-defined]
    perturb_supernet(net, seed=0)
    return net.eval()


class TestEverySupernet(SupernetContract):
    pass
