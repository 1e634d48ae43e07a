"""Accuracy evaluators of subnets (temporary module: see :class:`SupernetAccuracyObjective`)."""

from __future__ import annotations

from nasforge.strategies.objectives import SupernetAccuracyObjective as SubnetEvaluator

__all__ = ["SubnetEvaluator"]
