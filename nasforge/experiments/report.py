"""Reports comparing search runs: Pareto fronts per device, chosen architectures, search curves.

A run is a run folder or a search's Optuna study: a storage URL (``sqlite:///PATH``,
``postgresql://...``, ``journal:PATH``), with ``#STUDY`` to pick a study (needed when the
storage holds several nasforge studies); :func:`load_run` reads either.
A run folder (written by :func:`~nasforge.experiments.runner.run_experiment`) holds
``run.json``, ``candidates.csv`` and ``pareto.csv`` and the run's own figure,
``pareto.png`` (:func:`plot_run_pareto`); :func:`make_report` reads several folders and draws
one page (PNG, and optionally an HTML file embedding it with the tables):

* the Pareto fronts, accuracy vs latency, one panel per latency-target device (latencies of
  different devices are not comparable, so they never share an axis);
* the search curves: best feasible accuracy so far vs the number of evaluations;
* the chosen architecture of each run: device, latency budget, strategy, arch_id, latency,
  accuracy, MFLOPs.

Example:
    >>> outcome = make_report(["runs/a", "runs/b"], "report.png", html=True)  # doctest: +SKIP
    >>> outcome.table.columns[:3].tolist()  # doctest: +SKIP
    ['run', 'device', 'latency budget (ms)']
"""

from __future__ import annotations

import base64
import html as html_lib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from nasforge.experiments.config import ExperimentConfig

__all__ = ["ReportOutcome", "RunRecord", "best_so_far", "load_run", "load_study_run",
           "make_report",
           "plot_fronts_by_device", "plot_run_pareto", "runs_table"]

ACCURACY, LATENCY, MFLOPS = "accuracy", "latency_ms", "mflops"


@dataclass(frozen=True)
class RunRecord:
    """One run folder read back.

    Attributes:
        path: the folder.
        label: a short unique name for legends and tables.
        manifest: ``run.json``.
        candidates: ``candidates.csv`` (every evaluated candidate, in evaluation order).
        pareto: ``pareto.csv`` (the feasible front).
    """

    path: Path
    label: str
    manifest: dict[str, Any]
    candidates: pd.DataFrame
    pareto: pd.DataFrame

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.manifest.get("config") or {})

    @property
    def summary(self) -> dict[str, Any]:
        return dict(self.manifest.get("summary") or {})

    @property
    def device(self) -> str:
        return str(self.summary.get("device") or self.config.get("device") or "?")

    @property
    def strategy(self) -> str:
        s = self.summary.get("strategy") or self.config.get("strategy") or "?"
        return str(s.get("name", "?")) if isinstance(s, dict) else str(s)

    @property
    def latency_budget(self) -> float | None:
        v = self.summary.get("latency_budget_ms")
        if v is None:
            v = (self.config.get("constraints") or {}).get("latency_ms")
        return None if v is None else float(v)

    @property
    def best(self) -> dict[str, Any] | None:
        b = self.summary.get("best")
        return dict(b) if isinstance(b, dict) else None


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{path}: malformed CSV: {str(e).splitlines()[0]}") from None


def load_run(path: str | Path, label: str | None = None) -> RunRecord:
    """Read a run folder, or a search's study from its storage.

    Args:
        path: the folder holding ``run.json`` (``candidates.csv`` and ``pareto.csv`` are
            read when present), or a storage URL with an optional ``#STUDY``.
        label: the run's name in the report (default: its configured ``name``, else the
            folder name, or the study name).

    Raises:
        InvalidInputError: not a run folder, or a malformed ``run.json`` / CSV; a storage
            that cannot be opened, an unknown study, or several studies and no ``#STUDY``.
    """
    if isinstance(path, str) and not Path(path).is_dir():
        from nasforge.strategies.storage import StorageURL  # only then: search code is heavy

        if StorageURL.is_url(path):
            return load_study_run(path, label)
    folder = Path(path)
    manifest_path = folder / "run.json"
    if not manifest_path.is_file():
        raise InvalidInputError(f"{folder} is not a run folder: it has no run.json (write one "
                                "with `nas search` or `nas run`)")
    from nasforge.validation import parse_structured
    from nasforge.validation import read_text

    # UTF-8, well-formed, bounded nesting: a damaged manifest is one line, not a traceback
    manifest = parse_structured(read_text(manifest_path, "run manifest"), str(manifest_path),
                                kind="json")
    if not isinstance(manifest, dict):
        raise InvalidInputError(f"{manifest_path}: expected a JSON object, got "
                                f"{type(manifest).__name__}")
    if not (folder / "candidates.csv").is_file():
        raise InvalidInputError(f"{folder} is an incomplete run folder: it has run.json but no "
                                "candidates.csv (rerun the search with --resume to finish it)")
    cands = _read_csv(folder / "candidates.csv")
    pareto = _read_csv(folder / "pareto.csv")
    for name, frame in (("candidates.csv", cands), ("pareto.csv", pareto)):
        missing = [c for c in (ACCURACY, LATENCY) if len(frame.columns) and c not in frame]
        if missing:
            raise InvalidInputError(f"{folder / name}: missing column(s) {', '.join(missing)} "
                                    f"(columns: {', '.join(map(str, frame.columns))})")
    cfg_name = (manifest.get("config") or {}).get("name")
    return RunRecord(folder, label or str(cfg_name or folder.name), manifest, cands, pareto)


