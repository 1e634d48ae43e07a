"""A zero-cost proxy (``zc:synflow``, ``zc:jacob_cov``, ...) as the accuracy objective.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201_net")
    >>> obj = ProxyObjective.from_name("zc:synflow", space, seed=0)
    >>> obj.name, obj.direction
    ('zc:synflow', 'maximize')
    >>> vals = obj.evaluate_many([space.max_arch(), space.min_arch()])
    >>> bool(vals[0] > vals[1])
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.proxies import PROXIES
from nasforge.proxies import BaseProxy
from nasforge.proxies import Batch
from nasforge.proxies import check_proxy_inputs
from nasforge.proxies import get_proxy
from nasforge.proxies import score_archs
from nasforge.strategies.objectives import ArchMemo

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["PROXY_PREFIX", "ProxyObjective"]

#: Accuracy sources named ``zc:<proxy>`` are zero-cost proxies.
PROXY_PREFIX = "zc:"


class ProxyObjective(AccuracyObjective):
    """A zero-cost proxy of each architecture's randomly initialised network (maximised).

    Scores are memoised per ``arch_id`` (a score is a function of the architecture, the seed
    and the batch, all fixed here). The proxy plays the expensive (accuracy) role: it runs only
    on candidates that pass the cheap bounds.

    Args:
        space: a network space (``has_model``).
        proxy: the proxy.
        seed: initialisation seed of every scored network.
        batch: one labelled batch, required when ``proxy.needs_data``.
        name: column name (default ``zc:<proxy>``).
        lower: lower bound on the score.
        upper: upper bound on the score.

    Raises:
        IncompatibleComponentsError: ``space`` is tabular.
        InvalidInputError: the proxy needs data and ``batch`` is None.
    """

    batched = True

    def __init__(self, space: SearchSpace, proxy: BaseProxy, *, seed: int = 0,
                 batch: Batch | None = None, name: str | None = None,
                 lower: float | None = None, upper: float | None = None) -> None:
        check_proxy_inputs(space, proxy, batch)
        super().__init__(name or f"{PROXY_PREFIX}{proxy.name}", "maximize", lower=lower,
                         upper=upper, cheap=False)
        self.space = space
        self.proxy = proxy
        self.seed = seed
        self.batch = batch
        self._memo: ArchMemo[str] = ArchMemo(max_size=1 << 16)

    @classmethod
    def from_name(cls, source: str, space: SearchSpace, *, seed: int = 0,
                  batch: Batch | None = None, data: str | None = None,
                  batch_size: int = 16, name: str | None = None) -> ProxyObjective:
        """The objective of an accuracy source named ``zc:<proxy>`` (e.g. ``zc:synflow``).

        Args:
            source: ``zc:<proxy>``.
            space: a network space.
            seed: initialisation seed (and the seed of the batch draw).
            batch: one labelled batch; or
            data: a dataset spec (``digits``, ``cifar10:PATH``, ...; what ``--data`` takes)
                from whose training split ``batch_size`` images are drawn with ``seed``, for
                proxies that need data (a data-free proxy loads nothing).
            batch_size: images in the batch drawn from ``data``.
            name: column name (default ``zc:<proxy>``).

        Raises:
            InvalidInputError: ``source`` does not start with ``zc:``; a data proxy without
                ``batch`` or ``data``.
            UnknownNameError: no such proxy (the message lists the registered ones).
        """
        if not source.startswith(PROXY_PREFIX):
            raise InvalidInputError(
                f"a zero-cost accuracy source is named '{PROXY_PREFIX}<proxy>', got {source!r}; "
                f"proxies: {', '.join(PROXY_PREFIX + n for n in PROXIES.list())}"
            )
        proxy = get_proxy(source[len(PROXY_PREFIX):])
        if batch is None and data is not None and proxy.needs_data:
            batch = _draw_batch(data, space, seed, batch_size)
        return cls(space, proxy, seed=seed, batch=batch, name=name)

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        archs = list(archs)
        if not archs:
            return np.zeros(0)

        def compute(idx: list[int]) -> np.ndarray:
            return score_archs(self.space, [archs[i] for i in idx], self.proxy, seed=self.seed,
                               batch=self.batch)

        return self._memo.lookup([a.arch_id for a in archs], compute)

    def provenance(self) -> dict[str, Any]:
        return {"kind": "zero_cost_proxy", "proxy": self.proxy.name, "seed": self.seed,
                "data": self.batch is not None, "space": self.space.name}


def _draw_batch(spec: str, space: SearchSpace, seed: int, size: int) -> Batch:
    """``size`` training images of dataset ``spec`` at the space's largest resolution."""
    import torch

    from nasforge.data import load_data

    res = max((int(getattr(a, "resolution", 32)) for a in (space.max_arch(), space.min_arch())),
              default=32)
    d = load_data(spec, input_size=res, seed=seed)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(d.train_y), generator=g)[:size]
    return d.train_x[idx], d.train_y[idx]
