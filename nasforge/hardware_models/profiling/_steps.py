"""The steps of ``nas profile`` (:func:`~nasforge.hardware_models.profiling.profile_device`).

1. :func:`plan_blocks`: the distinct blocks of ``n_archs`` random architectures of the space
   plus its min and max (:func:`~nasforge.hardware_models.profiling._adaptive.candidate_pool`);
2. :func:`measure_block_set`: a seed set of them, then adaptive rounds (a bootstrap ensemble
   picks the ``batch`` candidates where it is least sure) until ``budget`` blocks are measured
   or ``time_budget_s`` has passed; each block built with
   :func:`~nasforge.supernet.static.build_block` and timed by the runner
   (:mod:`~nasforge.hardware_models.profiling.base`, protocol in
   :mod:`~nasforge.hardware_models.profiling._protocol`);
3. :func:`measure_network_set`: ``n_networks`` whole networks (:func:`network_archs`)
   measured end to end;
4. :func:`fit_regressors`: the per-family regressors on the whole table (held-out error).

Step 5, the profile itself, is :func:`~nasforge.hardware_models.profiling._write.write_profile`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.hardware_models._fit import holdout_split
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models._local import REGRESSORS_DIR
from nasforge.hardware_models._lut import CSV_HEADER
from nasforge.hardware_models._lut import LatencyEntry
from nasforge.hardware_models._profile import PROFILE_FILE
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.hardware_models.profiling._adaptive import BASE
from nasforge.hardware_models.profiling._adaptive import MIN_TREE_ROWS
from nasforge.hardware_models.profiling._adaptive import CandidatePool
from nasforge.hardware_models.profiling._adaptive import candidate_pool
from nasforge.hardware_models.profiling._adaptive import next_batch
from nasforge.hardware_models.profiling._adaptive import seed_set
from nasforge.hardware_models.profiling._folder import NET_HEADER
from nasforge.hardware_models.profiling._folder import append_rows
from nasforge.hardware_models.profiling._folder import network_key
from nasforge.hardware_models.profiling._folder import read_networks
from nasforge.hardware_models.profiling._folder import read_partial_table
from nasforge.progress import ProgressBar
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from nasforge.hardware_models.profiling.base import Runner
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "BlockPlan",
    "fit_regressors",
    "fusion_networks",
    "measure_block_set",
    "measure_network_set",
    "measure_networks",
    "network_archs",
    "plan_blocks",
]

logger = logging.getLogger(__name__)

CHUNK = 8  # blocks timed together (interleaved)
NET_CHUNK = 4  # whole networks timed together


def _measure_blocks(runner: Runner, keys: Sequence[str], blocks: dict[str, Any], path: Path,
                    table: dict[str, LatencyEntry], advance: Callable[[int], None]) -> None:
    from nasforge.supernet.static import build_block

    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        items = [(build_block(blocks[k]), (1, blocks[k].cin, blocks[k].hw_in, blocks[k].hw_in))
                 for k in chunk]
        got = runner.measure(items, keys=chunk)
        rows = []
        for k, m in zip(chunk, got, strict=True):
            table[k] = LatencyEntry(m.ms, m.std, m.count)
            rows.append([k, repr(m.ms), "" if math.isnan(m.std) else repr(m.std), m.count])
        append_rows(path, CSV_HEADER, rows)
        advance(len(chunk))


#: Tag of the random stream the profile's whole networks come from: never the stream
#: ``nas hw validate`` samples its subnets from (``default_rng(seed)``), so that a fusion rule is
#: not judged on the networks it was fitted to (with ``default_rng(seed + 1)``, a profile of seed
#: 0 and a validation of seed 1 shared 18 of 50 networks).
NETWORK_STREAM = 0x6E6574


def network_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    rng = np.random.default_rng([seed, NETWORK_STREAM])
    base = [space.min_arch(), space.max_arch()] if n >= 2 else []
    return [*base, *(space.sample(rng) for _ in range(n - len(base)))]


def fusion_networks(folder: Path, space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """The whole networks the device's fusion rule is fitted to.

    One rule per runtime (DESIGN.md, "a fusion rule per runtime"): profiling a second space into
    a device folder refits it on the networks of every space profiled there, not on the newest
    space's alone. Each space contributes the networks :func:`profile_device` draws for it with
    this ``n`` and ``seed``; networks of other draws that ``networks.csv`` may still hold (an
    older seed) are left out.

    Args:
        folder: the device folder (its ``profile.json`` names the spaces profiled so far).
        space: the space being profiled now (first in the result).
        n: networks per space.
        seed: the profile's seed.
    """
    others: list[str] = []
    if (folder / PROFILE_FILE).is_file():
        others = [s for s in DeviceProfile.load(folder).spaces if s != space.name]
    return [a for sp in (space, *map(get_space, others)) for a in network_archs(sp, n, seed)]


def measure_networks(runner: Runner, space: SearchSpace, archs: Sequence[Arch],
                     advance: Callable[[int], None] | None = None,
                     group: int = NET_CHUNK,
                     bases: list[str] | None = None) -> list[tuple[float, float]]:
    """End-to-end ``(ms, std)`` of each architecture's static model, ``group`` interleaved.

    Args:
        runner: the device's runner.
        space: the architectures' space.
        archs: what to measure.
        advance: called with the number of networks done after each group.
        group: networks timed together (interleaved).
        bases: if given, extended with each measurement's basis (``wall-undisturbed``,
            ``cpu-fallback``, ...;
            :attr:`~nasforge.hardware_models.profiling._protocol.Measurement.basis`).
    """
    from nasforge.supernet.static import build_static

    out: list[tuple[float, float]] = []
    for i in range(0, len(archs), group):
        chunk = archs[i:i + group]
        items = []
        for a in chunk:
            first = space.blocks(a)[0]
            items.append((build_static(space, a), (1, first.cin, first.hw_in, first.hw_in)))
        keys = [network_key(space.name, a) for a in chunk]
        got = runner.measure(items, keys=keys)
        out.extend((m.ms, m.std) for m in got)
        if bases is not None:
            bases.extend(m.basis for m in got)
        del items
        if advance is not None:
            advance(len(chunk))
    return out



def _holdout(table: dict[str, float], seed: int) -> dict[str, Any]:
    held = holdout_split(list(table), 0.2, np.random.default_rng(seed))
    if len(held) < 3:
        return {}
    reg = BlockRegressors.fit({k: v for k, v in table.items() if k not in held}, seed=seed,
                              min_tree_rows=MIN_TREE_ROWS, base=BASE)
    hk = sorted(held)
    rel = np.abs(reg.predict(hk) / np.asarray([table[k] for k in hk]) - 1.0)
    return {"frac": 0.2, "n_keys": len(hk), "median_rel_err": float(np.median(rel)),
            "p90_rel_err": float(np.quantile(rel, 0.9))}


# ---- the steps -------------------------------------------------------------------------------
@dataclass
class BlockPlan:
    """Which blocks of a space to measure.

    Attributes:
        space: the space.
        pool: the candidates.
        budget: blocks of the space to have measured (at least one per kind).
        rng: the generator of the seed set and the adaptive rounds (seeded, continues the
            candidates' draws).
    """

    space: SearchSpace
    pool: CandidatePool
    budget: int
    rng: np.random.Generator

    def done(self, table: dict[str, LatencyEntry]) -> int:
        """Candidates already measured."""
        return sum(k in table for k in self.pool.keys)


def plan_blocks(space: SearchSpace, n_archs: int, budget: int, seed: int) -> BlockPlan:
    """Step 1: the candidates of ``space`` and the budget clipped to them."""
    rng = np.random.default_rng(seed)
    pool = candidate_pool(space, n_archs, rng)
    n_kinds = len({key_family(k) for k in pool.keys})
    return BlockPlan(space, pool, min(max(budget, n_kinds), len(pool.keys)), rng)


def measure_block_set(runner: Runner, plan: BlockPlan, table_path: Path, *, seed_blocks: int,
                      batch: int, time_budget_s: float | None, label: str
                      ) -> dict[str, LatencyEntry]:
    """Step 2: the seed set, then adaptive rounds; rows appended to ``table_path``.

    Returns:
        The whole table (rows of earlier runs included).
    """
    table = read_partial_table(table_path)
    start = time.monotonic()
    with ProgressBar(f"{label}: {plan.space.name} blocks", total=plan.budget,
                     completed=plan.done(table)) as bar:
        def advance(_: int) -> None:
            bar.update(plan.done(table))

        todo = [k for k in seed_set(plan.pool, min(seed_blocks, plan.budget), plan.rng)
                if k not in table]
        _measure_blocks(runner, todo, plan.pool.blocks, table_path, table, advance)
        while plan.done(table) < plan.budget:
            if time_budget_s is not None and time.monotonic() - start > time_budget_s:
                logger.info("%s: time budget of %.0f s spent after %d blocks", label,
                            time_budget_s, plan.done(table))
                break
            means = {k: e.mean for k, e in table.items()}
            keys = next_batch(plan.pool, means, min(batch, plan.budget - plan.done(table)),
                              plan.rng)
            if not keys:
                break
            _measure_blocks(runner, keys, plan.pool.blocks, table_path, table, advance)
    return table


def measure_network_set(runner: Runner, space: SearchSpace, archs: Sequence[Arch],
                        nets_path: Path, label: str) -> dict[str, tuple[float, float]]:
    """Step 3: whole networks end to end, appended chunk by chunk to ``nets_path``.

    Returns:
        arch id -> ``(ms, std)`` for every network measured so far.
    """
    nets = read_networks(nets_path)
    todo = [a for a in archs if a.arch_id not in nets]
    if not todo:
        return nets
    with ProgressBar(f"{label}: whole networks", total=len(archs),
                     completed=len(archs) - len(todo)) as bar:
        for i in range(0, len(todo), NET_CHUNK):
            chunk = todo[i:i + NET_CHUNK]
            got = measure_networks(runner, space, chunk, bar.advance)
            for a, (ms, std) in zip(chunk, got, strict=True):
                nets[a.arch_id] = (ms, std)
            append_rows(nets_path, NET_HEADER, [[a.arch_id, space.name, repr(ms), repr(std),
                                             json.dumps(a.to_dict(), sort_keys=True)]
                                            for a, (ms, std) in zip(chunk, got, strict=True)])
    return nets


def fit_regressors(table: dict[str, LatencyEntry], folder: Path, seed: int
                   ) -> tuple[BlockRegressors, dict[str, Any]]:
    """Step 4: per-family regressors on the whole table, saved; with the held-out error."""
    means = {k: e.mean for k, e in table.items()}
    regs = BlockRegressors.fit(means, seed=seed, min_tree_rows=MIN_TREE_ROWS, base=BASE)
    regs.save(folder / REGRESSORS_DIR)
    return regs, _holdout(means, seed)
