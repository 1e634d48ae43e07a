"""Supernet training on a Ray cluster through Ray Train's ``TorchTrainer``.

``nas train --ray-address ADDR --ray-workers N [--gpus-per-worker G]`` runs the same trainer as
``torchrun`` does: Ray Train starts N worker processes, initialises their ``torch.distributed``
group (gloo on CPU workers, nccl on GPU ones) and calls :func:`_train_loop` in each, which
joins that group (:func:`~nasforge.supernet.training.distributed.init_from_env` picks it up) and
runs
:func:`~nasforge.supernet.training.train_supernet` on its rank's shard. Rank 0 writes
``OUT/last.ckpt`` and the log as usual, so ``OUT`` must be a path every node sees (a shared
file system; on one machine any folder).

Fault tolerance: when a worker (or its node) is lost, Ray Train restarts the worker group up to
``max_failures`` times (``FailureConfig``); each restarted loop resumes from ``OUT/last.ckpt``,
so the run continues from its last checkpoint. Set the cadence with ``--ckpt-every``.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from nasforge._extras import import_optional
from nasforge.errors import InvalidInputError

__all__ = ["check_ray_address", "train_on_ray"]

logger = logging.getLogger(__name__)


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


def _train_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: join the group Ray made and train (resuming when a checkpoint of
    an earlier attempt exists)."""
    import ray.train
    import ray.train.torch

    from nasforge.search_spaces import get_space
    from nasforge.supernet.training.distributed import init_from_env
    from nasforge.supernet.training.recipe import recipe_from_dict
    from nasforge.supernet.training.train import train_supernet
    from nasforge.supernet.training.trainer import CHECKPOINT_NAME

    out = Path(config["out"])
    resume = bool(config["resume"]) or (out / CHECKPOINT_NAME).is_file()
    ctx = init_from_env(ray.train.torch.get_device())
    if resume and not config["resume"]:
        logger.info("rank %d: resuming from %s (an earlier attempt's checkpoint)", ctx.rank,
                    out / CHECKPOINT_NAME)
    train_supernet(get_space(config["space"]), recipe_from_dict(config["recipe"]), out,
                   resume=resume, progress=False, device=ctx.device)


def train_on_ray(space: str, recipe: dict[str, Any], out: Path, *, resume: bool, address: str,
                 workers: int, gpus_per_worker: float = 0.0, max_failures: int = 3) -> int:
    """Train a supernet of ``space`` with ``recipe`` on ``workers`` Ray Train workers.

    Args:
        space: search space name.
        recipe: the recipe as plain data
            (:meth:`~nasforge.supernet.training.recipe.Recipe.to_dict`).
        out: the run folder (on storage every node sees).
        resume: continue from ``out/last.ckpt``.
        address: the Ray head (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``).
        workers: number of workers (ranks).
        gpus_per_worker: GPUs per worker (0: CPU workers with gloo).
        max_failures: worker-group restarts allowed (each resumes from the last checkpoint).

    Returns:
        The step of the final checkpoint.

    Raises:
        InvalidInputError: an unreachable address, or a run that failed more than
            ``max_failures`` times.
        MissingDependencyError: Ray is not installed.
    """
    check_ray_address(address)
    ray = import_optional("ray", extra="ray", feature="training on a Ray cluster")
    from ray.train import FailureConfig
    from ray.train import RunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InvalidInputError(f"--ray-address {address}: cannot join the Ray cluster "
                                    f"({str(e).splitlines()[0] if str(e) else e!r})") from None
    from nasforge.supernet.checkpoint import read_checkpoint

    out = Path(out).resolve()
    resources: dict[str, float] = {"CPU": 1.0}
    if gpus_per_worker:
        resources["GPU"] = float(gpus_per_worker)
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"space": space, "recipe": recipe, "out": str(out),
                           "resume": resume},
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=gpus_per_worker > 0,
                                     resources_per_worker=resources),
        run_config=RunConfig(name="nas-train", storage_path=str(out / "ray"),
                             failure_config=FailureConfig(max_failures=max_failures)),
    )
    try:
        trainer.fit()
    except Exception as e:  # Ray wraps worker errors in its own types
        text = str(e).strip().splitlines()
        raise InvalidInputError(f"Ray Train run failed after {max_failures} restart(s): "
                                f"{text[-1] if text else type(e).__name__}; continue it from "
                                f"{out / 'last.ckpt'} with --resume") from None
    return read_checkpoint(out / "last.ckpt").step
