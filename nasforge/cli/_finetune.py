"""``nas finetune``: train a found subnet alone from its inherited weights.

A fine-tuning recipe (:mod:`nasforge.supernet.training.finetune.recipe`; ``--recipe FILE`` or a
shipped name, default ``finetune_quick``) decides the run; ``--steps``, ``--data``,
``--distill/--no-distill`` and ``--set train.KEY=VALUE`` override it. The ranks come from
:mod:`nasforge.supernet.training.launch` (one process, ``--nproc N`` or ``torchrun``).

Run layout (``--out DIR``): ``last.ckpt``, ``train_log.csv`` and ``tb/`` as ``nas train``
writes them (``--resume`` continues a killed run bit for bit), then ``model.safetensors`` +
``model.json`` (the static model; ``nas export DIR/arch.yaml --model DIR``) and ``arch.yaml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasforge.cli._common import check_flags
from nasforge.cli._common import console

__all__ = ["register"]

_Opt = typer.Option
_ArchFile = Annotated[Path, typer.Argument(help="the subnet: architecture YAML/JSON "
                                           "(best.yaml of nas search)")]
_Supernet = Annotated[Path, _Opt("--supernet", help="the supernet checkpoint it inherits from "
                                 "(DIR/last.ckpt or DIR)")]
_Out = Annotated[Path, _Opt("--out", help="run folder (last.ckpt, train_log.csv, model.*)")]
_Recipe = Annotated[str, _Opt("--recipe", help="fine-tuning recipe YAML or shipped name "
                              "(finetune_quick, finetune_ofa)")]
_Data = Annotated[str | None, _Opt("--data", help="dataset spec (default: the supernet's data "
                                   "and split)")]
_Distill = Annotated[bool | None, _Opt(
    "--distill/--no-distill", help="learn from the supernet's largest subnet (soft targets) "
    "or from the labels (default: the recipe's)")]
_Steps = Annotated[int | None, _Opt("--steps", help="optimizer steps (default: the recipe's)")]
_Resume = Annotated[bool, _Opt("--resume", help="continue from OUT/last.ckpt")]
_Accelerator = Annotated[str, _Opt("--accelerator", help="cpu | cuda | auto")]
_Nproc = Annotated[int | None, _Opt("--nproc", help="data-parallel ranks on this machine; "
                                    "under torchrun leave it out")]
_CkptEvery = Annotated[int | None, _Opt("--ckpt-every", help="checkpoint every N steps")]
_Set = Annotated[list[str] | None, _Opt(
    "--set", help="override a recipe key: train.KEY=VALUE or loader.KEY=VALUE (repeatable)")]
_Progress = Annotated[bool, _Opt("--progress/--no-progress")]


def finetune(
    arch_file: _ArchFile, supernet: _Supernet, out: _Out = Path("runs/finetune"),
    recipe: _Recipe = "finetune_quick", data: _Data = None, distill: _Distill = None,
    steps: _Steps = None, resume: _Resume = False, accelerator: _Accelerator = "auto",
    nproc: _Nproc = None, ckpt_every: _CkptEvery = None, set_: _Set = None,
    progress: _Progress = True,
) -> None:
    """Fine-tune a subnet from its inherited weights (resumable with --resume)."""
    from nasforge.experiments.export import load_arch_config
    from nasforge.supernet.training import finetune as ft
    from nasforge.supernet.training.recipe_flags import parse_sets

    check_flags([("--steps", steps, "int", 1, None), ("--ckpt-every", ckpt_every, "int", 1,
                                                      None)])
    sets = parse_sets(set_ or [])
    if steps is not None:
        sets["train.steps"], sets["train.epochs"] = steps, None
    if ckpt_every is not None:
        sets["train.checkpoint_every"] = ckpt_every
    plan = ft.load_finetune_recipe(recipe).with_overrides(distill=distill, data=data)
    plan = plan.with_sets(sets) if sets else plan
    cfg = load_arch_config(arch_file)
    job = ft.FinetuneJob(cfg.arch.to_dict(), supernet, plan.to_dict(), out, resume=resume,
                         accelerator=accelerator, progress=progress)
    ft.check_finetune_job(job)
    outcome = ft.launch_finetune(job, nproc=nproc)
    if outcome is None:
        return  # rank 0 reports
    ranks = f" on {outcome.world_size} ranks ({outcome.backend})" if outcome.world_size > 1 else ""
    console.print(f"fine-tuned {outcome.step}/{outcome.steps} steps{ranks} in "
                  f"{outcome.result.seconds:.1f} s; top-1 {outcome.top1:.4f} (inherited "
                  f"{outcome.inherited_top1:.4f}) on {outcome.num_val} val images at "
                  f"{outcome.input_size} px; model {outcome.model}")


def register(app: typer.Typer) -> None:
    """Add ``finetune`` to the ``nas`` application."""
    app.command("finetune")(finetune)
