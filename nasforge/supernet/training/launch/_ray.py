"""The Ray Train launcher: ranks as Ray Train workers of a ``TorchTrainer``.

``nas train --ray-address ADDR --ray-workers N [--gpus-per-worker G]`` runs the same rank body
as ``torchrun`` does: Ray Train starts N worker processes, initialises their
``torch.distributed`` group (gloo on CPU workers, nccl on GPU ones) and calls the function in
each, which joins that group
(:func:`~nasforge.supernet.training.distributed.init_from_env` picks it up). Rank 0 writes
``OUT/last.ckpt`` and the log as usual, so ``OUT`` must be a path every node sees (a shared
file system; on one machine any folder).

Fault tolerance: when a worker (or its node) is lost, Ray Train restarts the worker group up to
``max_failures`` times (``FailureConfig``); the training rank body resumes each restarted
worker from ``OUT/last.ckpt``, so the run continues from its last checkpoint. Set the cadence
with ``--ckpt-every``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge._extras import import_optional
from nasforge.errors import InvalidInputError
from nasforge.supernet.training.launch.base import LaunchFailure

__all__ = ["RayTrainLauncher", "check_ray_address"]


def check_ray_address(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast, in one line, when ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``; ``auto``
    is left to Ray) does not answer.

    Raises:
        InvalidInputError: a malformed or unreachable address.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InvalidInputError(f"--ray-address {address!r}: give HOST:PORT of the Ray head "
                                "(e.g. 10.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as e:
        raise InvalidInputError(f"--ray-address {address}: no Ray head answers there "
                                f"({e.strerror or e}); start one with `ray start --head` or "
                                "fix the address") from None


@dataclass(frozen=True)
class RayTrainLauncher:
    """Ranks as the workers of a Ray Train ``TorchTrainer`` on a Ray cluster.

    Attributes:
        address: the Ray head (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``).
        world_size: number of workers (ranks).
        storage: Ray Train's run folder (on storage every node sees).
        gpus_per_worker: GPUs per worker (0: CPU workers with gloo).
        max_failures: worker-group restarts allowed.
    """

    address: str
    world_size: int | None
    storage: Path
    gpus_per_worker: float = 0.0
    max_failures: int = 3

    def launch(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on every worker; the workers' return values stay there.

        Raises:
            InvalidInputError: an unreachable address or a cluster that cannot be joined.
            LaunchFailure: the run failed more than ``max_failures`` times.
            MissingDependencyError: Ray is not installed.
        """
        self._connect()
        from ray.train import FailureConfig
        from ray.train import RunConfig
        from ray.train import ScalingConfig
        from ray.train.torch import TorchTrainer

        resources: dict[str, float] = {"CPU": 1.0}
        if self.gpus_per_worker:
            resources["GPU"] = float(self.gpus_per_worker)
        trainer = TorchTrainer(
            _worker, train_loop_config={"function": function, "args": args},
            scaling_config=ScalingConfig(num_workers=int(self.world_size or 1),
                                         use_gpu=self.gpus_per_worker > 0,
                                         resources_per_worker=resources),
            run_config=RunConfig(name="nas-train", storage_path=str(self.storage),
                                 failure_config=FailureConfig(max_failures=self.max_failures)),
        )
        try:
            trainer.fit()
        except Exception as e:  # Ray wraps worker errors in its own types
            text = str(e).strip().splitlines()
            raise LaunchFailure(f"Ray Train run failed after {self.max_failures} restart(s): "
                                f"{text[-1] if text else type(e).__name__}", kind="ray"
                                ) from None

    def _connect(self) -> None:
        check_ray_address(self.address)
        ray = import_optional("ray", extra="ray", feature="training on a Ray cluster")
        if ray.is_initialized():
            return
        try:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InvalidInputError(f"--ray-address {self.address}: cannot join the Ray cluster "
                                    f"({str(e).splitlines()[0] if str(e) else e!r})") from None


def _worker(config: dict[str, Any]) -> None:
    """One Ray Train worker: the launched function with its arguments."""
    config["function"](*config["args"])
