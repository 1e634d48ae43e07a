"""``nas spaces``: the registered search spaces with their size and FLOPs range."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from nasforge.cli._common import console
from nasforge.search_spaces import SPACES
from nasforge.search_spaces import get_space

__all__ = ["register", "space_summary"]


def space_summary(name: str) -> dict[str, object]:
    """Computed facts about a space: choices, exact size, FLOPs (MACs) of min and max archs."""
    space = get_space(name)
    lo, hi = space.min_arch(), space.max_arch()
    return {
        "space": name,
        "description": space.description,
        "choices": space.num_choices(),
        "size": space.size(),
        "mflops_min": space.flops(lo) / 1e6,
        "mflops_max": space.flops(hi) / 1e6,
        "mflops_reference_min": space.flops_reference(lo) / 1e6,
        "mflops_reference_max": space.flops_reference(hi) / 1e6,
        "params_m_min": space.params(lo) / 1e6,
        "params_m_max": space.params(hi) / 1e6,
        "has_model": space.has_model,
    }


def spaces(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List the search spaces: number of choices, exact size, FLOPs range.

    FLOPs are multiply-accumulates (MACs), the field's convention; the min/max are those of the
    space's all-minimum and all-maximum architectures, computed from their blocks, at the
    space's default number of classes (1000 for ImageNet spaces, 10 for NAS-Bench-201).
    """
    rows = [space_summary(n) for n in SPACES.list()]
    if json_out:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="search spaces (FLOPs = MACs of the built model)")
    for col in ("space", "choices", "size", "MFLOPs min–max", "params (M)", "description"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["space"]), str(r["choices"]), f"{r['size']:,}",
            f"{r['mflops_min']:.1f} – {r['mflops_max']:.1f}",
            f"{r['params_m_min']:.2f} – {r['params_m_max']:.2f}", str(r["description"]),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``spaces`` to ``app``."""
    app.command("spaces")(spaces)
