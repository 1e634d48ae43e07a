"""What the objective adapters call in the layers below, as structural types.

The adapters do not import concrete device, predictor or supernet classes at run time; they
state what they need as :class:`typing.Protocol` s, which the concrete classes satisfy:

* :class:`LatencySource`: :class:`nasforge.hardware_models.base.LatencyModel` (vectorised
  ``predict_many`` and a device ``profile`` with its provenance);
* :class:`SurrogatePredictor`: :class:`nasforge.predictors.base.BasePredictor` (``predict`` on
  an encoding matrix, returning a :class:`~nasforge.predictors.base.Prediction`);
* :class:`WeightSharedSupernet`: :class:`nasforge.supernet.Supernet` (``set_active`` of a
  subnet, as :func:`nasforge.supernet.evaluate.evaluate_subnet` uses it).

Each is ``runtime_checkable``: an adapter checks its argument once in ``__init__`` and raises
:class:`~nasforge.errors.IncompatibleComponentsError` naming what is missing.

Example:
    >>> from nasforge.predictors import PREDICTORS
    >>> isinstance(PREDICTORS.get("gbdt")(), SurrogatePredictor)
    True
    >>> isinstance(object(), LatencySource)
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol
from typing import runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from nasforge.predictors.base import Prediction
    from nasforge.search_spaces.arch import Arch

__all__ = ["DeviceProfileView", "LatencySource", "SurrogatePredictor", "WeightSharedSupernet"]


class DeviceProfileView(Protocol):
    """The part of a device profile an objective records (``DeviceProfile`` satisfies it)."""

    @property
    def name(self) -> str:
        """Registered device name."""
        ...

    @property
    def provenance(self) -> str:
        """``measured``, ``predicted`` or ``derived``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The profile as a JSON-ready dict."""
        ...


@runtime_checkable
class LatencySource(Protocol):
    """A device latency model: ``predict_many(archs)`` in ms and the device's profile."""

    @property
    def profile(self) -> DeviceProfileView:
        """The device profile (name, provenance)."""
        ...

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        """Latencies in ms: float64 array of shape ``(len(archs),)``."""
        ...


@runtime_checkable
class SurrogatePredictor(Protocol):
    """A fitted surrogate over architecture encodings (``BasePredictor``'s public protocol)."""

    @property
    def is_fitted(self) -> bool:
        """Whether ``fit`` (or ``load``) has run."""
        ...

    def predict(self, X: np.ndarray) -> Prediction:
        """Predictions for ``X: (m, d)``: ``mean: (m,)``, ``std: (m,)`` or None."""
        ...


@runtime_checkable
class WeightSharedSupernet(Protocol):
    """A weight-shared supernet whose subnets are chosen with ``set_active``."""

    def set_active(self, arch: Arch) -> None:
        """Make ``arch`` the subnet the next forward runs."""
        ...
