"""Ranking agreement between two accuracy sources (``nas rank``).

Weight sharing is only useful if the supernet ranks subnets the way stand-alone training
would; the field measures it with Kendall tau and Spearman between the two accuracies of the
same subnets (e.g. "Evaluating The Search Phase of Neural Architecture Search",
https://arxiv.org/abs/1902.08142). :func:`rank_agreement` scores ``n`` subnets, stratified by
FLOPs, with two sources and reports Kendall tau, Spearman and the top-k overlap; :func:`plot_rank`
draws the scatter plot.

Sources (``--a`` / ``--b``), resolved by :func:`resolve_source`:

* ``supernet``: BN-recalibrated top-1 of the inherited subnet, each at its own resolution
  (needs a supernet checkpoint; ``quick`` for the embedded quick supernet);
* ``standalone``: each subnet trained from scratch for ``steps`` steps on the data
  (:class:`~nasforge.strategies.objectives.StandaloneAccuracy`);
* ``csv:PATH:COLUMN``: a column of a tabular benchmark CSV (``arch_str`` rows);
* ``zc:NAME``: a zero-cost proxy of the randomly initialised subnet (:mod:`nasforge.proxies`);
* ``predictor:DIR``: a saved accuracy predictor;
* ``report:PATH:a`` (or ``:b``): one side of a saved ``nas rank --json`` report, so that an
  expensive reference (stand-alone training) is computed once and compared with several
  supernets; the subnets must be the report's (same space, ``n`` and seed).

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
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import IncompatibleComponentsError
from nasforge.errors import InvalidInputError
from nasforge.predictors.metrics import kendall_tau
from nasforge.predictors.metrics import spearman
from nasforge.predictors.metrics import top_k_precision
from nasforge.strategies.objectives import Objective

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "SOURCE_KINDS",
    "RankReport",
    "plot_rank",
    "rank_agreement",
    "resolve_source",
    "stratified_archs",
]

logger = logging.getLogger(__name__)

#: The kinds of accuracy source ``--a`` / ``--b`` take.
SOURCE_KINDS = ("supernet", "standalone", "csv:PATH:COLUMN", "zc:NAME", "predictor:DIR",
                "report:PATH:a|b")

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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what ``nas rank --json`` prints)."""
        return {"a": self.a, "b": self.b, "n": self.n,
                "kendall_tau": round(self.kendall_tau, 4), "spearman": round(self.spearman, 4),
                "top_k": self.top_k, "top_k_overlap": round(self.top_k_overlap, 4),
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
                "provenance": self.provenance,
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
        a: the first accuracy source (anything with ``evaluate_many``; larger is better).
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
    # an undefined score (NaN: a proxy of a network whose output ignores the input) ranks last
    ra, rb = (np.where(np.isnan(v), -np.inf, v) for v in (va, vb))
    k = max(1, min(top_k, len(chosen)))
    prov = {}
    for src in (a, b):
        get = getattr(src, "provenance", None)
        prov[src.name] = dict(get()) if callable(get) else {}
    return RankReport(a.name, b.name, len(chosen), kendall_tau(rb, ra), spearman(rb, ra), k,
                      top_k_precision(rb, ra, k), [x.arch_id for x in chosen],
                      [space.flops(x) / 1e6 for x in chosen], va.tolist(), vb.tolist(),
                      seconds, prov, [x.to_dict() for x in chosen])


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


def resolve_source(spec: str, space: SearchSpace, *, supernet: str | None = None,
                   data: str | None = None, steps: int = 100, seed: int = 0,
                   accelerator: str = "cpu", progress: bool = False) -> Objective:
    """The accuracy source named ``spec`` (see the module docstring for the kinds).

    Args:
        spec: ``supernet``, ``standalone``, ``csv:PATH:COLUMN``, ``zc:NAME`` or
            ``predictor:DIR``.
        space: the search space.
        supernet: checkpoint path (or ``quick``) for ``supernet``.
        data: dataset spec of ``standalone`` and of data proxies (default: the supernet's).
        steps: stand-alone training steps.
        seed: seed of initialisation, proxy batches and data order.
        accelerator: compute device.
        progress: report progress bars.

    Raises:
        InvalidInputError: an unknown kind, or a kind without what it needs.
        IncompatibleComponentsError: a tabular space given a network source.
        UnknownNameError: an unknown proxy.
    """
    from nasforge.strategies.objectives import ProxyObjective
    from nasforge.strategies.objectives._proxy import PROXY_PREFIX

    if spec.startswith(PROXY_PREFIX):
        return ProxyObjective.from_name(spec, space, seed=seed,
                                        data=data or _data_of(supernet)[0])
    if spec.startswith("csv:"):
        path, sep, column = spec[len("csv:"):].rpartition(":")
        if not sep or not path or not column:
            raise InvalidInputError(f"a benchmark source is csv:PATH:COLUMN, got {spec!r}")
        from nasforge.strategies import TabularBenchmark

        return TabularBenchmark.from_csv(path, column, space, direction="maximize")
    if spec.startswith("report:"):
        return _report_source(spec)
    if spec.startswith("predictor:"):
        from nasforge.predictors import BasePredictor
        from nasforge.strategies import PredictorObjective

        return PredictorObjective(BasePredictor.load(spec[len("predictor:"):]), space, name=spec)
    if spec in ("supernet", "standalone") and not space.has_model:
        raise IncompatibleComponentsError(
            f"source {spec!r} needs a network, but space {space.name!r} is tabular; use "
            "csv:PATH:COLUMN or predictor:DIR, or a network space")
    if spec == "supernet":
        return _supernet_source(space, supernet, seed, accelerator, progress)
    if spec == "standalone":
        from nasforge.data import open_data
        from nasforge.strategies.objectives import StandaloneAccuracy

        own, size, scale = _data_of(supernet)
        if data is None and own is None:
            raise InvalidInputError("source 'standalone' trains on --data; pass --data (e.g. "
                                    "--data mnist5k) or a --supernet whose data it reuses")
        d = open_data(str(data or own), size, seed, resolution_scale=scale)
        return StandaloneAccuracy(space, d, steps=steps, seed=seed, device=accelerator,
                                  progress=progress)
    raise InvalidInputError(f"unknown accuracy source {spec!r}; one of: {', '.join(SOURCE_KINDS)}")


def _checkpoint(supernet: str | None, space: SearchSpace | None = None,
                accelerator: str = "cpu", progress: bool = False) -> Path | None:
    if supernet is None:
        return None
    if supernet == "quick":
        if space is None:
            return None
        from nasforge._paths import cache_dir
        from nasforge.supernet import train_quick_supernet

        return train_quick_supernet(space, cache_dir(), progress=progress, device=accelerator)
    return Path(supernet)


class _ReportColumn(Objective):
    """One side of a saved ``nas rank --json`` report, looked up by ``arch_id``."""

    def __init__(self, spec: str, path: Path, side: str) -> None:
        import json

        super().__init__(spec, "maximize", cheap=True)
        rep = json.loads(path.read_text())
        self.path = path
        self.values = {s["arch_id"]: float(s[side]) for s in rep["subnets"]}
        self._prov = {"kind": "saved nas rank report", "path": str(path), "source": rep[side],
                      **rep.get("provenance", {}).get(rep[side], {})}

    def evaluate_many(self, archs: Sequence[Arch]) -> np.ndarray:
        missing = [a.arch_id for a in archs if a.arch_id not in self.values]
        if missing:
            raise InvalidInputError(f"{len(missing)} subnets (e.g. {missing[0]}) are not in "
                                    f"report {self.path}; use the report's space, --n and --seed")
        return np.array([self.values[a.arch_id] for a in archs])

    def provenance(self) -> dict[str, Any]:
        return dict(self._prov)


def _report_source(spec: str) -> Objective:
    path, sep, side = spec[len("report:"):].rpartition(":")
    if not sep or side not in ("a", "b") or not Path(path).is_file():
        raise InvalidInputError(f"a report source is report:PATH:a or report:PATH:b with PATH a "
                                f"nas rank --json file, got {spec!r}")
    return _ReportColumn(spec, Path(path), side)


def _data_of(supernet: str | None) -> tuple[str | None, int, float | None]:
    """(dataset spec, input size, resolution scale) the supernet was trained with; (None, 32,
    None) without one. Stand-alone training uses the same size and scale, so that both sources
    see each subnet at the same pixels."""
    if supernet is None:
        return None, 32, None
    if supernet == "quick":
        from nasforge.supernet.training.quick import DEFAULT_RECIPE

        t = DEFAULT_RECIPE.train
        return str(DEFAULT_RECIPE.data), t.input_size, t.resolution_scale
    from nasforge.supernet.checkpoint import RunConfig
    from nasforge.supernet.checkpoint import read_checkpoint

    run = RunConfig.from_checkpoint(read_checkpoint(Path(supernet)))
    return str(run.data), run.input_size, run.resolution_scale


def _supernet_source(space: SearchSpace, supernet: str | None, seed: int, accelerator: str,
                     progress: bool) -> Objective:
    if supernet is None:
        raise InvalidInputError("source 'supernet' needs --supernet CKPT (or --supernet quick "
                                "for the embedded quick supernet)")
    from nasforge.strategies.objectives import SupernetAccuracyObjective
    from nasforge.supernet import load_supernet
    from nasforge.supernet.checkpoint import RunConfig

    path = _checkpoint(supernet, space, accelerator, progress)
    model, state = load_supernet(Path(str(path)), expect_space=space.name)
    run = RunConfig.from_checkpoint(state)
    return SupernetAccuracyObjective(model, run.open_data(), recal_batches=8, seed=seed,
                                     device=accelerator, checkpoint=path, name="supernet")
