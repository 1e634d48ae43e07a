"""Training telemetry beside the CSV log: TensorBoard event files when ``tensorboard`` is installed.

:class:`Telemetry` writes, per step, each subnet's loss (``loss/<role>``), the lr, images/s and
the share of step time spent waiting for data, and whatever scalars the trainer adds (the
min/max validation top-1). Without ``tensorboard`` (the ``[data]`` extra installs it) or without
an output folder it does nothing, and says so once in the log.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

__all__ = ["Telemetry"]

logger = logging.getLogger(__name__)


class Telemetry:
    """TensorBoard scalars of a training run.

    Args:
        log_dir: where the event files go (``None``: nothing is written).
        every: write the per-step scalars every N steps.
    """

    def __init__(self, log_dir: Path | None, every: int = 1) -> None:
        self.every = max(1, every)
        self._writer: Any = None
        if log_dir is None:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            logger.info("tensorboard is not installed: no event files (pip install "
                        "'nasforge[data]'); the CSV log is still written")
            return
        self._writer = SummaryWriter(log_dir=str(log_dir))

    @property
    def enabled(self) -> bool:
        return self._writer is not None

    def step(self, step: int, records: list[dict[str, Any]], images_per_s: float,
             data_wait: float) -> None:
        """Scalars of one training step (``records`` as the trainer logs them)."""
        if self._writer is None or step % self.every:
            return
        values = {"perf/images_per_s": images_per_s, "perf/data_wait_share": data_wait}
        if records:
            values["lr"] = float(records[-1]["lr"])
        for r in records:
            values[f"loss/{r['role']}"] = float(r["ce"])
        self.scalars(step, values)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """Write ``values`` at ``step``."""
        if self._writer is None:
            return
        for k, v in values.items():
            self._writer.add_scalar(k, v, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
