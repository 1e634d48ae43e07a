"""Runs read back: a run folder or a search's Optuna study as one :class:`RunRecord`.

:func:`load_run` reads a run folder (``run.json``, ``candidates.csv``, ``pareto.csv``) or, given
a storage URL (``URL#STUDY``), a study through :func:`load_study_run`; :func:`best_so_far` and
:func:`runs_table` are the figures' and the page's data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ACCURACY", "LATENCY", "MFLOPS", "RunRecord", "best_so_far", "load_run",
           "load_study_run", "runs_table", "unique_labels"]

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
    import io

    import pandas as pd

    from nasforge.structured import MAX_TABLE_BYTES
    from nasforge.structured import read_text

    if not path.exists():
        return pd.DataFrame()
    text = read_text(path, "run table", max_bytes=MAX_TABLE_BYTES)  # a FIFO cannot block
    try:
        return pd.read_csv(io.StringIO(text))
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


def unique_labels(runs: list[RunRecord]) -> list[RunRecord]:
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

