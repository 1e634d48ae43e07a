"""Launchers of supernet training: in-process, ``torchrun``, spawn(N) and Ray Train, running
one rank body (:func:`train_rank`); :func:`launch_training` is the entry ``nas train`` calls.

Example:
    >>> from pathlib import Path
    >>> job = TrainJob("elasticvit", {"train": {"batch_size": 8}}, Path("runs/sn"))
    >>> launcher, _ = choose_launcher(job)
    >>> type(launcher).__name__ in ("InProcessLauncher", "TorchrunLauncher")
    True
"""

from __future__ import annotations

from nasforge.supernet.training.launch._local import InProcessLauncher
from nasforge.supernet.training.launch._local import SpawnLauncher
from nasforge.supernet.training.launch._local import TorchrunLauncher
from nasforge.supernet.training.launch._local import under_torchrun
from nasforge.supernet.training.launch._ray import RayTrainLauncher
from nasforge.supernet.training.launch._ray import check_ray_address
from nasforge.supernet.training.launch.base import Launcher
from nasforge.supernet.training.launch.base import LaunchFailure
from nasforge.supernet.training.launch.job import RaySettings
from nasforge.supernet.training.launch.job import SubnetScore
from nasforge.supernet.training.launch.job import TrainJob
from nasforge.supernet.training.launch.job import TrainOutcome
from nasforge.supernet.training.launch.job import check_job
from nasforge.supernet.training.launch.job import check_run_folder
from nasforge.supernet.training.launch.job import choose_launcher
from nasforge.supernet.training.launch.job import launch_training
from nasforge.supernet.training.launch.job import run_rank
from nasforge.supernet.training.launch.job import train_rank

__all__ = [
    "InProcessLauncher",
    "LaunchFailure",
    "Launcher",
    "RaySettings",
    "RayTrainLauncher",
    "SpawnLauncher",
    "SubnetScore",
    "TorchrunLauncher",
    "TrainJob",
    "TrainOutcome",
    "check_job",
    "check_ray_address",
    "check_run_folder",
    "choose_launcher",
    "launch_training",
    "run_rank",
    "train_rank",
    "under_torchrun",
]
