"""``nas train`` and ``nas eval``: supernet training and subnet evaluation.

``nas train`` follows a recipe (:mod:`nasforge.supernet.training.recipe`): ``--config FILE`` or a
shipped name (``quick``, ``elasticvit_imagenet``, ``attentivenas_imagenet``), default ``quick``;
flags (:data:`~nasforge.supernet.training.recipe_flags.RECIPE_FLAGS`) and ``--set
section.key=value`` override single keys; ``--print-config`` prints the resolved recipe and
exits. The ranks come from :mod:`nasforge.supernet.training.launch` (one process, ``--nproc N``,
``torchrun`` or ``--ray-address``).

Run layout (``--out DIR``): ``DIR/last.ckpt`` (safetensors weights, optimizer moments and RNG
state, with the JSON training state in its metadata; see :mod:`nasforge.supernet.checkpoint`),
``DIR/step-NNNNNNN.ckpt`` (the last ``train.keep_last``), ``DIR/train_log.csv`` (one row per
trained subnet: step, FLOPs level, role, FLOPs, resolution, loss) and ``DIR/tb/`` (TensorBoard).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any

import typer

from nasforge.cli._common import check_flags
from nasforge.cli._common import console
from nasforge.resources import check_image_batch

if TYPE_CHECKING:
    from nasforge.experiments.subnet_eval import SubnetEvaluation
    from nasforge.supernet.training.launch import TrainOutcome

__all__ = ["register"]

_Opt = typer.Option
# ---- nas train flags -------------------------------------------------------------------------
_Space = Annotated[str, _Opt("--space", help="search space name")]
_Config = Annotated[str | None, _Opt(
    "--config", help="recipe YAML file or shipped recipe (quick, elasticvit_imagenet, "
    "attentivenas_imagenet); default: quick")]
_PrintConfig = Annotated[bool, _Opt("--print-config", help="print the resolved recipe and exit")]
_Data = Annotated[str | None, _Opt("--data", help="digits | mnist5k | synthetic | cifar10:PATH | "
                                   "imagefolder:PATH | webdataset:PATTERN")]
_Sampler = Annotated[str | None, _Opt(
    "--sampler", help="uniform | sandwich | complexity_aware | performance_aware")]
_Steps = Annotated[int | None, _Opt("--steps", help="optimizer steps (default: the recipe's)")]
_Epochs = Annotated[int | None, _Opt("--epochs", help="epochs (replaces --steps)")]
_Out = Annotated[Path, _Opt("--out", help="run folder (last.ckpt, log CSV)")]
_Resume = Annotated[bool, _Opt("--resume", help="continue from OUT/last.ckpt")]
_ResetOpt = Annotated[bool, _Opt("--reset-optimizer", help="with --resume: accept a checkpoint "
                                 "without optimizer state and start a fresh optimizer")]
_Seed = Annotated[int | None, _Opt("--seed")]
_Accelerator = Annotated[str, _Opt("--accelerator", help="cpu | cuda | auto")]
_InputSize = Annotated[int | None, _Opt("--input-size", help="side of the loaded images, px")]
_ResScale = Annotated[float | None, _Opt(
    "--resolution-scale", help="each subnet trains at resolution x scale px")]
_TrainBatch = Annotated[int | None, _Opt("--batch-size", help="global batch size")]
_Lr = Annotated[float | None, _Opt("--lr")]
_Distill = Annotated[str | None, _Opt("--distill", help="alpha | kd | none")]
_Ema = Annotated[float | None, _Opt("--ema", help="EMA decay of the weights (off by default)")]
_Workers = Annotated[int | None, _Opt("--workers", help="DataLoader worker processes")]
_Precision = Annotated[str | None, _Opt("--precision", help="fp32 | bf16 | fp16 (fp16: CUDA "
                                        "only, with loss scaling)")]
_ChannelsLast = Annotated[bool | None, _Opt(
    "--channels-last/--no-channels-last", help="NHWC memory layout (faster on CPU, measured)")]
_CkptEvery = Annotated[str | None, _Opt(
    "--ckpt-every", help="checkpoint cadence: steps (20) or time (30s, 5m, 2h)")]
_Nproc = Annotated[int | None, _Opt(
    "--nproc", help="data-parallel ranks on this machine (gloo on CPU, nccl on CUDA; one per "
    "GPU); under torchrun leave it out")]
_TrainRay = Annotated[str | None, _Opt(
    "--ray-address", help="train on this Ray cluster (HOST:PORT or auto) through Ray Train")]
_TrainRayWorkers = Annotated[int, _Opt("--ray-workers", help="Ray Train workers (ranks)")]
_GpusPerWorker = Annotated[float, _Opt("--gpus-per-worker",
                                       help="GPUs per Ray Train worker (0: CPU workers)")]
_Set = Annotated[list[str] | None, _Opt(
    "--set", help="override a recipe key: section.key=value (repeatable)")]
_Eval = Annotated[bool, _Opt("--eval/--no-eval",
                             help="report the max and min subnets' accuracy at the end")]
_Progress = Annotated[bool, _Opt("--progress/--no-progress")]


def train(
    space: _Space = "elasticvit", config: _Config = None, print_config: _PrintConfig = False,
    data: _Data = None, sampler: _Sampler = None, steps: _Steps = None, epochs: _Epochs = None,
    out: _Out = Path("runs/sn"), resume: _Resume = False, seed: _Seed = None,
    accelerator: _Accelerator = "auto", input_size: _InputSize = None,
    resolution_scale: _ResScale = None, batch_size: _TrainBatch = None, lr: _Lr = None,
    distill: _Distill = None, ema: _Ema = None, workers: _Workers = None,
    precision: _Precision = None, channels_last: _ChannelsLast = None,
    ckpt_every: _CkptEvery = None, nproc: _Nproc = None, ray_address: _TrainRay = None,
    ray_workers: _TrainRayWorkers = 2, gpus_per_worker: _GpusPerWorker = 0.0,
    set_: _Set = None, evaluate: _Eval = True, progress: _Progress = True,
    reset_optimizer: _ResetOpt = False,
) -> None:
    """Train a weight-sharing supernet from a recipe (resumable with --resume)."""
    from nasforge.supernet.training import launch as la
    from nasforge.supernet.training.recipe_flags import recipe_from_flags

    check_flags([("--ray-workers", ray_workers, "int", 1, None),
                 ("--gpus-per-worker", gpus_per_worker, "num", 0, 64)])
    if config is None:  # language spaces train on the embedded text by default
        from nasforge.supernet.training.quick import quick_recipe_name

        config = quick_recipe_name(space)
    recipe = recipe_from_flags(config, {
        "--steps": steps, "--epochs": epochs, "--seed": seed, "--input-size": input_size,
        "--resolution-scale": resolution_scale, "--batch-size": batch_size, "--lr": lr,
        "--distill": distill, "--ema": ema, "--precision": precision,
        "--channels-last": channels_last, "--data": data, "--workers": workers,
    }, sets=set_ or [], ckpt_every=ckpt_every, sampler=sampler)
    if print_config:
        console.print(recipe.to_yaml(), end="", markup=False)
        return
    check_image_batch(recipe.train.batch_size, recipe.train.input_size)  # before any tensor
    job = la.TrainJob(space, recipe.to_dict(), out, resume=resume, accelerator=accelerator,
                      progress=progress, evaluate=evaluate, reset_optimizer=reset_optimizer)
    la.check_job(job)
    ray = la.RaySettings(ray_address, ray_workers, gpus_per_worker) if ray_address else None
    launcher, job = la.choose_launcher(job, nproc=nproc, ray=ray)
    outcome = la.launch_training(job, launcher)
    if outcome is not None:
        _print_outcome(outcome, out)


def _print_outcome(o: TrainOutcome, out: Path) -> None:
    """The summary line of a run (and the max / min subnets' accuracy when scored)."""
    r = o.result
    if r is None:  # Ray Train: the figures stay on the workers
        console.print(f"trained {o.step}/{o.steps} steps on {o.world_size} Ray Train "
                      f"workers; checkpoint {out / 'last.ckpt'}, log {out / 'train_log.csv'}")
        return
    ranks = f" on {o.world_size} ranks ({o.backend})" if o.world_size > 1 else ""
    console.print(f"trained {r.step}/{o.steps} steps{ranks} in {r.seconds:.1f} s "
                  f"({r.images_per_s:.0f} images/s per rank, {100 * r.data_wait:.0f}% waiting "
                  f"for data); checkpoint {r.checkpoint}, log {r.log}")
    for s in o.subnets:
        acc = s.accuracy
        if acc is None:  # a language model: validation loss per token
            loss = float(s.loss if s.loss is not None else math.nan)
            console.print(f"{s.name} subnet: validation loss {loss:.4f} nats/token "
                          f"(perplexity {math.exp(loss):.2f}) at context {s.resolution}")
            continue
        console.print(f"{s.name} subnet: top-1 {acc.top1:.4f} at {acc.input_size} px "
                      f"({acc.num_images} val images, {acc.mflops:.0f} MFLOPs at "
                      f"{s.resolution} px deployment)")


# ---- nas eval flags ----------------------------------------------------------------------------
_Supernet = Annotated[Path, _Opt("--supernet", help="checkpoint (DIR/last.ckpt or DIR)")]
_Arch = Annotated[list[Path], _Opt(
    "--arch", help="architecture YAML/JSON (one or a list), a folder of them, or a CSV with an "
    "`arch` column (pareto.csv of nas search); repeatable")]
_EvalData = Annotated[str | None, _Opt("--data",
                                       help="dataset spec (default: the training data)")]
_Resolution = Annotated[list[int] | None, _Opt(
    "--resolution", help="evaluate each arch at this deployment resolution instead of its own "
    "(repeatable: one accuracy per resolution)")]
_Recal = Annotated[int, _Opt("--recal-batches", help="BN recalibration batches")]
_EvalBatch = Annotated[int, _Opt("--batch-size",
                                 help="batch size of recalibration and evaluation")]
_ValImages = Annotated[int | None, _Opt(
    "--val-images", help="score this many validation images (default: all)")]
_EvalRay = Annotated[str | None, _Opt(
    "--ray-address", help="shard the archs over Ray actors: auto, HOST:PORT, or `local` for a "
    "Ray started here")]
_EvalRayWorkers = Annotated[int, _Opt("--ray-workers", help="Ray actors (with --ray-address)")]
_CsvOut = Annotated[Path | None, _Opt("--csv", help="also write the results to this CSV")]
_Json = Annotated[bool, _Opt("--json", help="print the results as a JSON list instead of lines")]


def eval_cmd(
    supernet: _Supernet, arch: _Arch, data: _EvalData = None, resolution: _Resolution = None,
    recal_batches: _Recal = 8, batch_size: _EvalBatch = 128, val_images: _ValImages = None,
    workers: _Workers = None, ray_address: _EvalRay = None, ray_workers: _EvalRayWorkers = 2,
    csv_out: _CsvOut = None, accelerator: _Accelerator = "auto", json_out: _Json = False,
) -> None:
    """Top-1 of subnets of a trained supernet, each at its resolution (BN recalibrated there).

    Many archs are sharded over the ranks of a torch.distributed group (started by torchrun)
    or over Ray actors (--ray-address); results come back in the order given.
    """
    from nasforge._paths import check_outside_data
    from nasforge.experiments.subnet_eval import EvalOptions
    from nasforge.experiments.subnet_eval import evaluate_checkpoint

    check_flags([("--recal-batches", recal_batches, "int", 1, None),
                 ("--batch-size", batch_size, "int", 1, None),
                 ("--val-images", val_images, "int", 1, None),
                 ("--workers", workers, "int", 0, 512),
                 ("--ray-workers", ray_workers, "int", 1, None),
                 *[("--resolution", r, "int", 8, 4096) for r in resolution or []]])
    check_image_batch(batch_size, max(resolution or [32]),
                      side_flag="--resolution" if resolution else None)
    if csv_out is not None:
        check_outside_data(csv_out, data, "--csv")
    options = EvalOptions(
        data=data, resolutions=tuple(resolution or ()), recal_batches=recal_batches,
        batch_size=batch_size, val_images=val_images, workers=workers, ray_address=ray_address,
        ray_workers=ray_workers, accelerator=accelerator)
    result = evaluate_checkpoint(supernet, arch, options)
    if result is None:
        return  # rank 0 reports
    _print_evaluation(result, json_out)
    if csv_out is not None:
        check_outside_data(csv_out, result.data, "--csv")  # the checkpoint's data
        result.write_csv(csv_out)


def _print_evaluation(result: SubnetEvaluation, json_out: bool) -> None:
    if json_out:
        rows: list[dict[str, Any]] = [{**r, "arch": json.loads(r["arch"])}
                                      for r in result.rows()]
        console.print_json(json.dumps(rows))
        return
    for acc in result.accuracies:
        res = f"resolution {acc.resolution} px, " if acc.resolution is not None else ""
        console.print(f"{acc.arch_id}: top-1 {acc.top1:.4f} at {acc.input_size} px input "
                      f"({res}{acc.num_images} val images of {result.data}, BN recalibrated on "
                      f"{acc.recal_images} images at that size; {acc.mflops:.0f} MFLOPs)")


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to the ``nas`` application."""
    app.command("train")(train)
    app.command("eval")(eval_cmd)
