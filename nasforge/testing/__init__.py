"""Reusable contract test suites: subclass one and supply a fixture (Optuna's pattern)."""

from __future__ import annotations
