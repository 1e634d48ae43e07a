"""``nas rank``: does one accuracy source rank subnets the way another does?"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.errors import InvalidInputError

__all__ = ["register"]


def rank(
    space: str = typer.Option("elasticvit", "--space", "-s", help="Search space (`nas spaces`)."),
    a: str = typer.Option("supernet", "--a",
                          help="First source: supernet, standalone, csv:PATH:COLUMN, zc:NAME, "
                               "predictor:DIR, report:RANK.json:a|b (a saved --json report)."),
    b: str = typer.Option("standalone", "--b", help="Second source (the reference), as --a."),
    supernet: str | None = typer.Option(None, "--supernet",
                                        help="Supernet checkpoint (or `quick`) for `supernet`."),
    data: str | None = typer.Option(None, "--data",
                                    help="Data of `standalone` and of data proxies "
                                         "(default: the supernet's)."),
    n: int = typer.Option(20, "--n", min=2, help="Subnets, stratified by FLOPs."),
    steps: int = typer.Option(100, "--steps", min=1, help="Stand-alone training steps."),
    top_k: int = typer.Option(5, "--top-k", min=1, help="k of the top-k overlap."),
    seed: int = typer.Option(0, "--seed", help="Random seed (subnets, init, data order)."),
    accelerator: str = typer.Option("cpu", "--accelerator", help="cpu, cuda or auto."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Write a scatter plot (PNG) here."),
    threads: int | None = typer.Option(None, "--threads", min=1,
                                       help="torch intra-op threads (default: torch's, one per "
                                            "core); 1 on a busy machine, where more threads "
                                            "wait on each other"),
) -> None:
    """Rank agreement of two accuracy sources over N subnets stratified by FLOPs: Kendall tau,
    Spearman and top-k overlap (e.g. supernet vs stand-alone training)."""
    if a == b:
        raise InvalidInputError(f"nas rank compares two different accuracy sources, got {a!r} "
                                "for both --a and --b; change one of them")
    from nasforge.experiments.export.checks import torch_threads
    from nasforge.experiments.rank import plot_rank
    from nasforge.experiments.rank import rank_agreement
    from nasforge.experiments.rank import resolve_source
    from nasforge.search_spaces import get_space
    from nasforge.supernet.training.quick import resolve_device

    sp = get_space(space)
    device = str(resolve_device(accelerator))
    progress = not as_json
    with torch_threads(threads):
        src_a, src_b = (resolve_source(s, sp, supernet=supernet, data=data, steps=steps,
                                       seed=seed, accelerator=device, progress=progress)
                        for s in (a, b))
        # two specs that resolve to the same column name (e.g. two csv sources of one metric)
        src_a.name, src_b.name = a, b
        report = rank_agreement(sp, src_a, src_b, n=n, seed=seed, top_k=top_k)
    if plot is not None:
        plot_rank(report, plot)
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
