"""Objectives: what a search measures, in which direction, under which bound.

One interface, :class:`Objective` (:mod:`.base`): a name, a direction (``minimize`` /
``maximize``), an optional :class:`Bound`, a ``cheap`` flag and a vectorised
``evaluate_many(archs) -> np.ndarray``. Cheap objectives (FLOPs, params, a latency model, a
predictor) are computed for every proposed candidate so that candidates violating their bounds
are rejected *before* the expensive ones (supernet accuracy, a tabular benchmark query) run
(Archai's ``SearchObjectives`` with ``compute_intensive``).

One module per cheap analytic adapter: :class:`FlopsObjective`, :class:`ParamsObjective`,
:class:`LatencyObjective` and :class:`CallableObjective`; the measured accuracy sources
(supernet, stand-alone training, tabular benchmark, predictor, zero-cost proxy) live in
:mod:`nasforge.evaluation`. What they call in other
layers is typed by the protocols of :mod:`.protocols`; every per-architecture cache is an
:class:`ArchMemo`. :class:`SearchObjectives` collects the objectives of one search, checks
feasibility and gives the scalar score of single-objective mode.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("nasbench201")
    >>> objs = SearchObjectives([FlopsObjective(space, upper=100.0), ParamsObjective(space)],
    ...                         primary="params_m", mode="single")
    >>> archs = [space.sample(np.random.default_rng(0)) for _ in range(3)]
    >>> objs.evaluate(archs).shape
    (3, 2)
"""

from __future__ import annotations

from nasforge.strategies.objectives._callable import CallableObjective
from nasforge.strategies.objectives._flops import FlopsObjective
from nasforge.strategies.objectives._latency import LatencyObjective
from nasforge.strategies.objectives._memo import ArchMemo
from nasforge.strategies.objectives._params import ParamsObjective
from nasforge.strategies.objectives._search_objectives import SearchObjectives
from nasforge.strategies.objectives.base import Bound
from nasforge.strategies.objectives.base import Direction
from nasforge.strategies.objectives.base import Objective
from nasforge.strategies.objectives.protocols import DeviceProfileView
from nasforge.strategies.objectives.protocols import LatencySource
from nasforge.strategies.objectives.protocols import SurrogatePredictor
from nasforge.strategies.objectives.protocols import WeightSharedSupernet

__all__ = [
    "ArchMemo",
    "Bound",
    "CallableObjective",
    "DeviceProfileView",
    "Direction",
    "FlopsObjective",
    "LatencyObjective",
    "LatencySource",
    "Objective",
    "ParamsObjective",
    "SearchObjectives",
    "SurrogatePredictor",
    "WeightSharedSupernet",
]
