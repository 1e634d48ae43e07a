"""A fine-tuning run (``nas finetune``): the job, the one rank body and the entry point.

Paper: Once-for-All (https://arxiv.org/abs/1908.09791): a found subnet is fine-tuned from its
inherited weights; BigNAS / AttentiveNAS (https://arxiv.org/abs/2011.09011) for distilling from
the largest subnet.

The run reuses supernet training whole (:class:`~nasforge.supernet.training.trainer.
SupernetTrainer`, its callbacks, checkpoints, ``--resume`` and launchers): the supernet is
loaded from its checkpoint, the subnet is activated and its BatchNorm statistics are
recalibrated at its own size, and the trainer runs the ``subnet`` sampler (the same subnet
every step). The slice-gradient store keeps gradients, weight decay and optimizer moments to
the subnet's slices, so the rest of the supernet is never touched: this is the subnet trained
alone. With distillation its targets are the soft outputs of the supernet's largest subnet
(extracted once from the original checkpoint, BN recalibrated at its size, in eval mode), else
label-smoothed CE. Rank 0 then scores the subnet with the inherited and the fine-tuned
weights (the same evaluation: BN recalibrated on the same batches, the same validation
images), and writes the static model (:mod:`.model`) that ``nas export --model`` takes.
"""

from __future__ import annotations

import dataclasses
import logging
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import torch
from torch import nn

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.supernet.training.finetune.model import write_static_model
from nasforge.supernet.training.finetune.recipe import FinetuneRecipe
from nasforge.supernet.training.finetune.recipe import finetune_recipe_from_dict

if TYPE_CHECKING:
    from nasforge.data import BaseImageSource
    from nasforge.search_spaces.arch import Arch
    from nasforge.supernet.base import Supernet
    from nasforge.supernet.checkpoint import Checkpoint
    from nasforge.supernet.training.trainer import SupernetTrainer
    from nasforge.supernet.training.trainer import TrainResult

