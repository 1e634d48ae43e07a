"""The latency-model contract.

Call protocol:

* ``predict(arch)`` returns the whole-network latency in milliseconds, the sum of the latencies
  of ``space.blocks(arch)`` (the nn-Meter / Once-for-All convention, no fusion term unless the
  model documents one);
* ``predict_many(archs)`` returns the same numbers for many architectures as a float64 array of
  shape ``(len(archs),)``; search calls it millions of times, so implementations cache and
  vectorise;
* ``explain(arch)`` returns one :class:`BlockLatency` row per block: the block, the key it was
  looked up under, its latency and the provenance of that number (``measured``, ``predicted``,
  ``derived``).

Every number has a source: a block without one raises
:class:`~nasforge.errors.MissingLatencyError`, it never silently counts as zero.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Literal

import numpy as np

if TYPE_CHECKING:
    from nasforge.hardware_models._profile import DeviceProfile
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.search_spaces.block import Block

__all__ = ["PROVENANCES", "BlockLatency", "LatencyModel", "Provenance"]

Provenance = Literal["measured", "predicted", "derived"]
PROVENANCES: tuple[str, ...] = ("measured", "predicted", "derived")


@dataclass(frozen=True)
class BlockLatency:
    """One row of :meth:`LatencyModel.explain`.

    Attributes:
        block: the block.
        key: the latency-table key of the block on this device's keying scheme.
        ms: its latency in milliseconds.
        provenance: ``measured`` (a table entry), ``predicted`` (a regressor or the analytical
            estimate) or ``derived`` (another device's number times a documented factor).
        source: what produced the number (``table``, ``regressor``, ``analytic``, ``pixel6 x
            0.93``, ...).
    """

    block: Block
    key: str
    ms: float
    provenance: Provenance
    source: str = ""

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (the block as its non-default fields)."""
        return {"block": self.block.to_dict(), "key": self.key, "ms": self.ms,
                "provenance": self.provenance, "source": self.source}


class LatencyModel(abc.ABC):
    """Base class of every device latency model (see the module docstring for the protocol)."""

    #: The device profile (name, hardware, runtime, provenance, errors).
    profile: DeviceProfile

    @property
    def name(self) -> str:
        """The device name."""
        return self.profile.name

    @property
    def provenance(self) -> Provenance:
        """How the device's numbers were obtained, overall."""
        return self.profile.provenance

    @abc.abstractmethod
    def explain(self, arch: Arch) -> list[BlockLatency]:
        """Per-block latencies of ``arch`` with their keys and provenance."""

    def predict(self, arch: Arch) -> float:
        """Whole-network latency of ``arch`` in ms (the sum of its blocks)."""
        return float(self.predict_many([arch])[0])

    @abc.abstractmethod
    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Latencies of ``archs`` in ms, shape ``(len(archs),)``, float64."""

    def predict_indices(self, space: SearchSpace, matrix: np.ndarray) -> np.ndarray | None:
        """Latencies of the rows of an index matrix of ``space`` in ms, shape ``(n,)``, or
        None when this model has no index-matrix path for the space (the default): callers
        then build the architectures and use :meth:`predict_many`."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(device={self.profile.name!r})"
