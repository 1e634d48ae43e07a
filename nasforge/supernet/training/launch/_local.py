"""Launchers on this machine: in-process, ``torchrun`` (detected from its environment) and
spawn(N) (``nas train --nproc N``).

The spawn launcher runs each rank through :func:`_spawned`, which sends rank 0's return value,
or any rank's :class:`~nasforge.errors.NasforgeError`, back to the parent over a queue, so the
parent reports one line and the ranks print nothing (Lightning's ``_MultiProcessingLauncher``
returns its results the same way).
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError
from nasforge.supernet.training.launch.base import LaunchFailure

__all__ = ["InProcessLauncher", "SpawnLauncher", "TorchrunLauncher", "under_torchrun"]

#: exit code of a spawned rank that stopped on a user error (the CLI's usage code)
_USER_ERROR = 2


def under_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher) started this process as one of several ranks.

    Example:
        >>> import os
        >>> under_torchrun() == ("WORLD_SIZE" in os.environ)
        True
    """
    return "WORLD_SIZE" in os.environ


@dataclass(frozen=True)
class InProcessLauncher:
    """One rank: ``function`` runs in this process."""

    world_size: int | None = 1

    def launch(self, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


@dataclass(frozen=True)
class TorchrunLauncher:
    """This process is one of the ranks ``torchrun`` started (``RANK``, ``WORLD_SIZE``, ...):
    ``function`` runs here and joins their group; every rank gets its own return value."""

    world_size: int | None = None

    def launch(self, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


@dataclass(frozen=True)
class SpawnLauncher:
    """``nproc`` local ranks, spawned with the ``torchrun`` environment
    (:func:`~nasforge.supernet.training.distributed.launch`); the ranks initialise their group
    themselves.

    Attributes:
        world_size: number of ranks (>= 1).
    """

    world_size: int | None = 2

    def launch(self, function: Callable[..., Any], *args: Any) -> Any:
        """Run ``function(*args)`` on the ranks; rank 0's return value.

        Raises:
            NasforgeError: the user error a rank stopped on (rank 0's when it has one).
            LaunchFailure: a rank was killed, exited or raised another error.
        """
        import torch.multiprocessing as mp

        from nasforge.supernet.training.distributed import launch

        queue = mp.get_context("spawn").SimpleQueue()
        try:
            launch(_spawned, int(self.world_size or 1), queue, function, args, backend="")
        except mp.ProcessExitedException as e:
            error = _first_error(_drain(queue))
            if error is not None and e.exit_code == _USER_ERROR:
                raise error from None
            how = (f"was killed by {e.signal_name}" if e.signal_name
                   else f"exited with code {e.exit_code}")
            raise LaunchFailure(f"training rank {e.error_index} {how}, so the run stopped"
                                ) from None
        except mp.ProcessRaisedException as e:
            last = (str(e).strip().splitlines() or ["?"])[-1]
            raise LaunchFailure(f"training rank {e.error_index} failed ({last}), so the run "
                                "stopped") from None
        values = [v for kind, _, v in _drain(queue) if kind == "value"]
        return values[0] if values else None


def _spawned(rank: int, world_size: int, queue: Any, function: Callable[..., Any],
             args: tuple[Any, ...]) -> None:
    """One spawned rank: ``function(*args)``; rank 0 sends its value, a rank stopped by a user
    error sends the error and exits with the usage code."""
    try:
        value = function(*args)
    except NasforgeError as e:
        queue.put(("error", rank, _picklable(e)))
        sys.exit(_USER_ERROR)
    if rank == 0:
        queue.put(("value", rank, value))


def _picklable(error: NasforgeError) -> NasforgeError:
    """``error`` itself when it survives a round trip through pickle, else its message as an
    :class:`~nasforge.errors.InvalidInputError`."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any error class whose arguments do not round-trip
        return InvalidInputError(str(error))
    return error


def _drain(queue: Any) -> list[tuple[str, int, Any]]:
    out = []
    while not queue.empty():
        out.append(queue.get())
    return out


def _first_error(items: list[tuple[str, int, Any]]) -> NasforgeError | None:
    """Rank 0's error when it sent one, else the first one sent."""
    errors = sorted((rank, i, e) for i, (kind, rank, e) in enumerate(items) if kind == "error")
    return errors[0][2] if errors else None
