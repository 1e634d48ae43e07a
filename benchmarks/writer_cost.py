"""What a single writer pays per candidate, split: handing a round over, and its transaction.

A fresh SQLite study (``SearchStudy(..., exclusive=True)``, the ``nas search`` default: its
candidates are rows of the candidate table since that table exists, trials before) gets
``--n`` random ``--space`` archs with 4 objective values (what ``nas search`` stores:
accuracy, latency, MFLOPs, params), handed over 100 per round
(:meth:`~nasforge.strategies.SearchStudy.add_finished`) and written in one transaction
(``write_new``), with the process's heap frozen as ``run_search`` does. Prints JSON:
``add_us`` and ``write_us`` (CPU µs per candidate), and ``insert_us``: per Optuna table, the
CPU µs per candidate of its batched insert statements (SQLite's own work and the binding of
the rows; ``nasforge_candidates``: the candidate rows' executemany), the rest of
``write_us`` being Python.

Usage: ``python benchmarks/writer_cost.py [--n 12000] [--space ofa_mbv3_w12] [--repeats 3]``
(medians over the repeats, each in a fresh study; ``PYTHONPATH`` selects the tree, and the
script runs on trees before the single writer's inserts had their own module too).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np


def one(space_name: str, n: int, seed: int, folder: Path) -> dict[str, Any]:
    """One study: the CPU seconds of handing ``n`` candidates over and of writing them."""
    import importlib

    from nasforge.search_spaces import get_space
    from nasforge.strategies import SearchStudy

    try:  # where the single writer's inserts live (before 8001cdb: the fast path's module)
        module: Any = importlib.import_module("nasforge.strategies.storage._rdb_finished")
        name = "insert_many"
    except ImportError:
        module = importlib.import_module("nasforge.strategies.storage._rdb_fast")
        name = "_insert_many"

    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    archs = space.from_indices(space.sample_indices(rng, n), check=False)  # type: ignore[attr-defined]
    values = rng.random((n, 4))
    store = SearchStudy(f"sqlite:///{folder / f's{seed}.db'}", "nasforge", space=space,
                        exclusive=True)
    store.init({"benchmark": "writer_cost"}, ["maximize", "minimize", "minimize", "minimize"],
               resume=False)
    spent: dict[str, float] = {}
    plain = getattr(module, name)

    def timed(session: Any, table: Any, columns: tuple[str, ...], rows: list[Any]) -> None:
        t = time.process_time()
        plain(session, table, columns, rows)
        spent[table.name] = spent.get(table.name, 0.0) + time.process_time() - t

    try:  # a single writer's candidate rows (since they exist): their own insert
        rows_module: Any = importlib.import_module(
            "nasforge.strategies.storage._candidate_table")
    except ImportError:
        rows_module = None
    plain_rows = getattr(rows_module, "_insert_rows", None)

    def timed_rows(session: Any, rows: list[Any]) -> None:
        t = time.process_time()
        plain_rows(session, rows)
        spent["nasforge_candidates"] = (spent.get("nasforge_candidates", 0.0)
                                        + time.process_time() - t)

    gc.freeze()
    try:
        setattr(module, name, timed)
        if plain_rows is not None:
            rows_module._insert_rows = timed_rows
        now = datetime.now()
        t0 = time.process_time()
        for r in range(0, n, 100):
            store.add_finished(archs[r:r + 100], archs[r:r + 100], values[r:r + 100],
                               r // 100, now)
        t1 = time.process_time()
        store.flush(("nasforge_state:0", {"step": n // 100, "state": {}}))
        t2 = time.process_time()
    finally:
        setattr(module, name, plain)
        if plain_rows is not None:
            rows_module._insert_rows = plain_rows
        gc.unfreeze()
    return {"add_us": (t1 - t0) / n * 1e6, "write_us": (t2 - t1) / n * 1e6,
            "insert_us": {k: v / n * 1e6 for k, v in spent.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=12_000)
    ap.add_argument("--space", default="ofa_mbv3_w12")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [one(args.space, args.n, seed, Path(tmp)) for seed in range(args.repeats)]
    tables = sorted({k for r in runs for k in r["insert_us"]})
    print(json.dumps({
        "space": args.space, "n": args.n, "repeats": args.repeats,
        "add_us": round(statistics.median(r["add_us"] for r in runs), 2),
        "write_us": round(statistics.median(r["write_us"] for r in runs), 2),
        "insert_us": {t: round(statistics.median(r["insert_us"].get(t, 0.0) for r in runs), 2)
                      for t in tables},
    }, indent=2))


if __name__ == "__main__":
    main()
