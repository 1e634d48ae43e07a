"""The contract suites, under their historical import path.

Each kind has its own module: :mod:`nasforge.testing.space`, :mod:`nasforge.testing.predictor`,
:mod:`nasforge.testing.strategy`, :mod:`nasforge.testing.supernet` and
:mod:`nasforge.testing.supernet_lm` (language supernets). This module re-exports
their public names so that ``from nasforge.testing.contracts import SpaceContract`` keeps
working.
"""

from __future__ import annotations

from nasforge.testing.predictor import PredictorContract
from nasforge.testing.predictor import synthetic_regression
from nasforge.testing.space import SpaceContract
from nasforge.testing.strategy import StrategyContract
from nasforge.testing.strategy import synthetic_problem
from nasforge.testing.supernet import SupernetContract
from nasforge.testing.supernet import perturb_supernet
from nasforge.testing.supernet_lm import LMSupernetContract

#: The historical private name of :func:`synthetic_problem` (``tests/strategies/test_resume.py``).
_synthetic_problem = synthetic_problem

__all__ = [
    "LMSupernetContract",
    "PredictorContract",
    "SpaceContract",
    "StrategyContract",
    "SupernetContract",
    "perturb_supernet",
    "synthetic_problem",
    "synthetic_regression",
]
