"""Complexity-aware sampling: a random walk over FLOPs levels.

Paper: ElasticViT: Conflict-aware Supernet Training for Deploying Fast Vision Transformer on
Diverse Mobile Devices, https://arxiv.org/abs/2303.09730 (Sec. 3.2, "complexity-aware sampling").

Each step the FLOPs level moves by -1, 0 or +1 (so consecutive steps train subnets of similar
size and their gradients conflict less); the step's subnets have FLOPs in ``[T, T + bound]``,
drawn from a per-level pool that is built once by rejection sampling and kept in the sampler
state; the level's smallest subnet is added, and optionally the largest subnet first as the
in-place distillation teacher (ElasticViT distils from an external teacher instead).

FLOPs are ``space.flops(arch)`` (MACs) at the arch's deployment resolution, in MFLOPs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from collections.abc import Sequence
from types import MappingProxyType
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.training.samplers.base import BaseSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = ["ComplexityAwareSampler", "build_level_pools", "default_levels"]

_MIN_MODES = ("level", "global", "none")


def default_levels(space: SearchSpace, num_levels: int = 8) -> list[float]:
    """FLOPs levels (MFLOPs) spread geometrically over the space's useful range.

    From twice the smallest subnet's FLOPs to 3/8 of the largest's, rounded to two significant
    digits. For ``elasticvit`` (38 MFLOPs .. 3.2 GFLOPs) this gives 77, 110, 170, 250, 370, 550,
    810, 1200 — close to ElasticViT's hand-set [100, 200, 300, 400, 500, 700, 900, 1200]; for
    ``elastic_lm`` (5.3 .. 277 MFLOPs over its context) 11 .. 100. A space whose range is too
    narrow for that (HAT's: 980 .. 3000 MFLOPs) spreads the levels from 1.1x its smallest to
    0.8x its largest instead of collapsing to one level.

    Args:
        space: the search space.
        num_levels: how many levels.
    """
    f_min, f_max = (space.flops(a) / 1e6 for a in (space.min_arch(), space.max_arch()))
    lo, hi = 2.0 * f_min, 0.375 * f_max
    if hi <= 1.5 * lo:  # a narrow range (HAT's spaces: 3x from smallest to largest)
        lo, hi = 1.1 * f_min, 0.8 * f_max
    if num_levels < 1:
        raise ValueError(f"`num_levels >= 1` must hold, but got {num_levels=}")
    if hi <= lo or num_levels == 1:
        return [_round2(lo)]
    ratio = (hi / lo) ** (1.0 / (num_levels - 1))
    levels = sorted({_round2(lo * ratio**i) for i in range(num_levels)})
    return levels


def _round2(x: float) -> float:
    digits = 1 - math.floor(math.log10(abs(x))) if x > 0 else 0
    return float(round(x, digits))


def _propose(space: SearchSpace, rng: np.random.Generator, lo: Arch, hi: Arch) -> Arch:
    kind = rng.integers(3)
    if kind == 0:
        return space.sample(rng)
    base = lo if kind == 1 else hi
    return space.mutate(base, rng, float(rng.random()))


def build_level_pools(space: SearchSpace, levels: Sequence[float], bound: float, pool_size: int,
                      rng: np.random.Generator, max_proposals: int = 200_000
                      ) -> list[list[Arch]]:
    """Rejection-sample ``pool_size`` distinct archs with FLOPs in ``[T, T + bound]`` per level.

    Proposals mix uniform samples and mutations of the smallest and largest subnets, so both
    ends of the FLOPs range are reached; each proposal fills whichever level it falls into.

    Args:
        space: the search space.
        levels: level targets T in MFLOPs, ascending.
        bound: band width in MFLOPs.
        pool_size: archs wanted per level.
        rng: the source of randomness.
        max_proposals: give up after this many proposals.

    Returns:
        One list of archs per level (a level may hold fewer than ``pool_size`` archs, never 0).

    Raises:
        ValueError: a level got no arch at all (the band is outside the space's FLOPs range).
    """
    pools: list[list[Arch]] = [[] for _ in levels]
    seen: list[set[str]] = [set() for _ in levels]
    lo_arch, hi_arch = space.min_arch(), space.max_arch()
    f_lo, f_hi = space.flops(lo_arch) / 1e6, space.flops(hi_arch) / 1e6
    outside = [t for t in levels if t > f_hi or t + bound < f_lo]
    if outside:
        raise ValueError(
            f"no {space.name} subnet can have FLOPs in [T, T + {bound:g}] MFLOPs for level(s) "
            f"{', '.join(f'{t:g}' for t in outside)}; choose levels inside "
            f"{f_lo:.0f}..{f_hi:.0f} MFLOPs"
        )
    edges = np.asarray(levels, dtype=np.float64)
    for _ in range(max_proposals):
        if all(len(p) >= pool_size for p in pools):
            break
        arch = _propose(space, rng, lo_arch, hi_arch)
        f = space.flops(arch) / 1e6
        i = int(np.searchsorted(edges, f, side="right")) - 1
        if i < 0 or f > edges[i] + bound or len(pools[i]) >= pool_size:
            continue
        if arch.arch_id in seen[i]:
            continue
        seen[i].add(arch.arch_id)
        pools[i].append(arch)
    empty = [f"{t:g}" for t, p in zip(levels, pools, strict=True) if not p]
    if empty:
        raise ValueError(
            f"no {space.name} subnet found with FLOPs in [T, T + {bound:g}] MFLOPs for level(s) "
            f"{', '.join(empty)} after {max_proposals} proposals; choose levels inside "
            f"{space.flops(lo_arch) / 1e6:.0f}..{space.flops(hi_arch) / 1e6:.0f} MFLOPs or widen "
            "the bound"
        )
    return pools


@register_sampler("complexity_aware")
class ComplexityAwareSampler(BaseSampler):
    """ElasticViT's complexity-aware sampling (see the module docstring).

    Args:
        space: the search space.
        rng: the only source of randomness.
        levels: FLOPs level targets T in MFLOPs; ``None`` derives them with
            :func:`default_levels`.
        bound: subnets of level T have FLOPs in ``[T, T + bound]`` MFLOPs (ElasticViT: 20).
        num_subnets: subnets drawn at the current level per step (ElasticViT: 3).
        include_max: put the largest subnet first (in-place distillation teacher).
        include_min: ``"level"`` (the smallest subnet of the level's pool), ``"global"`` (the
            space's smallest subnet) or ``"none"``.
        pool_size: archs per level pool.
        start_level: level index of the first step; ``None`` starts at the lowest.
    """

    #: one subnet per level step, the largest as teacher and the space's smallest (the quick
    #: recipe's choice, cheap on a CPU)
    recipe_options: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {"num_subnets": 1, "include_max": True, "include_min": "global"})

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        levels: Sequence[float] | None = None,
        bound: float = 20.0,
        num_subnets: int = 2,
        include_max: bool = True,
        include_min: str = "level",
        pool_size: int = 64,
        start_level: int | None = None,
    ) -> None:
        super().__init__(space, rng)
        lv = sorted(float(x) for x in (levels if levels is not None else default_levels(space)))
        if not lv:
            raise ValueError("`levels` must hold at least one FLOPs target")
        if include_min not in _MIN_MODES:
            raise ValueError(f"`include_min` must be one of {_MIN_MODES}, but got {include_min=}")
        if bound <= 0 or num_subnets < 0 or pool_size < 1:
            raise ValueError(f"need bound > 0, num_subnets >= 0, pool_size >= 1, but got "
                             f"{bound=}, {num_subnets=}, {pool_size=}")
        self.levels = lv
        self.bound = float(bound)
        self.num_subnets = int(num_subnets)
        self.include_max = bool(include_max)
        self.include_min = include_min
        self.pool_size = int(pool_size)
        self._level = int(start_level) if start_level is not None else 0
        if not 0 <= self._level < len(lv):
            raise ValueError(f"`0 <= start_level < {len(lv)}` must hold, but got {start_level=}")
        self._pools: list[list[Arch]] | None = None
        self._started = False

    # ---- pools ---------------------------------------------------------------------------
    @property
    def pools(self) -> list[list[Arch]]:
        """The per-level pools, built on first use and then kept (and saved in the state)."""
        if self._pools is None:
            self._pools = build_level_pools(self.space, self.levels, self.bound, self.pool_size,
                                            self.rng)
            self._pools = [sorted(p, key=self.space.flops) for p in self._pools]
        return self._pools

    @property
    def level(self) -> int | None:
        return self._level

    def level_names(self) -> list[str]:
        return [f"{t:g}M" for t in self.levels]

    def mflops(self, arch: Arch) -> float:
        """FLOPs of ``arch`` in MFLOPs (MACs, deployment resolution)."""
        return self.space.flops(arch) / 1e6

    # ---- sampling ------------------------------------------------------------------------
    def _walk(self) -> int:
        if self._started:
            n = len(self.levels)
            lo, hi = max(self._level - 1, 0), min(self._level + 1, n - 1)
            self._level = int(lo + self.rng.integers(hi - lo + 1))
        self._started = True
        return self._level

    def _draw_at_level(self, level: int) -> SampledArch:
        pool = self.pools[level]
        return SampledArch(pool[int(self.rng.integers(len(pool)))], "random", level)

    def sample(self) -> list[SampledArch]:
        level = self._walk()
        plan: list[SampledArch] = []
        if self.include_max:
            plan.append(SampledArch(self.space.max_arch(), "max", level))
        plan.extend(self._draw_at_level(level) for _ in range(self.num_subnets))
        if self.include_min == "level":
            plan.append(SampledArch(self.pools[level][0], "level_min", level))
        elif self.include_min == "global":
            plan.append(SampledArch(self.space.min_arch(), "min", level))
        return plan

    # ---- state ---------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {
            "levels": list(self.levels),
            "bound": self.bound,
            "level": self._level,
            "started": self._started,
            "pools": None if self._pools is None else [[a.to_dict() for a in p]
                                                       for p in self._pools],
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self.levels = [float(x) for x in state["levels"]]
        self.bound = float(state["bound"])
        self._level = int(state["level"])
        self._started = bool(state["started"])
        pools = state["pools"]
        self._pools = None if pools is None else [[self.arch_from_dict(a) for a in p]
                                                  for p in pools]