__all__ = ["FinetuneJob", "FinetuneOutcome", "check_finetune_job", "finetune_rank",
           "launch_finetune"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneJob:
    """What every rank of a fine-tuning run needs (picklable for spawned ranks).

    Attributes:
        arch: the subnet as its plain dict (with its ``space``).
        supernet: the supernet checkpoint (file or run folder) it inherits from.
        recipe: :meth:`FinetuneRecipe.to_dict` of the recipe.
        out: the run folder (``last.ckpt``, ``train_log.csv``, ``tb/``, ``model.*``).
        resume: continue from ``out/last.ckpt``.
        accelerator: ``cpu``, ``cuda`` or ``auto``.
        progress: show a progress bar (rank 0).
        threads: torch intra-op threads per rank (``None``: torch's default).
    """

    arch: dict[str, Any]
    supernet: Path
    recipe: dict[str, Any]
    out: Path
    resume: bool = False
    accelerator: str = "auto"
    progress: bool = False
    threads: int | None = None


@dataclass(frozen=True)
class FinetuneOutcome:
    """What a finished fine-tuning run reports (rank 0).

    Attributes:
        step: optimizer steps done; steps: the steps the run was set to train.
        world_size: ranks; backend: ``gloo``, ``nccl`` or ``""``.
        top1: top-1 of the fine-tuned subnet on the validation split.
        inherited_top1: top-1 of the same subnet with the supernet's weights, same evaluation.
        input_size: the side it was scored at; num_val: validation images.
        model: ``out/model.json``; checkpoint: ``out/last.ckpt``.
        result: rank 0's training figures.
    """

    step: int
    steps: int
    world_size: int
    backend: str
    top1: float
    inherited_top1: float
    input_size: int
    num_val: int
    model: Path
    checkpoint: Path
    result: TrainResult


def check_finetune_job(job: FinetuneJob) -> None:
    """Refuse what cannot fine-tune, before any work.

    Raises:
        IncompatibleComponentsError: a subnet of another space than the supernet, a recipe for
            another space, a run folder that fine-tunes another subnet.
        InvalidInputError: a bad recipe, checkpoint, device, precision or run folder.
        InvalidArchitectureError: the subnet is outside its space.
    """
    from nasforge._paths import check_outside_data
    from nasforge.search_spaces import get_space
    from nasforge.supernet.checkpoint import read_checkpoint
    from nasforge.supernet.training.launch import check_run_folder
    from nasforge.supernet.training.precision import check_precision
    from nasforge.supernet.training.train import resolve_device

    recipe = finetune_recipe_from_dict(job.recipe)
    ck = read_checkpoint(job.supernet)
    space = str(ck.config["space"])
    if job.arch.get("space") != space:
        raise IncompatibleComponentsError(
            f"the subnet is of space {job.arch.get('space')!r} but the supernet {ck.path} of "
            f"{space!r}; give a subnet of {space} (or the supernet of its space)")
    recipe.check_space(space)
    arch = get_space(space).arch_from_dict(job.arch)
    check_precision(recipe.recipe.train.precision, resolve_device(job.accelerator))
    check_run_folder(job.out, job.resume)
    check_outside_data(job.out, recipe.data)
    if recipe.distill and recipe.recipe.train.distill == "none":
        raise InvalidInputError("finetune.distill is true but train.distill is none; name a "
                                "distillation loss (alpha, kd) or pass --no-distill")
    if job.resume:
        run = read_checkpoint(job.out / "last.ckpt").config.get("sampler_options") or {}
        if run.get("arch") != arch.to_dict():
            raise IncompatibleComponentsError(
                f"--resume: {job.out} fine-tunes another subnet than {arch.arch_id}; give its "
                "arch file or another --out")


def launch_finetune(job: FinetuneJob, nproc: int | None = None) -> FinetuneOutcome | None:
    """Fine-tune on one process, ``torchrun``'s ranks or ``nproc`` spawned ranks: the library
    entry of ``nas finetune``.

    Returns:
        Rank 0's :class:`FinetuneOutcome`; ``None`` on the other ``torchrun`` ranks.

    Raises:
        NasforgeError: as :func:`check_finetune_job`, or a rank stopped on a user error.
        InvalidInputError: a rank died (the message says how to continue).
    """
    from nasforge._lock import is_leader_process
    from nasforge._lock import lock_run_folder
    from nasforge.supernet.training.launch import LaunchFailure
    from nasforge.supernet.training.launch import TrainJob
    from nasforge.supernet.training.launch import choose_launcher

    space = str(job.arch.get("space"))
    probe = TrainJob(space, job.recipe, job.out, accelerator=job.accelerator)
    launcher, probe = choose_launcher(probe, nproc=nproc)
    job = dataclasses.replace(job, threads=probe.threads)
    with lock_run_folder(job.out, "fine-tuning") if is_leader_process() else nullcontext():
        try:
            outcome: FinetuneOutcome | None = launcher.launch(finetune_rank, job)
        except LaunchFailure as e:
            hint = ("continue it with --resume" if (job.out / "last.ckpt").exists()
                    else "start it again without --resume")
            raise InvalidInputError(f"{e}; {hint}") from None
    return outcome


def finetune_rank(job: FinetuneJob) -> FinetuneOutcome | None:
    """The rank body: join the group, fine-tune, leave; rank 0 scores and writes the model."""
    from nasforge.supernet.training.distributed import init_from_env
    from nasforge.supernet.training.distributed import shutdown
    from nasforge.supernet.training.precision import enable_tf32
    from nasforge.supernet.training.train import resolve_device

    if job.threads:
        torch.set_num_threads(job.threads)
    try:
        ctx = init_from_env(resolve_device(job.accelerator))
        enable_tf32(ctx.device)
        trainer = build_trainer(job, ctx.device)
        result = trainer.fit()
    finally:
        shutdown()
    if ctx.rank != 0:
        return None
    return _finish(job, trainer, result, ctx.world_size, ctx.backend)


def build_trainer(job: FinetuneJob, device: torch.device) -> SupernetTrainer:
    """The trainer of ``job``: the supernet with the subnet active and BN recalibrated, the
    teacher, the ``subnet`` sampler; resumed from ``out/last.ckpt`` when asked (call
    ``trainer.fit()`` next)."""
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import recalibrate_at_resolution
    from nasforge.supernet.training.samplers import create_sampler
    from nasforge.supernet.training.train import steps_from_epochs
    from nasforge.supernet.training.trainer import SupernetTrainer

    recipe = finetune_recipe_from_dict(job.recipe)
    supernet, ck = load_supernet(job.supernet)
    data = _open_data(recipe, ck)
    cfg = steps_from_epochs(dataclasses.replace(
        recipe.recipe.train, input_size=data.input_size,
        resolution_scale=data.resolution_scale), data)
    sn: Supernet = supernet  # type: ignore[assignment]
    arch = sn.space.arch_from_dict(job.arch)
    sn.to(device).set_active(arch)
    recalibrate_at_resolution(sn, data, getattr(arch, "resolution", None),
                              batches=recipe.recal_batches, batch_size=cfg.batch_size,
                              seed=cfg.seed, device=device)
    teacher = _teacher(job.supernet, data, recipe, cfg.seed, device) if recipe.distill else None
    sampler = create_sampler("subnet", sn.space, np.random.default_rng(cfg.seed),
                             arch=arch.to_dict())
    run_info = {"sampler_options": {"arch": arch.to_dict()},
                "loader": recipe.recipe.to_dict()["loader"],
                "finetune": {"supernet": str(ck.path), "supernet_step": ck.step,
                             "distill": recipe.distill, "recal_batches": recipe.recal_batches,
                             "recipe": recipe.name}}
    trainer = SupernetTrainer(sn, sampler, data, cfg, job.out, device=device,
                              progress=job.progress, run_info=run_info, teacher=teacher)
    if job.resume and (job.out / "last.ckpt").exists():
        trainer.resume()
    return trainer


def _open_data(recipe: FinetuneRecipe, ck: Checkpoint) -> BaseImageSource:
    """The data at the supernet's size and scale; the supernet's split (seed and validation
    share) when it is the supernet's data, so validation images are never trained on."""
    from nasforge.data import open_data
    from nasforge.supernet.checkpoint import RunConfig

    run = RunConfig.from_checkpoint(ck)
    loader = recipe.recipe.loader
    if recipe.data is None and "val_fraction" in run.loader:
        loader = dataclasses.replace(loader, val_fraction=float(run.loader["val_fraction"]))
    return open_data(recipe.data or run.data, run.input_size, run.seed, loader=loader,
                     resolution_scale=run.resolution_scale)


class _SizedTeacher(nn.Module):
    """The teacher at its own size: ``(B, 3, H, W)`` images resized to ``size`` px, logits out."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        self.model = model
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from nasforge.data import resize_batch

        out: torch.Tensor = self.model(resize_batch(x, self.size))
        return out


def _teacher(path: Path, data: BaseImageSource, recipe: FinetuneRecipe, seed: int,
             device: torch.device) -> nn.Module:
    """The supernet's largest subnet from the original checkpoint, BN recalibrated at its
    size, frozen, in eval mode."""
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import recalibrate_at_resolution

    loaded, _ = load_supernet(path)
    supernet: Supernet = loaded  # type: ignore[assignment]
    biggest = supernet.space.max_arch()
    model = supernet.extract(biggest).to(device)
    size = recalibrate_at_resolution(model, data, getattr(biggest, "resolution", None),
                                     batches=recipe.recal_batches,
                                     batch_size=recipe.recipe.train.batch_size, seed=seed,
                                     device=device)
    model.requires_grad_(False)
    return _SizedTeacher(model, size).eval()


def _finish(job: FinetuneJob, trainer: SupernetTrainer, result: TrainResult, world_size: int,
            backend: str) -> FinetuneOutcome:
    """Score the inherited and the fine-tuned subnet alike; write the static model."""
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import EvalSet
    from nasforge.supernet.evaluate import evaluate_subnet

    recipe = finetune_recipe_from_dict(job.recipe)
    model: Supernet = trainer.model
    arch: Arch = model.space.arch_from_dict(job.arch)
    es = EvalSet(trainer.data, recal_batches=recipe.recal_batches, seed=trainer.config.seed,
                 device=trainer.device)
    tuned = evaluate_subnet(model, arch, trainer.data, eval_set=es)
    static = model.extract(arch).eval()  # the BN statistics just scored
    inherited, _ = load_supernet(job.supernet)
    before = evaluate_subnet(inherited, arch, trainer.data, eval_set=es)  # type: ignore[arg-type]
    data = trainer.data
    info = {"input_size": tuned.input_size, "top1": tuned.top1, "inherited_top1": before.top1,
            "val_images": tuned.num_images, "recal_images": tuned.recal_images,
            "data": {"spec": data.name if recipe.data is None else recipe.data,
                     "input_size": data.input_size, "resolution_scale": data.resolution_scale,
                     "seed": _split_seed(job), "loader": recipe.recipe.to_dict()["loader"]},
            "finetune": {"steps": trainer.step, "distill": recipe.distill,
                         "recipe": recipe.name, "supernet": str(job.supernet)}}
    path = write_static_model(job.out, static, arch, model.num_classes, info)
    (job.out / "arch.yaml").write_text(arch.to_yaml(), encoding="utf-8")
    return FinetuneOutcome(trainer.step, trainer.config.steps, world_size, backend, tuned.top1,
                           before.top1, tuned.input_size, tuned.num_images, path,
                           job.out / "last.ckpt", result)


def _split_seed(job: FinetuneJob) -> int:
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import read_checkpoint

    return RunConfig.from_checkpoint(read_checkpoint(job.supernet)).seed
