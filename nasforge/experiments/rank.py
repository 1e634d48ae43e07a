"""Ranking agreement between two accuracy sources (``nas rank``).

Weight sharing is only useful if the supernet ranks subnets the way stand-alone training
would; the field measures it with Kendall tau and Spearman between the two accuracies of the
same subnets (e.g. "Evaluating The Search Phase of Neural Architecture Search",
https://arxiv.org/abs/1902.08142). :func:`rank_agreement` scores ``n`` subnets, stratified by
FLOPs, with two sources and reports Kendall tau, Spearman and the top-k overlap; :func:`plot_rank`
draws the scatter plot.

Sources (``--a`` / ``--b``) are accuracy specs, resolved by :func:`nasforge.evaluation.resolve`
(the resolver of ``nas search`` too): ``supernet`` (the ``--supernet`` checkpoint, or
``quick``), ``supernet:PATH``, ``quick``, ``standalone`` (each subnet trained from scratch for
``steps`` steps), ``csv:PATH:COLUMN``, ``zc:NAME``, ``predictor:DIR`` and ``report:PATH:a|b``
(one side of a saved ``nas rank --json`` report, so that an expensive reference is computed
once and compared with several supernets). :func:`run_rank` is the one call of ``nas rank``:
a :class:`RankConfig` in, a :class:`RankReport` out.

Example:
    >>> import numpy as np
    >>> from nasforge.search_spaces import get_space
    >>> from nasforge.strategies import FlopsObjective, ParamsObjective
    >>> space = get_space("nasbench201_net")
    >>> a, b = FlopsObjective(space, name="flops"), ParamsObjective(space, name="params")
    >>> r = rank_agreement(space, a, b, n=8, seed=0)
    >>> r.n, r.kendall_tau > 0.5
    (8, True)
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.evaluation import SOURCE_KINDS
from nasforge.evaluation import EvalSettings
from nasforge.evaluation import resolve
from nasforge.predictors.metrics import kendall_tau
from nasforge.predictors.metrics import spearman
from nasforge.predictors.metrics import top_k_precision
from nasforge.strategies.objectives import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "RankConfig",
    "RankReport",
    "plot_rank",
    "rank_agreement",
    "run_rank",
    "stratified_archs",
]

logger = logging.getLogger(__name__)

#: candidates drawn per requested subnet before stratifying by FLOPs
_POOL_FACTOR = 20


@dataclass(frozen=True)
class RankReport:
    """Agreement between two accuracy sources over the same subnets.

    Attributes:
        a: name of the first source.
        b: name of the second source.
        n: subnets compared.
        kendall_tau: Kendall tau-b of the two scores.
        spearman: Spearman rank correlation.
        top_k: k of the top-k overlap.
        top_k_overlap: share of b's top-k subnets that a's top-k recovers, in [0, 1].
        arch_ids: the subnets, by ascending FLOPs.
        mflops: their FLOPs (MACs), in millions.
        a_values: scores of source a.
        b_values: scores of source b.
        seconds: wall time per source.
        provenance: what produced each source's scores.
        archs: the subnets as ``Arch.to_dict()`` (so a report can be re-scored).
        directions: each source's direction (``maximize``; ``minimize`` for a loss), which
            the ranks read and a ``report:`` source restores.
    """

    a: str
    b: str
    n: int
    kendall_tau: float
    spearman: float
    top_k: int
    top_k_overlap: float
    arch_ids: list[str]
    mflops: list[float]
    a_values: list[float]
    b_values: list[float]
    seconds: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    archs: list[dict[str, Any]] = field(default_factory=list)
    directions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``nas rank --json`` prints)."""
        return {"a": self.a, "b": self.b, "n": self.n,
                "kendall_tau": round(self.kendall_tau, 4), "spearman": round(self.spearman, 4),
                "top_k": self.top_k, "top_k_overlap": round(self.top_k_overlap, 4),
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "provenance": self.provenance, "directions": self.directions,
                "subnets": [{"arch_id": i, "mflops": round(f, 3), "a": a, "b": b, "arch": d}
                            for i, f, a, b, d in zip(self.arch_ids, self.mflops, self.a_values,
                                                     self.b_values, self._arch_dicts(),
                                                     strict=True)]}

    def _arch_dicts(self) -> list[dict[str, Any]]:
        return self.archs if self.archs else [{} for _ in self.arch_ids]


