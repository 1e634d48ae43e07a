"""Data tests run torch on one intra-op thread (:mod:`tests._one_thread`)."""

from __future__ import annotations

from tests._one_thread import _one_thread  # noqa: F401  (autouse fixture)
