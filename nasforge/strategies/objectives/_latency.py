"""Device latency in ms from a latency model's vectorised ``predict_many``.

Example:
    >>> from nasforge.hardware_models import get_device
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> latency = LatencyObjective(get_device("pixel6"), upper=25.0)
    >>> latency.name, latency.direction, latency.cheap
    ('pixel6_ms', 'minimize', True)
    >>> small, large = latency.evaluate_many([space.min_arch(), space.max_arch()])
    >>> bool(0 < small < large)
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.strategies.objectives.base import Objective
from nasforge.strategies.objectives.protocols import LatencySource

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.choice_space import ChoiceSpace

__all__ = ["LatencyObjective"]


class LatencyObjective(Objective):
    """Device latency in ms from a latency model's vectorised ``predict_many``.

    The latency model caches per block; this adapter keeps no cache of its own.

    Args:
        model: a latency model (:class:`~.protocols.LatencySource`, e.g. any
            :class:`~nasforge.hardware_models.base.LatencyModel`); its profile's name and
            provenance are recorded.
        lower: lower bound in ms (e.g. to drop degenerate near-zero cells).
        upper: latency budget in ms.
        name: column name; defaults to ``<device>_ms``.

    Raises:
        IncompatibleComponentsError: ``model`` lacks ``predict_many`` or ``profile``.
    """

    def __init__(self, model: LatencySource, *, lower: float | None = None,
                 upper: float | None = None, name: str | None = None) -> None:
        if not isinstance(model, LatencySource):
            raise IncompatibleComponentsError(
                f"LatencyObjective needs a latency model with predict_many(archs) and a device "
                f"profile; {type(model).__name__} lacks them: pass a model from get_device(name)"
            )
        device = model.profile.name or "device"
        super().__init__(name or f"{device}_ms", "minimize", lower=lower, upper=upper,
                         cheap=True)
        self.model = model
        self.device = str(device)

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        return np.asarray(self.model.predict_many(list(archs)), dtype=np.float64)

    def evaluate_indices(self, space: ChoiceSpace, matrix: np.ndarray) -> np.ndarray | None:
        """The model's ``predict_indices`` (None when it has no index-matrix path)."""
        predict = getattr(self.model, "predict_indices", None)
        out = None if predict is None else predict(space, matrix)
        return None if out is None else np.asarray(out, dtype=np.float64)

    def provenance(self) -> dict[str, Any]:
        return {"kind": "latency", "device": self.device, "unit": "ms",
                "model": type(self.model).__name__, "profile": self.model.profile.to_dict()}
