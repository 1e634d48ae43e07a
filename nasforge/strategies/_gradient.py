"""Differentiable-distribution search: architecture logits per choice, Gumbel sampling,
a score-function gradient for accuracy and an analytic expected-latency term.

Papers:
    ProxylessNAS: Direct Neural Architecture Search on Target Task and Hardware,
    H. Cai, L. Zhu, S. Han, https://arxiv.org/abs/1812.00332
    FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture
    Search, B. Wu et al., https://arxiv.org/abs/1812.03443

What is and is not differentiated here — be precise:

* The search distribution is a product of categoricals, one per column of the space's index
  codec (``softmax(theta_c)``; a :class:`~nasforge.search_spaces.choice_space.ChoiceSpace`'s index
  matrix has one column per decision). Archs are drawn with the Gumbel-max trick
  (``argmax(theta_c + Gumbel noise)``), which is an exact categorical sample.
* **Accuracy is a black box** (tabular benchmark, predictor, or a supernet through its
  pinned API ``set_active(arch)``, which takes one hard arch and no mixture weights). Its
  gradient is therefore the score-function (REINFORCE) estimator
  ``mean_i A_i * d log p(a_i) / d theta`` with ``d log p(a) / d theta_c = onehot(a_c) - p_c`` and
  the advantage ``A_i`` = reward minus a moving-average baseline, over the running reward std.
  This is ProxylessNAS's REINFORCE variant; with a supernet the reward is the BN-recalibrated
  validation accuracy of the sampled subnet. A Gumbel-softmax *straight-through* gradient
  through the supernet's forward would need a mixed-op forward with soft weights, which the
  supernet API does not expose; it is not implemented.
* **Expected latency is analytic.** As in FBNet's LUT, latency is modelled additively per
  decision: ``lat(a) ~ b + sum_c w_c[a_c]``, with ``w`` fitted by least squares on the cheap
  latency objective of ``surrogate_samples`` random archs (exact for NAS-Bench-201-like spaces
  whose blocks depend on one decision; a first-order fit otherwise; its R^2 is recorded in
  :attr:`GradientStrategy.surrogate_r2`). Then ``E[lat] = b + sum_c p_c . w_c`` and its gradient
  ``p_c * (w_c - p_c . w_c)`` are exact for the surrogate.
* The loss is ``-E[reward] + lambda * E[lat] / ref``. With an upper latency bound ``U``,
  ``lambda`` is a Lagrange multiplier updated by dual ascent (``lambda += dual_lr *
  (E[lat] / U - 1)``, clipped at 0); without a bound it stays ``latency_weight``. Candidates
  violating cheap bounds are still rejected before evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.strategies.base import BaseStrategy
from nasforge.strategies.base import register_strategy
from nasforge.strategies.base import require_choice_space

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace
    from nasforge.strategies.objectives import SearchObjectives

__all__ = ["GradientStrategy"]


@register_strategy("gradient")
class GradientStrategy(BaseStrategy):
    """Logits per decision trained by REINFORCE plus an analytic expected-latency penalty.

    Args:
        space: a ChoiceSpace.
        objectives: the reward is the primary objective (sign-adjusted).
        seed: RNG seed.
        batch_size: archs sampled per update.
        lr: step size on the logits (Adam).
        latency: name of the cheap objective used for the expected-latency term (default: the
            first cheap ``minimize`` objective with an upper bound, else none).
        latency_weight: fixed penalty weight when the latency objective has no upper bound.
        dual_lr: step of the Lagrange multiplier when it has one.
        baseline_decay: decay of the moving-average reward baseline.
        surrogate_samples: random archs used to fit the additive latency surrogate.
        max_rejections: see :class:`BaseStrategy`.

    Raises:
        IncompatibleComponentsError: ``space`` is not a ChoiceSpace.
        InvalidInputError: ``batch_size < 1`` or ``lr <= 0``; an unknown ``latency`` name.
    """

    def __init__(self, space: SearchSpace, objectives: SearchObjectives, *, seed: int = 0,
                 batch_size: int = 8, lr: float = 0.1, latency: str | None = None,
                 latency_weight: float = 0.0, dual_lr: float = 0.05,
                 baseline_decay: float = 0.9, surrogate_samples: int = 256,
                 max_rejections: int = 10_000) -> None:
        super().__init__(space, objectives, seed=seed, max_rejections=max_rejections)
        if batch_size < 1 or lr <= 0:
            raise InvalidInputError(
                f"gradient strategy needs batch_size >= 1 and lr > 0, got {batch_size=}, {lr=}")
        self._codec = require_choice_space(space, type(self).__name__)  # = space
        sizes = self._codec.index_sizes()
        #: first one-hot column of each decision in a flat (sum(sizes),) vector
        self._offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self._batch = batch_size
        self.lr = lr
        self.dual_lr = dual_lr
        self.baseline_decay = baseline_decay
        self.surrogate_samples = surrogate_samples
        if latency is None:
            for o in objectives:
                if (o.cheap and o.direction == "minimize" and o.bound is not None
                        and o.bound.upper is not None):
                    latency = o.name
                    break
        self.latency = latency
        if latency is not None:
            objectives[latency]  # raises with the available names when unknown
        self.lam = float(latency_weight)
        self.theta = [np.zeros(int(k)) for k in sizes]
        self._m = [np.zeros_like(t) for t in self.theta]
        self._v = [np.zeros_like(t) for t in self.theta]
        self.t = 0
        self.baseline: float | None = None
        self.reward_var = 1.0
        self.w: list[np.ndarray] | None = None
        self.w0 = 0.0
        self.surrogate_r2: float | None = None
        self._asked_idx = np.zeros((0, len(self.theta)), dtype=np.int64)  # not told yet

    @property
    def batch_size(self) -> int:
        return self._batch

    # ---- the distribution ----------------------------------------------------------------
    def probs(self) -> list[np.ndarray]:
        """Per-decision option probabilities ``softmax(theta_c)``."""
        out = []
        for t in self.theta:
            e = np.exp(t - t.max())
            out.append(e / e.sum())
        return out

    def mode_arch(self) -> Arch | None:
        """The most probable arch (None if it breaks a cross-field rule)."""
        row = np.asarray([[int(np.argmax(t)) for t in self.theta]], dtype=np.int64)
        if not self._codec.valid_rows(row)[0]:
            return None
        return self._codec.from_indices(row, check=False)[0]

    def _draw_rows(self, k: int) -> np.ndarray:
        """``k`` Gumbel-max draws of the distribution: (k, num_choices) option indices.

        Row by row, decision by decision, ``len(theta_c)`` uniforms each: one
        ``rng.random((k, sum(sizes)))`` call consumes the stream in that order.
        """
        u = self.rng.random((k, int(self._offsets[-1]) + len(self.theta[-1])))
        g = -np.log(-np.log(u + 1e-300) + 1e-300)
        out = np.empty((k, len(self.theta)), dtype=np.int64)
        for c, (o, t) in enumerate(zip(self._offsets.tolist(), self.theta, strict=True)):
            out[:, c] = np.argmax(t + g[:, o:o + len(t)], axis=1)
        return out

    def _sample(self, k: int) -> np.ndarray:
        """``k`` draws that satisfy the space's cross-field rules (others are redrawn)."""
        parts: list[np.ndarray] = []
        have = tries = 0
        while have < k:
            rows = self._draw_rows(k - have)
            ok = self._codec.valid_rows(rows)
            bad = np.flatnonzero(~ok)  # draw number tries + 1 + i for row i
            if bad.size and tries + 1 + int(bad[-1]) > self.max_rejections:
                raise InvalidInputError(
                    "gradient strategy: sampled combinations keep breaking the space's "
                    "cross-field rules; use another strategy for this space")
            tries += len(rows)
            parts.append(rows[ok])
            have += int(ok.sum())
        return np.concatenate(parts) if parts else np.zeros((0, len(self.theta)), np.int64)

    def _fit_surrogate(self) -> None:
        if self.latency is None or self.w is not None:
            return
        archs = [self.space.sample(self.rng) for _ in range(self.surrogate_samples)]
        lat = self.objectives[self.latency].evaluate_many(archs)
        sizes = [len(t) for t in self.theta]
        X = np.zeros((len(archs), sum(sizes)))
        X[np.arange(len(archs))[:, None], self._offsets + self._codec.to_indices(archs)] = 1.0
        X1 = np.hstack([np.ones((len(archs), 1)), X])
        coef, *_ = np.linalg.lstsq(X1, lat, rcond=None)
        pred = X1 @ coef
        ss = float(((lat - lat.mean()) ** 2).sum())
        self.surrogate_r2 = 1.0 - float(((lat - pred) ** 2).sum()) / ss if ss > 0 else 1.0
        self.w0 = float(coef[0])
        offs = self._offsets.tolist()
        self.w = [coef[1 + o:1 + o + s] for o, s in zip(offs, sizes, strict=True)]

    def expected_latency(self) -> float | None:
        """``E[lat]`` under the current distribution (additive surrogate), or None."""
        if self.w is None:
            return None
        return self.w0 + float(sum(p @ w for p, w in zip(self.probs(), self.w, strict=True)))

    # ---- ask / tell ----------------------------------------------------------------------
    def ask(self, n: int) -> list[Arch]:
        self._fit_surrogate()
        rows = self.feasible_rows(self._codec, self._sample, n)
        self._asked_idx = np.concatenate([self._asked_idx, rows])
        return self._codec.from_indices(rows, check=False)

    def _tell(self, archs: list[Arch], values: np.ndarray) -> None:
        j = self.objectives.primary_index
        r = self.objectives.signs[j] * values[:, j]
        r = np.where(np.isfinite(r), r, np.nanmin(np.where(np.isfinite(r), r, np.nan))
                     if np.isfinite(r).any() else 0.0)
        mean_r = float(r.mean())
        if self.baseline is None:
            self.baseline = mean_r
            self.reward_var = float(r.var()) or 1.0
        adv = (r - self.baseline) / np.sqrt(self.reward_var + 1e-12)
        if len(archs) > len(self._asked_idx):
            raise InvalidInputError(
                f"GradientStrategy.tell: told {len(archs)} archs but {len(self._asked_idx)} "
                "were asked and not told yet; tell each batch of ask once, in ask order"
            )
        rows, self._asked_idx = self._asked_idx[:len(archs)], self._asked_idx[len(archs):]
        probs = self.probs()
        grads = [np.zeros_like(t) for t in self.theta]
        for row, ai in zip(rows.tolist(), adv.tolist(), strict=True):
            for c, k in enumerate(row):
                g = -probs[c]
                g[k] += 1.0
                grads[c] += ai * g / len(archs)
        lat_ref = None
        if self.w is not None and self.latency is not None:
            bound = self.objectives[self.latency].bound
            lat_ref = bound.upper if bound is not None and bound.upper else max(abs(self.w0), 1.0)
            for c, (p, w) in enumerate(zip(probs, self.w, strict=True)):
                grads[c] -= self.lam * p * (w - p @ w) / lat_ref
        # Adam ascent on the objective
        self.t += 1
        b1, b2 = 0.9, 0.999
        for c in range(len(self.theta)):
            self._m[c] = b1 * self._m[c] + (1 - b1) * grads[c]
            self._v[c] = b2 * self._v[c] + (1 - b2) * grads[c] ** 2
            mh = self._m[c] / (1 - b1 ** self.t)
            vh = self._v[c] / (1 - b2 ** self.t)
            self.theta[c] = self.theta[c] + self.lr * mh / (np.sqrt(vh) + 1e-8)
        d = self.baseline_decay
        self.baseline = d * self.baseline + (1 - d) * mean_r
        self.reward_var = d * self.reward_var + (1 - d) * float(((r - self.baseline) ** 2).mean())
        if lat_ref is not None and self.latency is not None:
            bound = self.objectives[self.latency].bound
            if bound is not None and bound.upper is not None:
                el = self.expected_latency() or 0.0
                self.lam = max(0.0, self.lam + self.dual_lr * (el / bound.upper - 1.0))

    # ---- persistence -------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"theta": [t.tolist() for t in self.theta], "m": [m.tolist() for m in self._m],
                "v": [v.tolist() for v in self._v], "t": self.t, "baseline": self.baseline,
                "reward_var": self.reward_var, "lam": self.lam,
                "w": None if self.w is None else [w.tolist() for w in self.w], "w0": self.w0,
                "surrogate_r2": self.surrogate_r2}

    def _load_state(self, extra: dict[str, Any]) -> None:
        self.theta = [np.asarray(t, dtype=np.float64) for t in extra["theta"]]
        self._m = [np.asarray(t, dtype=np.float64) for t in extra["m"]]
        self._v = [np.asarray(t, dtype=np.float64) for t in extra["v"]]
        self.t = int(extra["t"])
        self.baseline = extra["baseline"]
        self.reward_var = float(extra["reward_var"])
        self.lam = float(extra["lam"])
        self.w = None if extra["w"] is None else [np.asarray(w) for w in extra["w"]]
        self.w0 = float(extra["w0"])
        self.surrogate_r2 = extra["surrogate_r2"]

    def _settings(self) -> dict[str, Any]:
        return {"batch_size": self._batch, "lr": self.lr, "latency": self.latency,
                "dual_lr": self.dual_lr, "baseline_decay": self.baseline_decay,
                "surrogate_samples": self.surrogate_samples}
