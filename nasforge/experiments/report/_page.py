"""The report itself: :func:`make_report` draws the page and writes the optional HTML file."""

from __future__ import annotations

import base64
import html as html_lib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from nasforge.errors import InvalidInputError
from nasforge.experiments.report._figures import draw_page
from nasforge.experiments.report._runs import ACCURACY
from nasforge.experiments.report._runs import LATENCY
from nasforge.experiments.report._runs import MFLOPS
from nasforge.experiments.report._runs import RunRecord
from nasforge.experiments.report._runs import load_run
from nasforge.experiments.report._runs import runs_table
from nasforge.experiments.report._runs import unique_labels

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ReportOutcome", "make_report"]


@dataclass(frozen=True)
class ReportOutcome:
    """What :func:`make_report` wrote.

    Attributes:
        png: the one-page figure.
        html: the HTML page (None unless asked for).
        table: the chosen-architectures table.
    """

    png: Path
    html: Path | None
    table: pd.DataFrame


def make_report(run_dirs: Sequence[str | Path], out: str | Path = "report.png", *,
                html: bool = False, title: str | None = None) -> ReportOutcome:
    """Compare runs on one page (see the module docstring).

    Args:
        run_dirs: run folders or storage URLs (``URL#STUDY``), at least one.
        out: the PNG to write; the HTML page goes beside it with the suffix ``.html``.
        html: also write the HTML page (the PNG embedded, the tables as HTML).
        title: page title (default: the number of runs and devices).

    Raises:
        InvalidInputError: no run folder, or one that cannot be read.
    """
    if not run_dirs:
        raise InvalidInputError("a report needs at least one run folder; got none")
    runs = unique_labels([load_run(d) for d in run_dirs])
    table = runs_table(runs)
    png = Path(out)
    if png.suffix.lower() != ".png":
        raise InvalidInputError(f"--out must name a .png file, got {str(png)!r}")
    png.parent.mkdir(parents=True, exist_ok=True)
    devices = sorted({r.device for r in runs})
    title = title or f"nasforge report: {len(runs)} run(s) on {', '.join(devices)}"
    draw_page(runs, table, png, title)
    page = None
    if html:
        page = png.with_suffix(".html")
        page.write_text(_html(runs, table, png, title))
    return ReportOutcome(png, page, table)


def _html(runs: list[RunRecord], table: pd.DataFrame, png: Path, title: str) -> str:
    img = base64.b64encode(png.read_bytes()).decode("ascii")
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>"
             f"{html_lib.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;"
             "padding:3px 6px}</style></head><body>",
             f"<h1>{html_lib.escape(title)}</h1>",
             f"<img alt='report' style='max-width:100%' src='data:image/png;base64,{img}'>",
             "<h2>Chosen architectures</h2>",
             table.to_html(index=False, na_rep="-", float_format=lambda v: f"{v:.2f}")]
    for r in runs:
        cols = [c for c in ("arch_id", ACCURACY, LATENCY, MFLOPS, "params_m") if c in r.pareto]
        parts.append(f"<h2>Pareto front: {html_lib.escape(r.label)}</h2>"
                     f"<p>{html_lib.escape(str(r.path))}</p>")
        parts.append(r.pareto[cols].to_html(index=False, float_format=lambda v: f"{v:.3f}")
                     if cols else "<p>(empty)</p>")
    parts.append("</body></html>")
    return "\n".join(parts)
