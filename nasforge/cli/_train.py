"""``nas train`` and ``nas eval``: supernet training and subnet evaluation.

``nas train`` follows a recipe (:mod:`nasforge.supernet.training.recipe`): ``--config FILE`` or a
shipped
name (``quick``, ``elasticvit_imagenet``, ``attentivenas_imagenet``), default ``quick``; flags
and ``--set section.key=value`` override single keys; ``--print-config`` prints the resolved
recipe and exits.

Run layout (``--out DIR``): ``DIR/last.ckpt`` (safetensors weights, optimizer moments and RNG
state, with the JSON training state in its metadata; see :mod:`nasforge.supernet.checkpoint`),
``DIR/step-NNNNNNN.ckpt`` (the last ``train.keep_last``), ``DIR/train_log.csv`` (one row per
trained subnet: step, FLOPs level, role, FLOPs, resolution, loss) and ``DIR/tb/`` (TensorBoard).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from nasforge.cli._common import EXIT_USAGE
from nasforge.cli._common import console
from nasforge.cli._common import err_console
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.errors import NasforgeError

__all__ = ["register"]


def _file_archs(space: Any, path: Path) -> list[Any]:
    """One arch, or a list of them (``nas arch sample --n N`` writes one), of ``space``."""
    from nasforge.search_spaces.io import read_arch_file

    return list(read_arch_file(path, space=space.name, expect_space=space.name).archs)


def _arch_from_data(space: Any, data: Any, where: str) -> Any:
    from nasforge.search_spaces.io import arch_file_from_data

    return arch_file_from_data(data, where, space=space.name, expect_space=space.name).one()


_ARCH_SUFFIXES = (".yaml", ".yml", ".json")


def _csv_archs(space: Any, path: Path) -> list[Any]:
    import csv
    import json

    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise InvalidInputError(f"cannot read {path}: {e.strerror or e}") from None
    if not rows or "arch" not in rows[0]:
        raise InvalidInputError(f"{path}: a CSV of architectures needs an `arch` column of JSON "
                                "(as candidates.csv / pareto.csv of `nas search` have)")
    out = []
    for line, row in enumerate(rows, start=2):
        try:
            data = json.loads(row["arch"] or "")
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{path} line {line}: column `arch` is not JSON: {e.msg}"
                                    ) from None
        out.append(_arch_from_data(space, data, f"{path} line {line}"))
    return out


def _load_archs(space: Any, paths: list[Path]) -> list[Any]:
    """Architectures from YAML/JSON files (one or a list each), folders of them, and CSVs with
    an ``arch`` column."""
    archs: list[Any] = []
    for path in paths:
        if path.is_dir():
            files = sorted(f for f in path.iterdir() if f.suffix in _ARCH_SUFFIXES)
            if not files:
                raise InvalidInputError(f"--arch {path}: the folder holds no architecture file "
                                        f"({', '.join(_ARCH_SUFFIXES)})")
            for f in files:
                archs.extend(_file_archs(space, f))
        elif path.suffix == ".csv":
            archs.extend(_csv_archs(space, path))
        else:
            archs.extend(_file_archs(space, path))
    return archs


def _process_group(device: Any) -> bool:
    """Join the ``torch.distributed`` group torchrun describes (``WORLD_SIZE`` > 1) when none is up.

    Returns:
        True when this call created the group (the caller destroys it).
    """
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not dist.is_available() or \
            dist.is_initialized():
        return False
    dist.init_process_group("nccl" if getattr(device, "type", "cpu") == "cuda" else "gloo")
    return True


#: ``nas train`` flags that set a recipe key
_FLAG_KEYS = {"--steps": "train.steps", "--epochs": "train.epochs", "--seed": "train.seed",
              "--input-size": "train.input_size", "--resolution-scale": "train.resolution_scale",
              "--batch-size": "train.batch_size", "--lr": "train.lr",
              "--ema": "train.ema_decay", "--workers": "loader.workers"}


def _name_flags(message: str, given: dict[str, str]) -> str:
    """``message`` with each recipe key that a given flag set written as ``--flag (key)``.

    Example:
        >>> _name_flags("train.lr = nan is out of range", {"--lr": "train.lr"})
        '--lr (train.lr) = nan is out of range'
    """
    for flag, key in given.items():
        message = re.sub(rf"(?<![\w.]){re.escape(key)}\b", f"{flag} ({key})", message, count=1)
    return message


def _check_flags(checks: list[tuple[str, Any, str, float | None, float | None]]) -> None:
    """Range checks of the flags given, before any work: ``(flag, value, kind, low, high)``,
    kind ``int``, ``num`` (closed range) or ``pos`` (a number above ``low``); None values
    (flags left out) are skipped. The recipe checks the same keys again, named as keys."""
    from nasforge.validation import check_int
    from nasforge.validation import check_number

    for flag, value, kind, low, high in checks:
        if value is None:
            continue
        if kind == "int":
            check_int(value, flag, low=None if low is None else int(low),
                      high=None if high is None else int(high))
        else:
            check_number(value, flag, low=low, high=high, low_open=kind == "pos")


def _overrides(pairs: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--set needs KEY=VALUE (e.g. train.lr=0.1), got {pair!r}")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def _parse_ckpt_every(raw: str) -> dict[str, Any]:
    """``--ckpt-every 20`` (steps) or ``30s`` / ``5m`` / ``2h`` (time) -> recipe changes."""
    text = raw.strip().lower()
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    try:
        if text and text[-1] in units:
            minutes = float(text[:-1]) * units[text[-1]]
            if not (minutes > 0 and math.isfinite(minutes)):
                raise ValueError
            return {"train.checkpoint_minutes": minutes, "train.checkpoint_every": None}
        steps = int(text)
        if steps < 1:
            raise ValueError
        return {"train.checkpoint_every": steps, "train.checkpoint_minutes": None}
    except ValueError:
        raise InvalidInputError(f"--ckpt-every {raw!r}: give a number of steps >= 1 (e.g. 20) or "
                                "a time > 0 with a unit s, m or h (e.g. 5m)") from None


def _check_out(out: Path, resume: bool) -> None:
    """Refuse an output path that cannot hold a run, before any work starts."""
    from nasforge.supernet.training.trainer import CHECKPOINT_NAME

    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"--out {out} is a file; give a folder for the run")
    ck = out / CHECKPOINT_NAME
    if resume and not ck.is_file():
        raise InvalidInputError(f"--resume: there is no checkpoint {ck} to continue; run "
                                "without --resume to start training")
    if not resume and ck.exists():
        raise InvalidInputError(f"--out {out} already holds a run ({ck}); continue it with "
                                "--resume or choose another --out")
    probe = out if out.exists() else next((p for p in out.parents if p.exists()), Path("."))
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--out {out}: {probe} is not writable; choose another --out")


@dataclass(frozen=True)
class _TrainJob:
    """What every rank of ``nas train`` needs (picklable: ``--nproc`` sends it to the ranks)."""

    space: str
    recipe: dict[str, Any]
    out: Path
    resume: bool
    accelerator: str
    progress: bool
    evaluate: bool
    threads: int | None = None


def _run_job(job: _TrainJob) -> None:
    """Train on this process: alone, as a ``torchrun`` rank or as an ``--nproc`` rank."""
    import torch

    from nasforge.search_spaces import get_space
    from nasforge.supernet.evaluate import evaluate_subnet
    from nasforge.supernet.training.distributed import init_from_env
    from nasforge.supernet.training.distributed import shutdown
    from nasforge.supernet.training.precision import enable_tf32
    from nasforge.supernet.training.recipe import recipe_from_dict
    from nasforge.supernet.training.train import resolve_device
    from nasforge.supernet.training.train import train_supernet

    if job.threads:
        torch.set_num_threads(job.threads)
    recipe = recipe_from_dict(job.recipe)
    sp = get_space(job.space)
    ctx = init_from_env(resolve_device(job.accelerator))
    enable_tf32(ctx.device)
    try:
        trainer, result = train_supernet(sp, recipe, job.out, resume=job.resume,
                                         progress=job.progress, device=ctx.device)
    finally:
        shutdown()
    if ctx.rank != 0:
        return
    ranks = f" on {ctx.world_size} ranks ({ctx.backend})" if ctx.world_size > 1 else ""
    console.print(f"trained {result.step}/{trainer.config.steps} steps{ranks} in "
                  f"{result.seconds:.1f} s ({result.images_per_s:.0f} images/s per rank, "
                  f"{100 * result.data_wait:.0f}% waiting for data); checkpoint "
                  f"{result.checkpoint}, log {result.log}")
    if job.evaluate:
        for name, arch in (("max", sp.max_arch()), ("min", sp.min_arch())):
            acc = evaluate_subnet(trainer.model, arch, trainer.data, device=ctx.device)
            console.print(f"{name} subnet: top-1 {acc.top1:.4f} at {acc.input_size} px "
                          f"({acc.num_images} val images, {acc.mflops:.0f} MFLOPs at "
                          f"{getattr(arch, 'resolution', '?')} px deployment)")


def _rank_main(rank: int, world_size: int, job: _TrainJob) -> None:
    """Entry of an ``--nproc`` rank: a user error becomes one line (rank 0) and exit code 2."""
    try:
        _run_job(job)
    except NasforgeError as e:
        if rank == 0:
            err_console.print(f"error: {e}", markup=False, highlight=False)
        sys.exit(EXIT_USAGE)


def _spawn(job: _TrainJob, nproc: int) -> None:
    """Run ``job`` on ``nproc`` local ranks; a rank that dies stops the run with one line."""
    import torch.multiprocessing as mp

    from nasforge.supernet.training.distributed import launch
    from nasforge.supernet.training.trainer import CHECKPOINT_NAME

    try:
        launch(_rank_main, nproc, job, backend="")
    except mp.ProcessExitedException as e:
        if e.exit_code == EXIT_USAGE:
            raise typer.Exit(EXIT_USAGE) from None  # rank 0 printed the reason
        how = (f"was killed by {e.signal_name}" if e.signal_name
               else f"exited with code {e.exit_code}")
        raise InvalidInputError(f"training rank {e.error_index} {how}, so the run stopped; "
                                f"{_resume_hint(job.out / CHECKPOINT_NAME)}") from None
    except mp.ProcessRaisedException as e:
        last = (str(e).strip().splitlines() or ["?"])[-1]
        raise InvalidInputError(f"training rank {e.error_index} failed ({last}), so the run "
                                f"stopped; {_resume_hint(job.out / CHECKPOINT_NAME)}") from None


def _resume_hint(ck: Path) -> str:
    from nasforge.supernet.checkpoint import read_checkpoint

    try:
        step = read_checkpoint(ck).step
    except NasforgeError:
        return "no checkpoint was written yet: start it again without --resume"
    return f"continue it from its last checkpoint (step {step}) with --resume"


def train(
    space: str = typer.Option("elasticvit", "--space", help="search space name"),
    config: str = typer.Option(None, "--config", help="recipe YAML file or shipped recipe "
                               "(quick, elasticvit_imagenet, attentivenas_imagenet); "
                               "default: quick"),
    print_config: bool = typer.Option(False, "--print-config",
                                      help="print the resolved recipe and exit"),
    data: str = typer.Option(None, "--data", help="digits | mnist5k | synthetic | cifar10:PATH | "
                             "imagefolder:PATH | webdataset:PATTERN"),
    sampler: str = typer.Option(None, "--sampler",
                                help="uniform | sandwich | complexity_aware | performance_aware"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps (default: the recipe's)"),
    epochs: int = typer.Option(None, "--epochs", help="epochs (replaces --steps)"),
    out: Path = typer.Option(Path("runs/sn"), "--out", help="run folder (last.ckpt, log CSV)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/last.ckpt"),
    seed: int = typer.Option(None, "--seed"),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu | cuda | auto"),
    input_size: int = typer.Option(None, "--input-size", help="side of the loaded images, px"),
    resolution_scale: float = typer.Option(
        None, "--resolution-scale", help="each subnet trains at resolution x scale px"),
    batch_size: int = typer.Option(None, "--batch-size", help="global batch size"),
    lr: float = typer.Option(None, "--lr"),
    distill: str = typer.Option(None, "--distill", help="alpha | kd | none"),
    ema: float = typer.Option(None, "--ema", help="EMA decay of the weights (off by default)"),
    workers: int = typer.Option(None, "--workers", help="DataLoader worker processes"),
    precision: str = typer.Option(None, "--precision", help="fp32 | bf16 | fp16 (fp16: CUDA "
                                  "only, with loss scaling)"),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last",
                                       help="NHWC memory layout (faster on CPU, measured)"),
    ckpt_every: str = typer.Option(None, "--ckpt-every", help="checkpoint cadence: steps (20) "
                                   "or time (30s, 5m, 2h)"),
    nproc: int = typer.Option(None, "--nproc", help="data-parallel ranks on this machine "
                              "(gloo on CPU, nccl on CUDA; one per GPU); under torchrun leave "
                              "it out"),
    ray_address: str = typer.Option(None, "--ray-address", help="train on this Ray cluster "
                                    "(HOST:PORT or auto) through Ray Train"),
    ray_workers: int = typer.Option(2, "--ray-workers", help="Ray Train workers (ranks)"),
    gpus_per_worker: float = typer.Option(0.0, "--gpus-per-worker",
                                          help="GPUs per Ray Train worker (0: CPU workers)"),
    set_: list[str] = typer.Option([], "--set", help="override a recipe key: section.key=value "
                                   "(repeatable)"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval",
                                  help="report the max and min subnets' accuracy at the end"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a weight-sharing supernet from a recipe (resumable with --resume)."""
    from nasforge.search_spaces import get_space
    from nasforge.supernet.training.distributed import available_slots
    from nasforge.supernet.training.precision import check_precision
    from nasforge.supernet.training.recipe import DEFAULT_RECIPE
    from nasforge.supernet.training.recipe import apply_overrides
    from nasforge.supernet.training.recipe import load_recipe
    from nasforge.supernet.training.samplers import SAMPLERS
    from nasforge.supernet.training.train import resolve_device

    # flags that are recipe keys are range-checked by the recipe (one rule for flags, --set and
    # files); its error then names the flag beside the key
    _check_flags([("--ray-workers", ray_workers, "int", 1, None),
                  ("--gpus-per-worker", gpus_per_worker, "num", 0, 64)])
    flag_keys = {"--steps": steps, "--epochs": epochs, "--seed": seed,
                 "--input-size": input_size, "--resolution-scale": resolution_scale,
                 "--batch-size": batch_size, "--lr": lr, "--ema": ema, "--workers": workers}
    recipe = load_recipe(config) if config is not None else DEFAULT_RECIPE
    changes: dict[str, Any] = {f"train.{k}": v for k, v in {
        "steps": steps, "epochs": epochs, "seed": seed, "input_size": input_size,
        "resolution_scale": resolution_scale, "batch_size": batch_size, "lr": lr,
        "distill": distill, "ema_decay": ema, "precision": precision,
        "channels_last": channels_last}.items() if v is not None}
    if steps is not None and epochs is None:
        changes["train.epochs"] = None
    if data is not None:
        changes["data"] = data
    if workers is not None:
        changes["loader.workers"] = workers
    if ckpt_every is not None:
        changes.update(_parse_ckpt_every(ckpt_every))
    if sampler is not None and sampler != recipe.sampler:
        SAMPLERS.get(sampler)  # unknown name -> one line before any work
        changes["sampler"] = sampler
        changes["sampler_options"] = (dict(DEFAULT_RECIPE.sampler_options) if sampler in (
            "complexity_aware", "performance_aware") else {})
    changes.update(_overrides(set_))
    try:
        recipe = apply_overrides(recipe, changes)
    except InvalidInputError as e:
        raise InvalidInputError(_name_flags(str(e), {
            f: k for f, k in _FLAG_KEYS.items() if flag_keys[f] is not None})) from None
    if print_config:
        console.print(recipe.to_yaml(), end="", markup=False)
        return
    get_space(space)
    SAMPLERS.get(recipe.sampler)
    device = resolve_device(accelerator)
    check_precision(recipe.train.precision, device)
    _check_out(out, resume)
    job = _TrainJob(space, recipe.to_dict(), out, resume, accelerator, progress, evaluate)
    if ray_address is not None:
        from nasforge.supernet.training._ray_train import train_on_ray

        if nproc not in (None, 1):
            raise InvalidInputError("--nproc and --ray-address exclude each other: Ray Train "
                                    "starts the ranks (--ray-workers)")
        if ray_workers < 1 or not (0.0 <= gpus_per_worker <= 64.0):
            raise InvalidInputError(f"--ray-workers {ray_workers} must be >= 1 and "
                                    f"--gpus-per-worker {gpus_per_worker} in [0, 64]")
        if recipe.train.batch_size < ray_workers:
            raise InvalidInputError(f"--ray-workers {ray_workers} needs a global batch size "
                                    f">= {ray_workers}, got {recipe.train.batch_size}")
        step = train_on_ray(space, recipe.to_dict(), out, resume=resume, address=ray_address,
                            workers=ray_workers, gpus_per_worker=gpus_per_worker)
        console.print(f"trained {step}/{recipe.train.steps} steps on {ray_workers} Ray Train "
                      f"workers; checkpoint {out / 'last.ckpt'}, log {out / 'train_log.csv'}")
        return
    if nproc is None or nproc == 1:
        _run_job(job)
        return
    slots = available_slots(device.type)
    what = "CUDA devices" if device.type == "cuda" else "CPU cores"
    if nproc < 1 or nproc > slots:
        raise InvalidInputError(f"--nproc {nproc} is out of range: this machine has {slots} "
                                f"{what}; give 1..{slots}")
    if "WORLD_SIZE" in os.environ:
        raise InvalidInputError("--nproc under torchrun: torchrun already starts the ranks; "
                                "leave --nproc out")
    if recipe.train.batch_size < nproc:
        raise InvalidInputError(f"--nproc {nproc} needs a global batch size >= {nproc}, got "
                                f"{recipe.train.batch_size}")
    threads = max(1, slots // nproc) if device.type == "cpu" else None
    _spawn(dataclasses.replace(job, threads=threads), nproc)


def eval_cmd(
    supernet: Path = typer.Option(..., "--supernet", help="checkpoint (DIR/last.ckpt or DIR)"),
    arch: list[Path] = typer.Option(
        ..., "--arch", help="architecture YAML/JSON (one or a list), a folder of them, or a CSV "
        "with an `arch` column (pareto.csv of nas search); repeatable"),
    data: str = typer.Option(None, "--data", help="dataset spec (default: the training data)"),
    resolution: list[int] = typer.Option(
        [], "--resolution", help="evaluate each arch at this deployment resolution instead of "
        "its own (repeatable: one accuracy per resolution)"),
    recal_batches: int = typer.Option(8, "--recal-batches", help="BN recalibration batches"),
    batch_size: int = typer.Option(128, "--batch-size",
                                   help="batch size of recalibration and evaluation"),
    val_images: int = typer.Option(None, "--val-images",
                                   help="score this many validation images (default: all)"),
    workers: int = typer.Option(None, "--workers", help="DataLoader worker processes"),
    ray_address: str = typer.Option(
        None, "--ray-address", help="shard the archs over Ray actors: auto, HOST:PORT, or "
        "`local` for a Ray started here"),
    ray_workers: int = typer.Option(2, "--ray-workers", help="Ray actors (with --ray-address)"),
    csv_out: Path = typer.Option(None, "--csv", help="also write the results to this CSV"),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu | cuda | auto"),
) -> None:
    """Top-1 of subnets of a trained supernet, each at its resolution (BN recalibrated there).

    Many archs are sharded over the ranks of a torch.distributed group (started by torchrun)
    or over Ray actors (--ray-address); results come back in the order given.
    """
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import EvalSet
    from nasforge.supernet.evaluate import evaluate_subnets
    from nasforge.supernet.training.distributed import rank_and_world
    from nasforge.supernet.training.train import resolve_device

    _check_flags([("--recal-batches", recal_batches, "int", 1, None),
                  ("--batch-size", batch_size, "int", 1, None),
                  ("--val-images", val_images, "int", 1, None),
                  ("--workers", workers, "int", 0, 512),
                  ("--ray-workers", ray_workers, "int", 1, None),
                  *[("--resolution", r, "int", 8, 4096) for r in resolution or []]])
    device = resolve_device(accelerator)
    model, ck = load_supernet(supernet)
    space: Any = model.space
    given = _load_archs(space, arch)
    run = RunConfig.from_checkpoint(ck)
    ds = run.open_data(data, workers=workers)
    if ds.num_classes != model.num_classes:
        raise IncompatibleComponentsError(
            f"data {ds.name!r} has {ds.num_classes} classes, the supernet {model.num_classes}"
        )
    archs = given if not resolution else [
        space.arch_from_dict({**a.to_dict(), "resolution": int(r)})
        for a in given for r in resolution]
    seed = 0  # which training batches recalibrate (as nas eval always did)
    es = EvalSet(ds, recal_batches=recal_batches, batch_size=batch_size, seed=seed,
                 device=device, val_images=val_images)
    if ray_address is not None:
        accs = _ray_eval(model, ds, archs, ray_address, ray_workers, recal_batches, batch_size,
                         val_images, seed, str(device))
    else:
        owns_group = _process_group(device)
        try:
            accs = evaluate_subnets(model, archs, ds, eval_set=es)
            rank = rank_and_world()[0]
        finally:
            if owns_group:
                import torch.distributed as dist

                dist.destroy_process_group()
        if rank != 0:
            return  # rank 0 reports
    for acc in accs:
        res = f"resolution {acc.resolution} px, " if acc.resolution is not None else ""
        console.print(f"{acc.arch_id}: top-1 {acc.top1:.4f} at {acc.input_size} px input "
                      f"({res}{acc.num_images} val images of {ds.name}, BN recalibrated on "
                      f"{acc.recal_images} images at that size; {acc.mflops:.0f} MFLOPs)")
    if csv_out is not None:
        import csv
        import dataclasses

        csv_out.parent.mkdir(parents=True, exist_ok=True)
        with open(csv_out, "w", newline="") as f:
            fields = [fl.name for fl in dataclasses.fields(accs[0])] if accs else ["arch_id"]
            writer = csv.DictWriter(f, fieldnames=[*fields, "arch"])
            writer.writeheader()
            for a, acc in zip(archs, accs, strict=True):
                writer.writerow({**dataclasses.asdict(acc), "arch": a.to_json()})


def _ray_eval(model: Any, ds: Any, archs: list[Any], address: str, workers: int,
              recal_batches: int, batch_size: int, val_images: int | None, seed: int,
              device: str) -> list[Any]:
    from nasforge.data import ImageData
    from nasforge.evaluation.pool import SupernetActorPool

    if not isinstance(ds, ImageData):
        raise InvalidInputError(f"--ray-address shares the dataset through Ray's object store, "
                                f"which needs an in-memory dataset; {ds.name!r} streams: drop "
                                "--ray-address or use torchrun")
    with SupernetActorPool(model, ds, workers=workers, recal_batches=recal_batches,
                           batch_size=batch_size, val_images=val_images, seed=seed,
                           device=device,
                           address=None if address == "local" else address) as pool:
        return pool.evaluate_subnets(archs)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to the ``nas`` application."""
    app.command("train")(train)
    app.command("eval")(eval_cmd)
