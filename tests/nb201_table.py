"""A generated NAS-Bench-201 table for the tests of behaviour: every cell, the real table's
columns and dtypes, made-up figures.

The reference table ``../shared/data/nb201_dev/nb201_dev.csv`` (measured data that is not part of
the repository) is read only by the fidelity checks. Everything else runs on this table: 15,625
rows, one per cell, in a seeded order, with the columns ``index, arch_str`` (int, str), six
top-1 % accuracies (cifar10 / cifar100 / ImageNet16-120, val and test) and two latencies in ms
(``pixel3_ms``, ``raspi4_ms``), all float64.

The figures are a seeded function of the cell's own FLOPs and parameter counts (the space's,
:meth:`NB201Space.flops` / :meth:`NB201Space.params`, which add up edge by edge) and of its live
edges, so the table behaves like the real one where the tests rely on it: bigger cells are
more accurate and slower (a Pareto front exists), degenerate cells (no input-to-output path)
sit near chance accuracy with near-zero latency (below 0.1 ms, as in the measured table), and
every accuracy lies in ``[0, 100]``, every latency is positive.

    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> with tempfile.TemporaryDirectory() as d:
    ...     t = pd.read_csv(write_nb201_table(Path(d) / "t.csv"))
    >>> t.shape, list(t.columns[:3])
    ((15625, 10), ['index', 'arch_str', 'cifar10_val'])
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

from nasforge.search_spaces import get_space
from nasforge.search_spaces._nasbench201_cell import NB201_OPS
from nasforge.search_spaces._nasbench201_cell import NB201_PATHS
from nasforge.search_spaces._nasbench201_cell import NB201Arch

__all__ = ["COLUMNS", "nb201_frame", "write_nb201_table"]

#: The reference table's columns, in its order.
COLUMNS = ("index", "arch_str", "cifar10_val", "cifar10_test", "cifar100_val", "cifar100_test",
           "imagenet16_val", "imagenet16_test", "pixel3_ms", "raspi4_ms")
#: Per accuracy column: (chance level, best reachable top-1 %).
_ACCURACY = {"cifar10": (10.0, 86.0), "cifar100": (1.0, 62.0), "imagenet16": (0.83, 39.0)}
#: Per latency column: (ms per MFLOP, ms per live edge, ms of a degenerate cell).
_LATENCY = {"pixel3_ms": (0.15, 0.4, 0.004), "raspi4_ms": (0.38, 1.1, 0.012)}


def _edge_costs(measure: str) -> tuple[float, np.ndarray]:
    """(cost of the all-``none`` cell, extra cost per edge for each op) of the space's
    ``flops`` or ``params``: both add up edge by edge (every edge of a cell has one shape)."""
    space = get_space("nasbench201")
    count = getattr(space, measure)
    base = count(NB201Arch(space=space.name, edges=("none",) * 6))
    extra = [count(NB201Arch(space=space.name, edges=(op,) + ("none",) * 5)) - base
             for op in NB201_OPS]
    return float(base), np.asarray(extra, dtype=np.float64)


def _live(ops: np.ndarray) -> np.ndarray:
    """(n, 6) bool: the edges on an input-to-output path of non-``none`` edges."""
    on = ops != 0
    live = np.zeros_like(on)
    for path in NB201_PATHS:
        whole = on[:, list(path)].all(axis=1)
        for e in path:
            live[:, e] |= whole
    return live


def nb201_frame(seed: int = 0) -> pd.DataFrame:
    """The generated table (see the module docstring); the same ``seed``, the same frame."""
    rng = np.random.default_rng(seed)
    ops = np.asarray(list(itertools.product(range(len(NB201_OPS)), repeat=6)), dtype=np.int64)
    ops = ops[rng.permutation(len(ops))]
    live = _live(ops)
    flops_base, flops_edge = _edge_costs("flops")
    params_base, params_edge = _edge_costs("params")
    mflops = (flops_base + flops_edge[ops].sum(axis=1)) / 1e6
    mparams = (params_base + params_edge[ops].sum(axis=1)) / 1e6
    # capacity in [0, 1]: what the live edges compute, plus the size of the whole network
    conv = np.where(live, np.asarray([0.0, 0.15, 0.6, 1.0, 0.3])[ops], 0.0).sum(axis=1)
    size = np.log(mparams / mparams.min()) / np.log(mparams.max() / mparams.min())
    capacity = np.clip(0.55 * conv / 6 + 0.35 * size + 0.1 * live.any(axis=1), 0.0, 1.0)
    dead = ~live.any(axis=1)
    cols: dict[str, object] = {
        "index": np.arange(len(ops), dtype=np.int64),
        "arch_str": ["|" + "|+|".join(_nodes([NB201_OPS[o] for o in row])) + "|" for row in ops],
    }
    for task, (chance, best) in _ACCURACY.items():
        mean = chance + (best - chance) * (0.35 + 0.6 * capacity)
        for split, spread in (("val", 1.5), ("test", 1.2)):
            acc = mean + rng.normal(0.0, spread * best / 86.0, len(ops))
            acc = np.where(dead, chance + rng.uniform(-0.2, 0.2, len(ops)) * chance, acc)
            cols[f"{task}_{split}"] = np.clip(acc, 0.0, 100.0)
    n_live = live.sum(axis=1)
    for name, (per_mflop, per_edge, floor) in _LATENCY.items():
        ms = (per_mflop * mflops + per_edge * n_live) * rng.lognormal(0.0, 0.08, len(ops))
        cols[name] = np.where(dead, floor * rng.uniform(0.8, 1.25, len(ops)), ms)
    return pd.DataFrame(cols, columns=list(COLUMNS))


def _nodes(edges: list[str]) -> list[str]:
    """The three node groups of an ``arch_str`` (``op~j`` joined by ``|``)."""
    return ["|".join(f"{edges[k]}~{j}" for j, k in enumerate(group))
            for group in ((0,), (1, 2), (3, 4, 5))]


def write_nb201_table(path: Path, seed: int = 0) -> Path:
    """Write :func:`nb201_frame` as a CSV (the reference table's format) to ``path``.

    Returns:
        ``path``.
    """
    nb201_frame(seed).to_csv(path, index=False)
    return path