def stratified_archs(space: SearchSpace, n: int, rng: np.random.Generator) -> list[Arch]:
    """``n`` distinct architectures spread over the space's FLOPs range.

    Draws ``20 * n`` random architectures plus the smallest and the largest, sorts the
    distinct ones by FLOPs, cuts them into ``n`` strata of equal count and takes one at random
    from each; returned by ascending FLOPs.

    Raises:
        InvalidInputError: ``n < 2``, or the space has fewer than ``n`` distinct architectures
            in the pool.
    """
    if n < 2:
        raise InvalidInputError(f"a rank correlation needs n >= 2 subnets, got {n=}; pass "
                                "--n 2 or more")
    pool: dict[str, Arch] = {}
    for arch in [space.min_arch(), space.max_arch(),
                 *(space.sample(rng) for _ in range(_POOL_FACTOR * n))]:
        pool.setdefault(arch.arch_id, arch)
    if len(pool) < n:
        raise InvalidInputError(f"space {space.name!r} gave {len(pool)} distinct architectures "
                                f"in {_POOL_FACTOR * n + 2} draws, fewer than n = {n}; lower --n")
    archs = sorted(pool.values(), key=lambda a: (space.flops(a), a.arch_id))
    edges = np.linspace(0, len(archs), n + 1).round().astype(int)
    return [archs[int(rng.integers(lo, hi))] for lo, hi in itertools.pairwise(edges)]


def rank_agreement(space: SearchSpace, a: Objective, b: Objective, *, n: int = 20,
                   seed: int = 0, top_k: int = 5, archs: Sequence[Arch] | None = None
                   ) -> RankReport:
    """Score ``n`` FLOPs-stratified subnets with sources ``a`` and ``b`` and compare the ranks.

    Args:
        space: the search space.
        a: the first accuracy source (anything with ``evaluate_many``; larger is better
            unless its ``direction`` is ``minimize``, as a language model's loss).
        b: the second (the reference for the top-k overlap).
        n: subnets (ignored when ``archs`` is given).
        seed: seed of the subnet draw.
        top_k: k of the top-k overlap (clipped to ``n``).
        archs: the subnets to compare instead of a stratified draw.

    Raises:
        InvalidInputError: two sources of the same name; fewer than 2 subnets.
    """
    if a.name == b.name:
        raise InvalidInputError(f"nas rank compares two different accuracy sources, got "
                                f"{a.name!r} twice; pass another --b ({', '.join(SOURCE_KINDS)})")
    chosen = list(archs) if archs is not None else stratified_archs(
        space, n, np.random.default_rng(seed))
    if len(chosen) < 2:
        raise InvalidInputError(f"a rank correlation needs 2 or more subnets, got {len(chosen)}")
    values, seconds = {}, {}
    for src in (a, b):
        t0 = time.perf_counter()
        values[src.name] = np.asarray(src.evaluate_many(chosen), dtype=np.float64)
        seconds[src.name] = time.perf_counter() - t0
        logger.info("%s: %d subnets scored in %.1f s", src.name, len(chosen), seconds[src.name])
    va, vb = values[a.name], values[b.name]
    # ranked larger-is-better (a loss, minimised, is negated: its direction's sign); an
    # undefined score (NaN: a proxy of a network whose output ignores the input) ranks last
    ra, rb = (np.where(np.isnan(v), -np.inf, getattr(src, "sign", 1.0) * v)
              for v, src in ((va, a), (vb, b)))
    k = max(1, min(top_k, len(chosen)))
    prov = {}
    for src in (a, b):
        get = getattr(src, "provenance", None)
        prov[src.name] = dict(get()) if callable(get) else {}
    return RankReport(a.name, b.name, len(chosen), kendall_tau(rb, ra), spearman(rb, ra), k,
                      top_k_precision(rb, ra, k), [x.arch_id for x in chosen],
                      [space.flops(x) / 1e6 for x in chosen], va.tolist(), vb.tolist(),
                      seconds, prov, [x.to_dict() for x in chosen],
                      {src.name: str(getattr(src, "direction", "maximize")) for src in (a, b)})


