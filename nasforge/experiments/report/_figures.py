"""The report's figures: one run's Pareto plot, fronts per device, the one-page comparison."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.experiments.report._runs import ACCURACY
from nasforge.experiments.report._runs import LATENCY
from nasforge.experiments.report._runs import RunRecord
from nasforge.experiments.report._runs import best_so_far
from nasforge.experiments.report._runs import unique_labels

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from nasforge.experiments.config import ExperimentConfig

__all__ = ["draw_page", "plot_fronts_by_device", "plot_run_pareto"]


def plot_run_pareto(candidates: pd.DataFrame, pareto: pd.DataFrame,
                    best: dict[str, Any] | None, cfg: ExperimentConfig, path: str | Path,
                    accuracy_provenance: dict[str, Any], name: str) -> None:
    """One run's figure: its candidates, Pareto front, best architecture and latency budget.

    Args:
        candidates: every evaluated candidate (``feasible``, ``latency_ms``, ``accuracy``).
        pareto: the front, sorted by latency.
        best: the best candidate's summary (``arch_id``, ``latency_ms``, ``accuracy``), or None.
        cfg: the run's experiment (device, budget, space and strategy for the labels).
        path: the PNG to write.
        accuracy_provenance: where accuracy came from (its data and input size label the axis).
        name: the run's name, in the title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    feas = candidates["feasible"].astype(bool)
    ax.scatter(candidates.loc[~feas, LATENCY], candidates.loc[~feas, ACCURACY], s=10,
               c="#cccccc", label="over the constraints")
    ax.scatter(candidates.loc[feas, LATENCY], candidates.loc[feas, ACCURACY], s=12,
               c="#7a9cc6", label="evaluated")
    ax.step(pareto[LATENCY], pareto[ACCURACY], where="post", c="#d1495b", lw=1.5,
            label="Pareto front")
    if best is not None:
        ax.scatter([best["latency_ms"]], [best["accuracy"]], marker="*", s=220, c="#edae49",
                   edgecolors="k", zorder=5, label=f"best {best['arch_id']}")
    if cfg.constraints.latency_ms is not None:
        ax.axvline(cfg.constraints.latency_ms, ls="--", c="k", lw=1, label="latency budget")
    size = accuracy_provenance.get("input_size")
    ylabel = "accuracy (%)" + (f", {accuracy_provenance.get('data')} @ {size}px" if size else "")
    ax.set_xlabel(f"latency on {cfg.device} (ms)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{cfg.search_space} · {cfg.strategy.name} · {name}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _front_xy(r: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    p = r.pareto
    if not len(p):
        return np.zeros(0), np.zeros(0)
    p = p.sort_values(LATENCY)
    return p[LATENCY].to_numpy(dtype=float), p[ACCURACY].to_numpy(dtype=float)


def _union_front(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((-ys, xs))
    keep, best = [], -np.inf
    for i in order:
        if ys[i] > best:
            keep.append(i)
            best = ys[i]
    return xs[keep], ys[keep]


def _device_axes(fig: Any, grid: Any, devices: list[str]) -> dict[str, Axes]:
    cols = min(len(devices), 3)
    rows = math.ceil(len(devices) / cols)
    sub = grid.subgridspec(rows, cols, wspace=0.25, hspace=0.45)
    return {d: fig.add_subplot(sub[i // cols, i % cols]) for i, d in enumerate(devices)}


def _draw_fronts(axes: dict[str, Axes], runs: Sequence[RunRecord], colors: dict[str, Any],
                 budget_colors: bool) -> None:
    for dev, ax in axes.items():
        mine = [r for r in runs if r.device == dev]
        all_x, all_y = [], []
        for r in mine:
            x, y = _front_xy(r)
            if not len(x):
                continue
            all_x.append(x)
            all_y.append(y)
            label = (f"≤{r.latency_budget:g} ms" if budget_colors and r.latency_budget
                     else "no budget" if budget_colors else r.label)
            ax.step(x, y, where="post", color=colors[r.label], lw=1.1, alpha=0.85)
            ax.scatter(x, y, s=14, color=colors[r.label], label=label,
                       marker="o" if r.strategy == mine[0].strategy else "^")
            b = r.best
            if b is not None and not budget_colors:
                ax.scatter([b[LATENCY]], [b[ACCURACY]], marker="*", s=160,
                           color=colors[r.label], edgecolors="k", zorder=5)
            if r.latency_budget is not None:
                ax.axvline(r.latency_budget, ls=":", lw=0.8, color=colors[r.label])
        if len(all_x) > 1:
            ux, uy = _union_front(np.concatenate(all_x), np.concatenate(all_y))
            ax.step(ux, uy, where="post", color="k", lw=1.6, ls="--", label="union front")
        handles, labels = ax.get_legend_handles_labels()
        uniq = dict(zip(labels, handles, strict=True))
        if uniq:
            ax.legend(uniq.values(), uniq.keys(), fontsize=6, loc="lower right")
        ax.set_title(f"{dev}: Pareto fronts ({len(mine)} runs)", fontsize=9)
        ax.set_xlabel(f"latency on {dev} (ms)", fontsize=8)
        ax.set_ylabel("accuracy (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)


def _budget_colors(runs: Sequence[RunRecord]) -> dict[str, Any]:
    import matplotlib

    budgets = sorted({r.latency_budget for r in runs if r.latency_budget is not None})
    cmap = matplotlib.colormaps["viridis"]
    pos = {b: cmap(0.1 + 0.8 * i / max(len(budgets) - 1, 1)) for i, b in enumerate(budgets)}
    return {r.label: pos.get(r.latency_budget, "grey") if r.latency_budget is not None
            else "grey" for r in runs}


def plot_fronts_by_device(runs: Sequence[RunRecord], path: str | Path, *,
                          title: str = "") -> Path:
    """Every run's Pareto front, one panel per device, coloured by latency budget, with the
    union front of each device (the sweep plot).

    Args:
        runs: the runs.
        path: the PNG to write.
        title: figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = unique_labels(list(runs))
    devices = sorted({r.device for r in runs})
    cols = min(len(devices), 3)
    rows = math.ceil(len(devices) / cols)
    fig = plt.figure(figsize=(5.2 * cols, 4.0 * rows), dpi=110)
    axes = _device_axes(fig, fig.add_gridspec(1, 1)[0], devices)
    _draw_fronts(axes, runs, _budget_colors(runs), budget_colors=True)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def draw_page(runs: list[RunRecord], table: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    devices = sorted({r.device for r in runs})
    dev_rows = math.ceil(len(devices) / min(len(devices), 3))
    table_h = 0.3 * (len(runs) + 2)
    fig = plt.figure(figsize=(14, 4.0 * dev_rows + 3.6 + table_h), dpi=100)
    grid = fig.add_gridspec(3, 1, height_ratios=[4.0 * dev_rows, 3.4, table_h], hspace=0.35)
    colors = dict(zip([r.label for r in runs], _colors(len(runs)), strict=True))
    _draw_fronts(_device_axes(fig, grid[0], devices), runs, colors, budget_colors=False)
    ax = fig.add_subplot(grid[1])
    for r in runs:
        curve = best_so_far(r.candidates)
        if len(curve):
            ax.plot(np.arange(1, len(curve) + 1), curve, color=colors[r.label], lw=1.3,
                    label=r.label)
    ax.set_title("search curves: best feasible accuracy so far", fontsize=9)
    ax.set_xlabel("evaluations", fontsize=8)
    ax.set_ylabel("accuracy (%)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if runs:
        ax.legend(fontsize=6, loc="lower right", ncol=max(1, len(runs) // 8))
    tax = fig.add_subplot(grid[2])
    tax.axis("off")
    cells = [[_fmt(v, 2 if c != "MFLOPs" else 1) for c, v in row.items()]
             for row in table.to_dict("records")]
    if cells:
        t = tax.table(cellText=cells, colLabels=list(table.columns), loc="upper center",
                      cellLoc="center")
        t.auto_set_font_size(False)
        t.set_fontsize(7)
        t.auto_set_column_width(list(range(len(table.columns))))
        for i, r in enumerate(runs):
            t[i + 1, 0].set_text_props(color=colors[r.label], weight="bold")
    tax.set_title("chosen architectures", fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
