"""The module-scoped fixture that runs torch on one intra-op thread: big models on a shared
2-core machine run far faster so. A package's conftest imports it to apply it there."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