def plot_rank(report: RankReport, path: str | Path) -> Path:
    """Scatter plot (PNG) of source a against source b, with tau and Spearman in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 4.2), dpi=120)
    pts = ax.scatter(report.b_values, report.a_values, c=report.mflops, cmap="viridis", s=28)
    fig.colorbar(pts, ax=ax, label="MFLOPs (MACs)")
    ax.set_xlabel(report.b)
    ax.set_ylabel(report.a)
    ax.set_title(f"{report.a} vs {report.b}: n={report.n}, Kendall tau {report.kendall_tau:.3f}"
                 f"\nSpearman {report.spearman:.3f}, top-{report.top_k} overlap "
                 f"{report.top_k_overlap:.2f}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


@dataclass(frozen=True)
class RankConfig:
    """What ``nas rank`` compares, and how.

    Attributes:
        space: search space name.
        a: the first accuracy spec.
        b: the second (the reference of the top-k overlap).
        supernet: checkpoint (or ``quick``) of a bare ``supernet`` spec, whose data
            ``standalone`` and data proxies reuse.
        data: dataset of ``standalone`` and of data proxies (default: the supernet's).
        n: subnets, stratified by FLOPs.
        steps: stand-alone training steps.
        top_k: k of the top-k overlap.
        seed: seed of the subnets, initialisation and data order.
        settings: the evaluation knobs (BN recalibration on 8 batches).
        threads: torch intra-op threads for the run (None: torch's).
        plot: write a scatter plot (PNG) here, or None.
    """

    space: str
    a: str
    b: str
    supernet: str | None = None
    data: str | None = None
    n: int = 20
    steps: int = 100
    top_k: int = 5
    seed: int = 0
    settings: EvalSettings = field(default_factory=lambda: EvalSettings(recal_batches=8))
    threads: int | None = None
    plot: Path | None = None


def run_rank(cfg: RankConfig, *, progress: bool = True) -> RankReport:
    """Resolve ``cfg.a`` and ``cfg.b`` (:func:`nasforge.evaluation.resolve`), score the
    subnets with both, compare the ranks, and write the plot when asked.

    Raises:
        InvalidInputError: the same spec twice, or a bad spec.
        UnknownNameError: an unknown space, scheme or proxy.
    """
    if cfg.a == cfg.b:
        raise InvalidInputError(f"nas rank compares two different accuracy sources, got "
                                f"{cfg.a!r} for both --a and --b; change one of them")
    from nasforge.experiments.export.checks import torch_threads
    from nasforge.search_spaces import get_space

    space = get_space(cfg.space)
    settings = replace(cfg.settings, accelerator=cfg.settings.device())
    with torch_threads(cfg.threads):
        # named by their specs: two specs of one column (two csv sources) stay apart
        src_a, src_b = (resolve(s, space, name=s, seed=cfg.seed, settings=settings,
                                data=cfg.data, supernet=cfg.supernet, steps=cfg.steps,
                                progress=progress) for s in (cfg.a, cfg.b))
        report = rank_agreement(space, src_a, src_b, n=cfg.n, seed=cfg.seed, top_k=cfg.top_k)
    if cfg.plot is not None:
        plot_rank(report, cfg.plot)
    return report
