"""``nas rank``: does one accuracy source rank subnets the way another does?

Flags become a :class:`~nasforge.experiments.rank.RankConfig`,
:func:`~nasforge.experiments.rank.run_rank` scores and compares, and the report is printed (a
table, or ``--json`` on stdout and nothing else).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nasforge.cli._common import console

__all__ = ["register"]

_Space = Annotated[str, typer.Option("--space", "-s", help="Search space (`nas spaces`).")]
_A = Annotated[str, typer.Option(
    "--a", help="First source, an accuracy spec as `nas search --accuracy`: supernet (the "
    "--supernet), supernet:PATH, quick, standalone, csv:PATH:COLUMN, zc:NAME, predictor:DIR, "
    "report:RANK.json:a|b (a saved --json report).")]
_B = Annotated[str, typer.Option("--b", help="Second source (the reference), as --a.")]
_Supernet = Annotated[str | None, typer.Option(
    "--supernet", help="Supernet checkpoint (or `quick`) for `supernet`.")]
_Data = Annotated[str | None, typer.Option(
    "--data", help="Data of `standalone` and of data proxies (default: the supernet's).")]
_N = Annotated[int, typer.Option("--n", min=2, help="Subnets, stratified by FLOPs.")]
_Steps = Annotated[int, typer.Option("--steps", min=1, help="Stand-alone training steps.")]
_TopK = Annotated[int, typer.Option("--top-k", min=1, help="k of the top-k overlap.")]
_Seed = Annotated[int, typer.Option("--seed", help="Random seed (subnets, init, data order).")]
_Accelerator = Annotated[str, typer.Option("--accelerator", help="cpu, cuda or auto.")]
_Json = Annotated[bool, typer.Option("--json", help="Print the report as JSON on stdout.")]
_Plot = Annotated[Path | None, typer.Option("--plot", help="Write a scatter plot (PNG) here.")]
_Threads = Annotated[int | None, typer.Option(
    "--threads", min=1, help="torch intra-op threads (default: torch's, one per core); 1 on a "
    "busy machine, where more threads wait on each other")]


def rank(
    space: _Space = "elasticvit", a: _A = "supernet", b: _B = "standalone",
    supernet: _Supernet = None, data: _Data = None, n: _N = 20, steps: _Steps = 100,
    top_k: _TopK = 5, seed: _Seed = 0, accelerator: _Accelerator = "cpu",
    as_json: _Json = False, plot: _Plot = None, threads: _Threads = None,
) -> None:
    """Rank agreement of two accuracy sources over N subnets stratified by FLOPs: Kendall tau,
    Spearman and top-k overlap (e.g. supernet vs stand-alone training)."""
    from nasforge.evaluation.settings import EvalSettings
    from nasforge.experiments.rank import RankConfig
    from nasforge.experiments.rank import run_rank

    cfg = RankConfig(space, a, b, supernet=supernet, data=data, n=n, steps=steps, top_k=top_k,
                     seed=seed, settings=EvalSettings(accelerator=accelerator,
                                                      recal_batches=8),
                     threads=threads, plot=plot)
    report = run_rank(cfg, progress=not as_json)
    if as_json:
        console.print_json(json.dumps(report.to_dict()))
        return
    table = Table(title=f"nas rank · {space} · {a} vs {b} · {report.n} subnets")
    table.add_column("", style="bold")
    table.add_column("value")
    table.add_row("Kendall tau", f"{report.kendall_tau:.3f}")
    table.add_row("Spearman", f"{report.spearman:.3f}")
    table.add_row(f"top-{report.top_k} overlap", f"{report.top_k_overlap:.2f}")
    for name, sec in report.seconds.items():
        table.add_row(f"time {name}", f"{sec:.1f} s")
    if plot is not None:
        table.add_row("plot", str(plot))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``rank`` to ``app``."""
    app.command("rank")(rank)
