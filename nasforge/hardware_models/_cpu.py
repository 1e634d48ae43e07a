"""Profiling this machine (``cpu-local``): not implemented yet.

``nas profile`` and ``nas hw validate`` will measure blocks built by
:func:`nasforge.search_spaces.static.build_block` with the ``torch`` (eager, pinned thread
count), ``onnxruntime`` and external-command backends. Until then both commands stop with one
clear line instead of a traceback.
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import MissingLatencyError

__all__ = ["profile_device", "validate_device"]

_TODO = ("profiling {what} on this machine is not implemented yet in this version of nasforge; "
         "use a shipped device (nas devices) or import a measured table (nas hw import)")


def profile_device(device: str, space: str, **kwargs: Any) -> None:
    """Measure a latency table for ``space`` on ``device`` (not implemented yet).

    Raises:
        MissingLatencyError: always, with the workaround.
    """
    raise MissingLatencyError(_TODO.format(what=f"{space} blocks for {device!r}"))


def validate_device(device: str, space: str, **kwargs: Any) -> dict[str, Any]:
    """Compare ``device``'s model with end-to-end runs (not implemented yet).

    Raises:
        MissingLatencyError: always, with the workaround.
    """
    raise MissingLatencyError(_TODO.format(what=f"end-to-end {space} subnets for {device!r}"))
