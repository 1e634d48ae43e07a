"""The launcher interface: where the ranks of a training run come from.

A launcher runs one picklable, top-level ``function(*args)`` on every rank of a run and returns
rank 0's return value (Lightning's ``strategies/launchers``, its seam and not its code). The
rank body itself joins the ``torch.distributed`` group the launcher describes through the
``torchrun`` environment (:func:`~nasforge.supernet.training.distributed.init_from_env`), so one
body serves every launcher.

Example:
    >>> from nasforge.supernet.training.launch import InProcessLauncher
    >>> isinstance(InProcessLauncher(), Launcher)
    True
    >>> InProcessLauncher().launch(max, 2, 5)
    5
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from nasforge.errors import NasforgeError

__all__ = ["LaunchFailure", "Launcher"]


class LaunchFailure(NasforgeError):
    """A rank (or the Ray Train run) died or raised, so the run stopped.

    Attributes:
        kind: ``"rank"`` (one local rank died or raised) or ``"ray"`` (Ray Train gave up after
            its restarts); the caller adds how to continue the run.
    """

    def __init__(self, message: str, kind: str = "rank") -> None:
        super().__init__(message)
        self.kind = kind


@runtime_checkable
class Launcher(Protocol):
    """Starts the ranks of a run (satisfied by :class:`InProcessLauncher`,
    :class:`TorchrunLauncher`, :class:`SpawnLauncher` and :class:`RayTrainLauncher`)."""

    @property
    def world_size(self) -> int | None:
        """How many ranks :meth:`launch` runs (``None``: decided by the environment)."""

    def launch(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on every rank; rank 0's return value (``None`` where this
        process is not rank 0 or the ranks live elsewhere).

        Raises:
            LaunchFailure: a rank died or raised an error that is not a
                :class:`~nasforge.errors.NasforgeError` (those are re-raised as they are).
        """
