"""Performance-aware sampling: per-level banks of good subnets, width preferred over depth.

Paper: ElasticViT: Conflict-aware Supernet Training for Deploying Fast Vision Transformer on
Diverse Mobile Devices, https://arxiv.org/abs/2303.09730 (Sec. 3.2, "performance-aware
sampling").

On top of :class:`~nasforge.supernet.training.samplers._complexity.ComplexityAwareSampler`'s
FLOPs-level
random walk, each level keeps a bank of ``(arch, -loss)`` pairs (the loss measured on the batch
the arch was trained on). With probability ``p`` — growing over training, ElasticViT starts at
0.2 and adds 0.15 — and once the bank is at least half full, a subnet is drawn from the bank by a
softmax over the scores (exploitation). Otherwise ``num_candidates`` subnets are drawn from the
level's pool and the one whose FLOPs over an anchor (the best subnet of the lowest level, or the
smallest subnet) come most from width and least from depth is kept (ElasticViT's
``_importance_comparison``). A bank holds ``bank_size`` subnets; a better one replaces the worst.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.base import SearchSpace
from nasforge.supernet.training.samplers._complexity import ComplexityAwareSampler
from nasforge.supernet.training.samplers.base import SampledArch
from nasforge.supernet.training.samplers.registry import register_sampler

__all__ = ["PerformanceAwareSampler", "width_depth_preference"]


def width_depth_preference(space: SearchSpace, arch: Arch, anchor: Arch) -> float:
    """FLOPs that ``arch`` adds over ``anchor`` through depth minus those it adds through width.

    Smaller is better (more of the extra FLOPs come from width). Depth-driven FLOPs are those of
    ``arch`` with the anchor's widths, width-driven FLOPs those of ``arch`` with the anchor's
    depths, both over the elastic stages (the transformer stages of spaces with an
    ``attention`` field, else all stages). Spaces without ``widths``/``depths`` score 0.

    Args:
        space: the search space (only its FLOPs counting is used; the mixed archs are not
            validated, as in ElasticViT).
        arch: the candidate.
        anchor: the reference subnet.
    """
    widths, depths = getattr(arch, "widths", None), getattr(arch, "depths", None)
    if widths is None or depths is None:
        return 0.0
    n = len(widths)
    first = n - len(getattr(arch, "attention", ())) if hasattr(arch, "attention") else 0
    aw, ad = anchor.widths, anchor.depths  # type: ignore[attr-defined]
    w_mix = tuple(aw[i] if i >= first else widths[i] for i in range(n))
    d_mix = tuple(ad[i] if i >= first else depths[i] for i in range(n))
    depth_flops = space.flops(arch.replace(widths=w_mix))
    width_flops = space.flops(arch.replace(depths=d_mix))
    return float(depth_flops - width_flops)


def _softmax(scores: Sequence[float]) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    e = np.exp(s - s.max())
    return e / e.sum()


@register_sampler("performance_aware")
class PerformanceAwareSampler(ComplexityAwareSampler):
    """ElasticViT's complexity- plus performance-aware sampling (see the module docstring).

    Args:
        space: the search space.
        rng: the only source of randomness.
        bank_size: subnets per level bank (ElasticViT: 150, 50 above 500 MFLOPs, for runs of
            hundreds of epochs; short runs need small banks to ever exploit them).
        bank_prob: initial exploitation probability p (ElasticViT: 0.2).
        bank_prob_increment: added to p at each increment (ElasticViT: 0.15).
        increments: how many times p grows over training, evenly spaced (ElasticViT: every 100
            epochs).
        num_candidates: pool candidates compared by the width/depth preference (ElasticViT: 5).
        **kwargs: options of :class:`ComplexityAwareSampler` (levels, bound, num_subnets, ...).
    """

    def __init__(
        self,
        space: SearchSpace,
        rng: np.random.Generator,
        bank_size: int = 16,
        bank_prob: float = 0.2,
        bank_prob_increment: float = 0.15,
        increments: int = 2,
        num_candidates: int = 5,
        **kwargs: Any,
    ) -> None:
        super().__init__(space, rng, **kwargs)
        if bank_size < 1 or num_candidates < 1 or not 0.0 <= bank_prob <= 1.0:
            raise ValueError(f"need bank_size >= 1, num_candidates >= 1, 0 <= bank_prob <= 1, "
                             f"but got {bank_size=}, {num_candidates=}, {bank_prob=}")
        self.bank_size = int(bank_size)
        self.bank_prob0 = float(bank_prob)
        self.bank_prob_increment = float(bank_prob_increment)
        self.increments = int(increments)
        self.num_candidates = int(num_candidates)
        self.banks: list[list[tuple[Arch, float]]] = [[] for _ in self.levels]
        self._pending: dict[str, int] = {}

    @property
    def bank_prob(self) -> float:
        """The exploitation probability at the current training progress."""
        k = min(self.increments, int(self.step * (self.increments + 1) // self.total_steps))
        return min(1.0, self.bank_prob0 + self.bank_prob_increment * k)

    def _anchor(self, level: int) -> Arch:
        if level > 0 and self.banks[0]:
            return max(self.banks[0], key=lambda item: item[1])[0]
        return self.space.min_arch()

    def _draw_at_level(self, level: int) -> SampledArch:
        bank = self.banks[level]
        if self.rng.random() < self.bank_prob and len(bank) > self.bank_size // 2:
            p = _softmax([score for _, score in bank])
            return SampledArch(bank[int(self.rng.choice(len(bank), p=p))][0], "bank", level)
        pool = self.pools[level]
        if len(bank) < self.bank_size // 2:
            arch = pool[int(self.rng.integers(len(pool)))]
        else:
            anchor = self._anchor(level)
            cands = [pool[int(self.rng.integers(len(pool)))] for _ in range(self.num_candidates)]
            diffs = [width_depth_preference(self.space, a, anchor) for a in cands]
            arch = cands[int(np.argmin(diffs))]
        self._pending[arch.arch_id] = level
        return SampledArch(arch, "random", level)

    def sample(self) -> list[SampledArch]:
        self._pending = {}
        return super().sample()

    def feedback(self, arch: Arch, loss: float) -> None:
        """Insert ``arch`` with score ``-loss`` into its level's bank (pool draws only)."""
        level = self._pending.pop(arch.arch_id, None)
        if level is None or not np.isfinite(loss):
            return
        bank = self.banks[level]
        if any(a.arch_id == arch.arch_id for a, _ in bank):
            bank[:] = [(a, -float(loss) if a.arch_id == arch.arch_id else s) for a, s in bank]
            return
        if len(bank) < self.bank_size:
            bank.append((arch, -float(loss)))
            return
        worst = min(range(len(bank)), key=lambda i: bank[i][1])
        if bank[worst][1] < -loss:
            bank[worst] = (arch, -float(loss))

    def _extra_state(self) -> dict[str, Any]:
        return {
            **super()._extra_state(),
            "banks": [[[a.to_dict(), s] for a, s in bank] for bank in self.banks],
            "pending": dict(self._pending),
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        super()._load_extra_state(state)
        self.banks = [[(self.arch_from_dict(a), float(s)) for a, s in bank]
                      for bank in state["banks"]]
        self._pending = {str(k): int(v) for k, v in state["pending"].items()}
