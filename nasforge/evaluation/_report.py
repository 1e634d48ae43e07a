"""One side of a saved ``nas rank --json`` report as an accuracy source (``report:PATH:a``).

An expensive reference (stand-alone training) is computed once and compared with several
supernets; the subnets must be the report's (same space, ``n`` and seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation.base import AccuracyObjective
from nasforge.structured import load_structured

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = ["ReportColumn"]


class ReportColumn(AccuracyObjective):
    """One side (``a`` or ``b``) of a saved ``nas rank --json`` report, looked up by ``arch_id``.

    Args:
        name: column name.
        path: the report (a ``nas rank --json`` file).
        side: ``a`` or ``b``.
    """

    def __init__(self, name: str, path: Path, side: str) -> None:
        rep = load_structured(path, "rank report", kind="json")
        direction = (rep.get("directions") or {}).get(rep[side], "maximize")
        # the saved source's direction (a loss is minimised); older reports: maximize
        super().__init__(name, "minimize" if direction == "minimize" else "maximize",
                         cheap=True)
        self.path = path
        self.values = {s["arch_id"]: float(s[side]) for s in rep["subnets"]}
        self._prov = {"kind": "saved nas rank report", "path": str(path), "source": rep[side],
                      **rep.get("provenance", {}).get(rep[side], {})}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        missing = [a.arch_id for a in archs if a.arch_id not in self.values]
        if missing:
            raise InvalidInputError(f"{len(missing)} subnets (e.g. {missing[0]}) are not in "
                                    f"report {self.path}; use the report's space, --n and --seed")
        return np.array([self.values[a.arch_id] for a in archs])

    def provenance(self) -> dict[str, Any]:
        return dict(self._prov)
