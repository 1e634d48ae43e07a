"""``nas arch``: sample, import, export and describe architectures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from nasforge.atomic import write_text_atomic
from nasforge.cli._common import console
from nasforge.errors import InvalidInputError
from nasforge.search_spaces import get_space
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import block_flops
from nasforge.search_spaces.block import block_flops_reference
from nasforge.search_spaces.block import block_params
from nasforge.search_spaces.io import ARCH_FORMATS
from nasforge.search_spaces.io import archs_to_yaml
from nasforge.search_spaces.io import load_archs
from nasforge.search_spaces.io import read_text
from nasforge.validation import check_output_file

__all__ = ["describe_arch", "register"]

#: most architectures ``nas arch sample`` writes at once
MAX_SAMPLES = 100_000

arch_app = typer.Typer(help="Sample, import, export and describe architectures.",
                       no_args_is_help=True)


@arch_app.command("sample")
def sample(
    space: str = typer.Option(..., "--space", "-s", help="Search space name (see `nas spaces`)."),
    n: int = typer.Option(1, "--n", "-n", min=1, max=MAX_SAMPLES, help="How many architectures."),
    seed: int = typer.Option(0, "--seed", min=0, help="Random seed (same seed, same "
                             "architectures)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write YAML here, not stdout."),
) -> None:
    """Sample random architectures of a space and print them as YAML."""
    _check_out(out)
    sp = get_space(space)
    rng = np.random.default_rng(seed)
    text = archs_to_yaml([sp.sample(rng) for _ in range(n)])
    _emit(text, out)


@arch_app.command("import")
def import_(
    file: Path = typer.Argument(..., help="File in the foreign format."),
    fmt: str = typer.Option(..., "--from", help="Format: elasticvit-tuple, ofa, nb201, hat."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write our YAML here."),
    resolution: int | None = typer.Option(
        None, "--resolution", min=1, help="Input resolution, for formats that do not carry one "
        "(ofa)."),
    space: str | None = typer.Option(
        None, "--space", "-s", help="Target space, for formats that do not name one (hat: "
        "hat_wmt14ende, hat_wmt14enfr, hat_wmt19ende, hat_iwslt14deen)."),
) -> None:
    """Convert an architecture from a published format to our YAML.

    Formats: `elasticvit-tuple` (ElasticViT's 10-field tuple, as its released models are
    stored), `ofa` (Once-for-All's `net.config` JSON of a released subnet), `nb201` (a
    NAS-Bench-201 `arch_str`, one per line), `hat` (HAT's SubTransformer YAML; with
    `--space hat_<task>`).
    """
    _check_out(out)
    extra = {} if space is None else {"space": space}
    archs = ARCH_FORMATS.get(fmt).load(read_text(file, "arch file"), resolution=resolution,
                                       **extra)
    _emit(archs_to_yaml(archs), out)


@arch_app.command("export")
def export(
    file: Path = typer.Argument(..., help="Our architecture YAML."),
    fmt: str = typer.Option(..., "--to", help="Format: elasticvit-tuple, ofa, nb201, hat."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here, not stdout."),
) -> None:
    """Convert our architecture YAML to a published format."""
    _check_out(out)
    dump = ARCH_FORMATS.get(fmt).dump
    if dump is None:
        raise InvalidInputError(f"format {fmt!r} can be imported but not exported")
    _emit("".join(dump(a) for a in load_archs(file)), out)


def describe_arch(arch: Arch) -> dict[str, Any]:
    """FLOPs (MACs), reference FLOPs, params and the per-block table of ``arch``."""
    space = get_space(arch.space)
    blocks = space.blocks(arch)
    return {
        "space": arch.space,
        "arch_id": arch.arch_id,
        "resolution": getattr(arch, "resolution", None),
        "flops": space.flops(arch),
        "flops_reference": space.flops_reference(arch),
        "params": space.params(arch),
        "flops_convention": "multiply-accumulates (MACs) of the built torch module",
        "blocks": [
            {**b.to_dict(), "flops": block_flops(b), "flops_reference": block_flops_reference(b),
             "params": block_params(b)}
            for b in blocks
        ],
    }


@arch_app.command("describe")
def describe(
    file: Path = typer.Argument(..., help="Our architecture YAML (or JSON)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object per architecture."),
) -> None:
    """FLOPs, params and a per-block table of an architecture.

    `flops` are the MACs the built model executes (convolutions, linear layers, attention
    products); `flops_reference` follows the space's published counting rule (ElasticViT's
    `compute_flops`, OFA's profiler), equal to `flops` where a space has none.
    """
    archs = load_archs(file)
    infos = [describe_arch(a) for a in archs]
    if json_out:
        console.print_json(json.dumps(infos[0] if len(infos) == 1 else infos))
        return
    for info in infos:
        res = "" if info["resolution"] is None else f"  resolution {info['resolution']}"
        console.print(
            f"[bold]{info['space']}[/bold] arch_id {info['arch_id']}{res}"
            f"  FLOPs {int(info['flops']) / 1e6:.2f} M (MACs)  reference "
            f"{int(info['flops_reference']) / 1e6:.2f} M  params {int(info['params']) / 1e6:.3f} M"
        )
        table = Table()
        for col in ("#", "kind", "stage", "in", "out", "cin", "cout", "detail", "MFLOPs",
                    "params"):
            table.add_column(col, justify="right" if col in ("#", "MFLOPs", "params") else "left")
        for i, b in enumerate(info["blocks"]):
            detail = " ".join(f"{k}={v}" for k, v in b.items() if k not in (
                "kind", "stage", "hw_in", "hw_out", "cin", "cout", "flops", "flops_reference",
                "params"))
            table.add_row(str(i), b["kind"], b["stage"], str(b["hw_in"]), str(b["hw_out"]),
                          str(b["cin"]), str(b["cout"]), detail, f"{b['flops'] / 1e6:.3f}",
                          f"{b['params']:,}")
        console.print(table)


def _check_out(out: Path | None) -> None:
    """An output file given with ``-o``: checked before any work (issue 16)."""
    if out is not None:
        check_output_file(out, "--out")


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out, text)  # a full disk leaves no torn file
        console.print(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add the ``arch`` command group to ``app``."""
    app.add_typer(arch_app, name="arch")
