"""Adaptive block sampling: measure a seed set, fit, measure where the regressor is least sure.

nn-Meter: Towards Accurate Latency Prediction of Deep-Learning Model Inference on Diverse Edge
Devices, https://doi.org/10.1145/3458864.3467882 (its adaptive data sampler).

The candidates are the distinct blocks (block-shape keys) of many random architectures of a
space plus its smallest and largest, each weighted by how often it occurs per architecture. The
seed set takes every block of the min and max architectures, a few of each block kind, and fills
up with random candidates drawn in proportion to their frequency. After that, each round fits a
small bootstrap ensemble of the per-family regressors on what is measured and picks the
unmeasured candidates with the largest expected contribution to a network's error:
``frequency x predicted ms x ensemble spread of log(ms)``.
"""

from __future__ import annotations

from collections import Counter
from collections import defaultdict
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nasforge.hardware_models._blockkeys import block_key_scheme
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.search_spaces.base import SearchSpace
from nasforge.search_spaces.block import Block

__all__ = ["CandidatePool", "candidate_pool", "next_batch", "seed_set", "uncertainty"]

#: families with fewer measured keys than this get the log-linear regressor only.
MIN_TREE_ROWS = 30
#: regressor base of profiled devices (see :mod:`~nasforge.hardware_models._regressor`).
BASE = "additive"


@dataclass
class CandidatePool:
    """The blocks a space produces, as far as a sample of architectures shows.

    Attributes:
        keys: distinct block keys, in first-seen order.
        blocks: key -> a block with that key.
        freq: key -> mean occurrences per sampled architecture.
        extremes: keys of the min and max architectures.
    """

    keys: list[str]
    blocks: dict[str, Block]
    freq: dict[str, float]
    extremes: list[str]


def candidate_pool(space: SearchSpace, n_archs: int, rng: np.random.Generator) -> CandidatePool:
    """Distinct blocks of ``n_archs`` random architectures of ``space`` plus min and max."""
    scheme = block_key_scheme(space.name)
    counts: Counter[str] = Counter()
    blocks: dict[str, Block] = {}
    extremes: list[str] = []
    archs = [space.min_arch(), space.max_arch(), *(space.sample(rng) for _ in range(n_archs))]
    for i, a in enumerate(archs):
        bl = space.blocks(a)
        keys = scheme.keys(bl)
        for k, b in zip(keys, bl, strict=True):
            blocks.setdefault(k, b)
            if i >= 2:
                counts[k] += 1
        if i < 2:
            extremes.extend(k for k in keys if k not in extremes)
    n = max(n_archs, 1)
    return CandidatePool(list(blocks), blocks, {k: counts[k] / n for k in blocks}, extremes)


def seed_set(pool: CandidatePool, n: int, rng: np.random.Generator,
             per_family: int = 8) -> list[str]:
    """The seed keys: one block of each kind, the min/max blocks, ``per_family`` of each kind,
    then random blocks drawn by frequency.

    Returns ``max(n, number of kinds)`` keys at most (every kind needs one measured block to get
    a regressor), no duplicates.
    """
    by: dict[str, list[str]] = defaultdict(list)
    for k in pool.keys:
        by[key_family(k)].append(k)
    out: dict[str, None] = {}
    for fam in sorted(by):  # the first-seen block of each kind (the min arch's, usually)
        out[by[fam][0]] = None
    n = max(n, len(out))
    out.update(dict.fromkeys(k for k in pool.extremes[: max(n - len(out), 0)] if k not in out))
    for fam in sorted(by):
        ks = [k for k in by[fam] if k not in out]
        take = min(per_family, len(ks))
        for i in rng.permutation(len(ks))[:take].tolist():
            if len(out) < n:
                out[ks[i]] = None
    rest = [k for k in pool.keys if k not in out]
    if rest and len(out) < n:
        p = np.asarray([pool.freq[k] for k in rest]) + 1e-3
        pick = rng.choice(len(rest), size=min(n - len(out), len(rest)), replace=False,
                          p=p / p.sum())
        out.update(dict.fromkeys(rest[i] for i in pick.tolist()))
    return list(out)


def uncertainty(measured: Mapping[str, float], keys: Sequence[str], rng: np.random.Generator,
                n_models: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Ensemble prediction of ``keys``: (mean ms, spread of log ms), each of shape (len(keys),).

    Each member is :class:`BlockRegressors` fitted on a bootstrap resample of ``measured``
    (every measured family stays present). Keys of a family nothing measured get
    ``inf`` spread.
    """
    fams = {key_family(k) for k in measured}
    have = [i for i, k in enumerate(keys) if key_family(k) in fams]
    logs = np.zeros((n_models, len(have)))
    mk = sorted(measured)
    for m in range(n_models):
        idx = rng.integers(0, len(mk), size=len(mk))
        sample: dict[str, float] = {mk[i]: measured[mk[i]] for i in idx.tolist()}
        present = {key_family(s) for s in sample}
        for k in mk:  # keep every family present
            if key_family(k) not in present:
                sample[k] = measured[k]
                present.add(key_family(k))
        reg = BlockRegressors.fit(sample, seed=int(rng.integers(1 << 30)),
                                  min_tree_rows=MIN_TREE_ROWS, base=BASE)
        logs[m] = np.log(reg.predict([keys[i] for i in have]))
    mean = np.full(len(keys), np.nan)
    spread = np.full(len(keys), np.inf)
    mean[have] = np.exp(logs.mean(axis=0))
    spread[have] = logs.std(axis=0)
    return mean, spread


def next_batch(pool: CandidatePool, measured: Mapping[str, float], size: int,
               rng: np.random.Generator, n_models: int = 4) -> list[str]:
    """The ``size`` unmeasured candidates with the largest frequency x ms x log-spread."""
    todo = [k for k in pool.keys if k not in measured]
    if not todo or size <= 0:
        return []
    mean, spread = uncertainty(measured, todo, rng, n_models)
    fallback = np.nanmedian(mean) if np.isfinite(mean).any() else 1.0
    ms = np.where(np.isfinite(mean), mean, fallback)
    score = np.asarray([pool.freq[k] + 1e-3 for k in todo]) * ms * spread
    order = np.argsort(-score, kind="stable")[:size]
    return [todo[i] for i in order.tolist()]
