"""``nas train`` and ``nas eval``: supernet training and subnet evaluation.

Run layout (``--out DIR``): ``DIR/last.ckpt`` (safetensors weights, optimizer moments and RNG
state, with the JSON training state in its metadata; see :mod:`nasforge.supernet.checkpoint`)
and ``DIR/train_log.csv`` (one row per trained subnet: step, FLOPs level, role, FLOPs, loss).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import typer

from nasforge.cli._common import console
from nasforge.cli._common import read_structured
from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidArchitectureError

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


def train(
    space: str = typer.Option("elasticvit", "--space", help="search space name"),
    data: str = typer.Option("digits", "--data", help="digits | mnist5k | imagefolder:PATH | "
                             "cifar10:PATH | synthetic"),
    sampler: str = typer.Option("performance_aware", "--sampler",
                                help="uniform | sandwich | complexity_aware | performance_aware"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps (default: the recipe's)"),
    out: Path = typer.Option(Path("runs/sn"), "--out", help="run folder (last.ckpt, log CSV)"),
    resume: bool = typer.Option(False, "--resume", help="continue from OUT/last.ckpt"),
    seed: int = typer.Option(0, "--seed"),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu | cuda | auto"),
    input_size: int = typer.Option(None, "--input-size", help="training (proxy) input size, px"),
    batch_size: int = typer.Option(None, "--batch-size"),
    lr: float = typer.Option(None, "--lr"),
    distill: str = typer.Option(None, "--distill", help="alpha | kd | none"),
    ema: float = typer.Option(None, "--ema", help="EMA decay of the weights (off by default)"),
    evaluate: bool = typer.Option(True, "--eval/--no-eval",
                                  help="report the max and min subnets' accuracy at the end"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train a weight-sharing supernet (resumable with --resume)."""
    from nasforge.search_spaces import get_space
    from nasforge.supernet.evaluate import evaluate_subnet
    from nasforge.supernet.quick import DEFAULT_RECIPE
    from nasforge.supernet.quick import Recipe
    from nasforge.supernet.quick import resolve_device
    from nasforge.supernet.quick import train_supernet
    from nasforge.supernet.samplers import SAMPLERS

    sp = get_space(space)
    SAMPLERS.get(sampler)  # unknown name -> one line before any work
    device = resolve_device(accelerator)
    changes: dict[str, Any] = {k: v for k, v in {"steps": steps, "input_size": input_size,
                                 "batch_size": batch_size, "lr": lr, "distill": distill,
                                 "ema_decay": ema}.items() if v is not None}
    cfg = dataclasses.replace(DEFAULT_RECIPE.train, seed=seed, **changes)
    options = dict(DEFAULT_RECIPE.sampler_options) if sampler in (
        "complexity_aware", "performance_aware") else {}
    recipe = Recipe(data=data, sampler=sampler, sampler_options=options, train=cfg)
    trainer, result = train_supernet(sp, recipe, out, resume=resume, progress=progress,
                                     device=device)
    console.print(f"trained {result.step}/{cfg.steps} steps in {result.seconds:.1f} s; "
                  f"checkpoint {result.checkpoint}, log {result.log}")
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
    recal_batches: int = typer.Option(8, "--recal-batches", help="BN recalibration batches"),
    accelerator: str = typer.Option("auto", "--accelerator", help="cpu | cuda | auto"),
) -> None:
    """Top-1 of one subnet of a trained supernet (BN recalibrated on training batches)."""
    from nasforge.supernet.checkpoint import load_supernet
    from nasforge.supernet.data import load_data
    from nasforge.supernet.evaluate import evaluate_subnet
    from nasforge.supernet.quick import resolve_device

    device = resolve_device(accelerator)
    model, ck = load_supernet(supernet)
    a = _load_arch(model.space, arch)
    cfg = ck.config
    seed = int(cfg.get("train", {}).get("seed", 0))
    ds = load_data(data or str(cfg.get("data", "digits")), int(cfg["input_size"]), seed)
    if ds.num_classes != model.num_classes:
        raise IncompatibleComponentsError(
            f"data {ds.name!r} has {ds.num_classes} classes, the supernet {model.num_classes}"
        )
    acc = evaluate_subnet(model, a, ds, recal_batches=recal_batches,  # type: ignore[arg-type]
                          device=device)
    console.print(f"{a.arch_id}: top-1 {acc.top1:.4f} at {acc.input_size} px input "
                  f"({acc.num_images} val images of {ds.name}, BN recalibrated on "
                  f"{recal_batches} batches; {acc.mflops:.0f} MFLOPs at {a.resolution} px)")


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``eval`` to the ``nas`` application."""
    app.command("train")(train)
    app.command("eval")(eval_cmd)
