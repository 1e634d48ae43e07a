"""``nas train`` and ``nas eval``: supernet training and subnet evaluation.

``nas train`` follows a recipe (:mod:`nasforge.supernet.recipe`): ``--config FILE`` or a shipped
name (``quick``, ``elasticvit_imagenet``, ``attentivenas_imagenet``), default ``quick``; flags
and ``--set section.key=value`` override single keys; ``--print-config`` prints the resolved
recipe and exits.

Run layout (``--out DIR``): ``DIR/last.ckpt`` (safetensors weights, optimizer moments and RNG
state, with the JSON training state in its metadata; see :mod:`nasforge.supernet.checkpoint`),
``DIR/step-NNNNNNN.ckpt`` (the last ``train.keep_last``), ``DIR/train_log.csv`` (one row per
trained subnet: step, FLOPs level, role, FLOPs, resolution, loss) and ``DIR/tb/`` (TensorBoard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from nasforge.cli._common import console
from nasforge.cli._common import read_structured
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError

__all__ = ["register"]


def _load_arch(space: Any, path: Path) -> Any:
    data = read_structured(path)
    if isinstance(data, dict) and isinstance(data.get("arch"), dict):
        data = data["arch"]
    if not isinstance(data, dict):
        raise InvalidArchitectureError(f"{path}: an architecture must be a mapping of fields")
    given = data.get("space")
    if given is not None and given != space.name:
        raise IncompatibleComponentsError(
            f"{path} is an architecture of space {given!r}, the supernet is of {space.name!r}"
        )
    return space.arch_from_dict({k: v for k, v in data.items() if k != "space"})


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
    set_: list[str] = typer.Option([], "--set", help="override a recipe key: section.key=value "
                                   "(repeatable)"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval",
                                  help="report the max and min subnets' accuracy at the end"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a weight-sharing supernet from a recipe (resumable with --resume)."""
    from nasforge.search_spaces import get_space
    from nasforge.supernet.evaluate import evaluate_subnet
    from nasforge.supernet.recipe import DEFAULT_RECIPE
    from nasforge.supernet.recipe import apply_overrides
    from nasforge.supernet.recipe import load_recipe
    from nasforge.supernet.samplers import SAMPLERS
    from nasforge.supernet.training import resolve_device
    from nasforge.supernet.training import train_supernet

    recipe = load_recipe(config) if config is not None else DEFAULT_RECIPE
    changes: dict[str, Any] = {f"train.{k}": v for k, v in {
        "steps": steps, "epochs": epochs, "seed": seed, "input_size": input_size,
        "resolution_scale": resolution_scale, "batch_size": batch_size, "lr": lr,
        "distill": distill, "ema_decay": ema}.items() if v is not None}
    if steps is not None and epochs is None:
        changes["train.epochs"] = None
    if data is not None:
        changes["data"] = data
    if workers is not None:
        changes["loader.workers"] = workers
    if sampler is not None and sampler != recipe.sampler:
        SAMPLERS.get(sampler)  # unknown name -> one line before any work
        changes["sampler"] = sampler
        changes["sampler_options"] = (dict(DEFAULT_RECIPE.sampler_options) if sampler in (
            "complexity_aware", "performance_aware") else {})
    changes.update(_overrides(set_))
    recipe = apply_overrides(recipe, changes)
    if print_config:
        console.print(recipe.to_yaml(), end="", markup=False)
        return
    sp = get_space(space)
    SAMPLERS.get(recipe.sampler)
    device = resolve_device(accelerator)
    trainer, result = train_supernet(sp, recipe, out, resume=resume, progress=progress,
                                     device=device)
    console.print(f"trained {result.step}/{trainer.config.steps} steps in {result.seconds:.1f} s "
                  f"({result.images_per_s:.0f} images/s, {100 * result.data_wait:.0f}% waiting "
                  f"for data); checkpoint {result.checkpoint}, log {result.log}")
    if evaluate:
        for name, arch in (("max", sp.max_arch()), ("min", sp.min_arch())):
            acc = evaluate_subnet(trainer.model, arch, trainer.data, device=device)
            console.print(f"{name} subnet: top-1 {acc.top1:.4f} at {acc.input_size} px "
                          f"({acc.num_images} val images, {acc.mflops:.0f} MFLOPs at "
                          f"{getattr(arch, 'resolution', '?')} px deployment)")


def eval_cmd(
    supernet: Path = typer.Option(..., "--supernet", help="checkpoint (DIR/last.ckpt or DIR)"),
    arch: Path = typer.Option(..., "--arch", help="architecture YAML/JSON"),
    data: str = typer.Option(None, "--data", help="dataset spec (default: the training data)"),
    resolution: list[int] = typer.Option(
        [], "--resolution", help="evaluate the arch at this deployment resolution instead of "
        "its own (repeatable: one accuracy per resolution)"),
    recal_batches: int = typer.Option(8, "--recal-batches", help="BN recalibration batches"),
    workers: int = typer.Option(None, "--workers", help="DataLoader worker processes"),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu | cuda | auto"),
) -> None:
    """Top-1 of one subnet of a trained supernet at its resolution (BN recalibrated there)."""
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.evaluate import evaluate_subnet
    from nasforge.supernet.training import resolve_device

    device = resolve_device(accelerator)
    model, ck = load_supernet(supernet)
    a = _load_arch(model.space, arch)
    run = RunConfig.from_checkpoint(ck)
    ds = run.open_data(data, workers=workers)
    if ds.num_classes != model.num_classes:
        raise IncompatibleComponentsError(
            f"data {ds.name!r} has {ds.num_classes} classes, the supernet {model.num_classes}"
        )
    space: Any = model.space
    archs = [a] if not resolution else [
        space.arch_from_dict({**a.to_dict(), "resolution": int(r)}) for r in resolution]
    for one in archs:
        acc = evaluate_subnet(model, one, ds, recal_batches=recal_batches,  # type: ignore[arg-type]
                              device=device)
        res = f"resolution {acc.resolution} px, " if acc.resolution is not None else ""
        console.print(f"{one.arch_id}: top-1 {acc.top1:.4f} at {acc.input_size} px input "
                      f"({res}{acc.num_images} val images of {ds.name}, BN recalibrated on "
                      f"{recal_batches} batches at that size; {acc.mflops:.0f} MFLOPs)")


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to the ``nas`` application."""
    app.command("train")(train)
    app.command("eval")(eval_cmd)
