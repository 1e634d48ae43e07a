"""Search: objectives, ask/tell strategies, the search driver, results, their Optuna studies.

Importing this package registers the built-in strategies: ``random``, ``evolution``,
``predictor``, ``gradient`` and ``optuna``.
"""

from __future__ import annotations

from nasforge.strategies import _evolution  # noqa: F401  (registers the strategy)
from nasforge.strategies import _gradient  # noqa: F401  (registers the strategy)
from nasforge.strategies import _optuna  # noqa: F401  (registers the strategy)
from nasforge.strategies import _predictor  # noqa: F401  (registers the strategy)
from nasforge.strategies import _random  # noqa: F401  (registers the strategy)
from nasforge.strategies._evolution import EvolutionStrategy
from nasforge.strategies._gradient import GradientStrategy
from nasforge.strategies._nsga2 import crowding_distance
from nasforge.strategies._nsga2 import hypervolume_2d
from nasforge.strategies._nsga2 import non_dominated_fronts
from nasforge.strategies._nsga2 import nsga2_select
from nasforge.strategies._nsga2 import pareto_mask
from nasforge.strategies._optuna import OptunaStrategy
from nasforge.strategies._predictor import PredictorStrategy
from nasforge.strategies._random import RandomStrategy
from nasforge.strategies._run import Callback
from nasforge.strategies._run import run_search
from nasforge.strategies.base import STRATEGIES
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy
from nasforge.strategies.base import require_choice_space
from nasforge.strategies.objectives import Bound
from nasforge.strategies.objectives import CallableObjective
from nasforge.strategies.objectives import FlopsObjective
from nasforge.strategies.objectives import LatencyObjective
from nasforge.strategies.objectives import Objective
from nasforge.strategies.objectives import ParamsObjective
from nasforge.strategies.objectives import SearchObjectives
from nasforge.strategies.result import Candidate
from nasforge.strategies.result import SearchResult
from nasforge.strategies.storage import SearchStudy
from nasforge.strategies.storage import StorageURL
from nasforge.strategies.storage import open_storage

__all__ = [
    "STRATEGIES",
    "BaseStrategy",
    "Bound",
    "CallableObjective",
    "Callback",
    "Candidate",
    "EvolutionStrategy",
    "FlopsObjective",
    "GradientStrategy",
    "LatencyObjective",
    "Objective",
    "OptunaStrategy",
    "ParamsObjective",
    "PredictorStrategy",
    "RandomStrategy",
    "SearchObjectives",
    "SearchResult",
    "SearchStudy",
    "StorageURL",
    "crowding_distance",
    "hypervolume_2d",
    "non_dominated_fronts",
    "nsga2_select",
    "open_storage",
    "pareto_mask",
    "register_strategy",
    "require_choice_space",
    "run_search",
]