def load_study_run(spec: str, label: str | None = None) -> RunRecord:
    """Read a search's Optuna study (``URL`` or ``URL#STUDY``) as a :class:`RunRecord`: its
    candidates (trials in number order), Pareto front, best feasible candidate and settings.

    Raises:
        InvalidInputError: see :func:`load_run`.
    """
    import pandas as pd

    from nasforge.strategies import pareto_mask
    from nasforge.strategies.storage import StorageURL
    from nasforge.strategies.storage import read_study

    url = StorageURL.parse(spec, with_study=True)
    study_name, meta, rows = read_study(url, url.study)
    objectives = meta.get("objectives") or []
    names = [str(o["name"]) for o in objectives]
    frame = pd.DataFrame([{"index": i, "step": r["step"], "arch_id": r["arch_id"],
                           **dict(zip(names, r["values"], strict=True)), "arch": r["arch"]}
                          for i, r in enumerate(rows)],
                         columns=["index", "step", "arch_id", *names, "arch"])
    feasible = np.ones(len(frame), dtype=bool)
    budget = None
    for o in objectives:
        col = frame[o["name"]].to_numpy(dtype=np.float64)
        if o.get("lower") is not None:
            feasible &= col >= float(o["lower"])
        if o.get("upper") is not None:
            feasible &= col <= float(o["upper"])
            if o["name"] == LATENCY:
                budget = float(o["upper"])
    frame["feasible"] = feasible & np.isfinite(frame[names].to_numpy(dtype=np.float64)).all(1)
    for col in (ACCURACY, LATENCY):
        if col not in frame:
            raise InvalidInputError(f"study {study_name!r} in {url!r} has no {col!r} objective "
                                    f"(objectives: {', '.join(names)}); it cannot be reported")
    ok = frame[frame["feasible"]]
    pareto = ok.iloc[:0]
    best = None
    if len(ok):
        F = np.stack([-ok[ACCURACY].to_numpy(np.float64), ok[LATENCY].to_numpy(np.float64)], 1)
        pareto = ok[pareto_mask(F)].sort_values(LATENCY)
        top = ok.loc[ok[ACCURACY].idxmax()]
        best = {"arch_id": top["arch_id"], ACCURACY: float(top[ACCURACY]),
                LATENCY: float(top[LATENCY]),
                MFLOPS: float(top[MFLOPS]) if MFLOPS in ok else None}
    summary = {"device": meta.get("device"), "strategy": meta.get("strategy"),
               "seed": meta.get("seed"), "n_evaluated": len(frame), "best": best,
               "latency_budget_ms": budget}
    manifest = {"config": {"name": study_name, "device": meta.get("device"),
                           "strategy": meta.get("strategy"), "seed": meta.get("seed")},
                "summary": summary, "study": {"storage": url, "name": study_name}}
    return RunRecord(Path(study_name), label or study_name, manifest, frame, pareto)


def _unique_labels(runs: list[RunRecord]) -> list[RunRecord]:
    seen: dict[str, int] = {}
    out = []
    for r in runs:
        n = seen.get(r.label, 0)
        seen[r.label] = n + 1
        label = r.label if n == 0 else f"{r.label} ({r.path.parent.name}/{r.path.name})"
        out.append(RunRecord(r.path, label, r.manifest, r.candidates, r.pareto))
    return out


def best_so_far(candidates: pd.DataFrame) -> np.ndarray:
    """Best feasible accuracy after each evaluation (NaN until one is feasible).

    Args:
        candidates: rows in evaluation order with ``accuracy`` and ``feasible``.

    Returns:
        float array of shape ``(len(candidates),)``.
    """
    if not len(candidates) or ACCURACY not in candidates:
        return np.zeros(0)
    acc = candidates[ACCURACY].to_numpy(dtype=np.float64)
    if "feasible" in candidates:
        acc = np.where(candidates["feasible"].astype(bool).to_numpy(), acc, np.nan)
    acc = np.where(np.isnan(acc), -np.inf, acc)
    best = np.maximum.accumulate(acc)
    return np.where(np.isfinite(best), best, np.nan)


def runs_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """The chosen architecture of each run: one row per run."""
    import pandas as pd

    rows = []
    for r in runs:
        b = r.best or {}
        rows.append({
            "run": r.label, "device": r.device, "latency budget (ms)": r.latency_budget,
            "strategy": r.strategy, "seed": r.summary.get("seed", r.config.get("seed")),
            "evaluations": r.summary.get("n_evaluated", len(r.candidates)),
            "best arch_id": b.get("arch_id"), "latency (ms)": b.get(LATENCY),
            "accuracy (%)": b.get(ACCURACY), "MFLOPs": b.get(MFLOPS),
        })
    return pd.DataFrame(rows)


# ---- plots -------------------------------------------------------------------------------------
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

    runs = _unique_labels(list(runs))
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


def _draw_page(runs: list[RunRecord], table: pd.DataFrame, path: Path, title: str) -> None:
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


# ---- the report --------------------------------------------------------------------------------
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
    runs = _unique_labels([load_run(d) for d in run_dirs])
    table = runs_table(runs)
    png = Path(out)
    if png.suffix.lower() != ".png":
        raise InvalidInputError(f"--out must name a .png file, got {str(png)!r}")
    png.parent.mkdir(parents=True, exist_ok=True)
    devices = sorted({r.device for r in runs})
    title = title or f"nasforge report: {len(runs)} run(s) on {', '.join(devices)}"
    _draw_page(runs, table, png, title)
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
