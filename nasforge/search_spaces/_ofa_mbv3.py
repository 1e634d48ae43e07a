"""Once-for-All MobileNetV3 search space (``ofa_mbv3``, ``ofa_mbv3_w12``).

Paper:
    Once for All: Train One Network and Specialize it for Efficient Deployment,
    https://arxiv.org/abs/1908.09791

The macro structure is the Once-for-All repository's (mit-han-lab/once-for-all,
``ofa/imagenet_classification/elastic_nn/networks/ofa_mbv3.py``): a fixed 3x3 stride-2 first
conv (BN, h-swish); a fixed first block, MBConv k3 expand 1 (ReLU, no SE) with an identity
residual (its input and output widths are equal in both variants); five elastic stages of
MBConvs, strides 2, 2, 2, 1, 2, activations relu, relu, h-swish, h-swish, h-swish, SE in
stages 2, 4 and 5; then the head: 1x1 final expand conv (BN, h-swish), global average pool,
1x1 feature-mix conv (no BN, no bias, h-swish) and a Linear classifier.

Choices: resolution 128..224 step 4; depth {2, 3, 4} per stage; per block kernel {3, 5, 7}
and expand ratio {3, 4, 6}, with ``mid = make_divisible(round(C_in * e), 8)``. A block has an
identity residual when its stride is 1 and ``C_in == C_out`` (OFA counts no shortcut convs).
SE (OFA's ``SEModule``): global pool, 1x1 reduce to ``make_divisible(mid // 4, 8)`` (bias,
ReLU), 1x1 expand (bias, h-sigmoid ``relu6(x + 3) / 6``), scale.

Variants are rows of :data:`SPACE_CFGS`: width multiplier 1.0 (widths 16, 16, 24, 40, 80, 112,
160, final expand 960, feature mix 1280) and 1.2 (24, 24, 32, 48, 96, 136, 192, 1152, 1536).

Architectures and inactive blocks: ``kernels`` and ``expands`` hold 20 entries (5 stages x 4
blocks, OFA's ``ks``/``e`` layout); entries of blocks beyond a stage's depth are *inactive*. The
canonical form stores them at the minimum (kernel 3, expand 3): :meth:`OFAMobileNetV3Space.
_repair_row` (sample, mutate, crossover) and :func:`~OFAMobileNetV3Space.canonicalize` write it,
``arch_from_dict`` and the OFA importers canonicalise what they load, and ``validate`` rejects
a non-canonical inactive entry, so that one network has exactly one ``arch_id``. Consequently
:meth:`~OFAMobileNetV3Space.size` counts distinct *active* configurations:
``25 * (9**2 + 9**3 + 9**4)**5`` (about 5.4e20, OFA's "more than 10^19" sub-networks times 25
resolutions). :meth:`~OFAMobileNetV3Space.encode` writes 0 for inactive entries.

FLOPs (MACs): ``flops`` counts what the built module executes: every convolution (SE
included) and the classifier, no bias adds, no BN, activations or pooling. Once-for-All's own
rule (``MBv3LatencyTable.count_flops_given_config`` in
``ofa/nas/efficiency_predictor/latency_lookup_table.py`` and the hook-based
``ofa/utils/flops_counter.py``) counts exactly the same terms, with feature sizes
``(r + 1) // 2`` after the first conv and ``(h - 1) // s + 1`` after each block, so
``flops_reference == flops`` here. Parameters count weights, conv/Linear biases and BN affine
parameters (not running statistics).

Blocks map one-to-one to OFA latency-table keys: ``ofa_first_conv`` -> ``Conv``,
``ofa_mbconv`` -> ``expanded_conv-...`` (``mid`` is the key's ``expand``; ``shortcut ==
"identity"`` is ``idskip:1``), ``ofa_final_expand`` -> ``Conv_1``, ``ofa_pool`` ->
``AvgPool2D``, ``ofa_feature_mix`` -> ``Conv_2``, ``ofa_classifier`` -> ``Logits`` (its width
is ``classes``).

Exchange format ``ofa``: OFA's ``net.config`` JSON (:func:`arch_from_ofa_config`,
:func:`arch_to_ofa_config`); released specialized sub-networks are stored so (their input size
is in the separate ``run.config`` as ``image_size``). OFA's sub-network dict
``{"ks": [20], "e": [20], "d": [5], "r": [res]}`` is read and written by
:func:`arch_from_ofa_subnet` and :func:`arch_to_ofa_subnet`.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("ofa_mbv3")
    >>> a = space.max_arch()
    >>> round(space.flops(a) / 1e6, 1), a.resolution
    (566.2, 224)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from functools import partial
from typing import Any
from typing import ClassVar

import numpy as np

from nasforge.errors import InvalidArchitectureError
from nasforge.search_spaces.arch import Arch
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.block import register_block_kind
from nasforge.search_spaces.choice import Choice
from nasforge.search_spaces.choice_space import ChoiceSpace
from nasforge.search_spaces.registry import register_space_factory

__all__ = [
    "SPACE_CFGS",
    "OFAArch",
    "OFAMobileNetV3Cfg",
    "OFAMobileNetV3Space",
    "make_divisible",
]

NUM_STAGES = 5
MAX_DEPTH = 4
DEPTHS = (2, 3, 4)
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
RESOLUTIONS = tuple(range(128, 225, 4))
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
STAGE_SE = (False, True, False, True, True)
STAGES = ("S1", "S2", "S3", "S4", "S5")
CHANNEL_DIVISIBLE = 8
SE_REDUCTION = 4
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160)
BASE_FINAL_EXPAND = 960
BASE_FEATURE_MIX = 1280
_OFA_ACT = {"relu": "relu", "hswish": "h_swish"}
_SLOT_IN_STAGE = np.tile(np.arange(MAX_DEPTH), NUM_STAGES)  # block position of each slot


def make_divisible(v: float, divisor: int = CHANNEL_DIVISIBLE, min_val: int | None = None) -> int:
    """Round ``v`` to the nearest multiple of ``divisor``, never more than 10% below ``v``.

    The TensorFlow MobileNet rule that Once-for-All uses for every width.

    Args:
        v: the unrounded width.
        divisor: the multiple to round to.
        min_val: the smallest result (``divisor`` when None).
    """
    lo = divisor if min_val is None else min_val
    new = max(lo, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def mid_channels(cin: int, expand: int) -> int:
    """Inner width of an MBConv: ``make_divisible(round(cin * expand), 8)``."""
    return make_divisible(round(cin * expand), CHANNEL_DIVISIBLE)


def se_channels(mid: int) -> int:
    """SE hidden width of OFA's ``SEModule``: ``make_divisible(mid // 4, 8)``."""
    return make_divisible(mid // SE_REDUCTION, CHANNEL_DIVISIBLE)


@dataclass(frozen=True)
class OFAArch(Arch):
    """A Once-for-All MobileNetV3 sub-network.

    Attributes:
        resolution: deployment input resolution.
        depths: blocks per elastic stage (5).
        kernels: depthwise kernel per block slot, stage-major (5 x 4 = 20, OFA's ``ks``);
            slots beyond a stage's depth are inactive and stored as 3.
        expands: expand ratio per block slot (20, OFA's ``e``); inactive slots stored as 3.
    """

    resolution: int = 224
    depths: tuple[int, ...] = ()
    kernels: tuple[int, ...] = ()
    expands: tuple[int, ...] = ()


@dataclass(frozen=True)
class OFAMobileNetV3Cfg:
    """One variant of the space (a row of :data:`SPACE_CFGS`).

    Attributes:
        width_mult: OFA's width multiplier (informational; widths below are already rounded).
        widths: first conv, first block and the 5 stages' output widths.
        final_expand: width of the final 1x1 expand conv.
        feature_mix: width of the 1x1 feature-mix conv.
        resolutions: allowed input resolutions.
    """

    width_mult: float
    widths: tuple[int, ...]
    final_expand: int
    feature_mix: int
    resolutions: tuple[int, ...] = RESOLUTIONS


def _cfg(width_mult: float) -> OFAMobileNetV3Cfg:
    return OFAMobileNetV3Cfg(
        width_mult=width_mult,
        widths=tuple(make_divisible(w * width_mult) for w in BASE_WIDTHS),
        final_expand=make_divisible(BASE_FINAL_EXPAND * width_mult),
        feature_mix=make_divisible(BASE_FEATURE_MIX * width_mult),
    )


class OFAMobileNetV3Space(ChoiceSpace):
    """Once-for-All MobileNetV3 (arXiv 1908.09791), one width variant per instance.

    Args:
        name: the registered variant name (a key of :data:`SPACE_CFGS`).
        cfg: the variant (defaults to ``SPACE_CFGS[name]``).
        num_classes: classifier width.
    """

    arch_cls: ClassVar[type[Arch]] = OFAArch
    description: ClassVar[str] = "Once-for-All MobileNetV3 (k{3,5,7}, e{3,4,6}, d{2,3,4})"

    def __init__(self, name: str = "ofa_mbv3", cfg: OFAMobileNetV3Cfg | None = None,
                 num_classes: int = 1000) -> None:
        self.name = name
        self.cfg = SPACE_CFGS[name] if cfg is None else cfg
        self.num_classes = num_classes
        super().__init__()
        self._slots_at = tuple(self.columns(f).start for f in ("depths", "kernels", "expands"))

    def choices(self) -> list[Choice]:
        return [
            Choice.one("resolution", self.cfg.resolutions),
            Choice.repeat("depths", DEPTHS, NUM_STAGES),
            Choice.repeat("kernels", KERNELS, NUM_STAGES * MAX_DEPTH),
            Choice.repeat("expands", EXPANDS, NUM_STAGES * MAX_DEPTH),
        ]

    # ---- canonical form: inactive slots at their minimum ---------------------------------
    def _repair_row(self, row: list[int], rng: np.random.Generator | None) -> None:
        """Inactive kernel/expand slots to option 0 (the minimum; ``rng`` unused).

        Args:
            row: num_choices option indices, edited in place.
            rng: unused (the canonical form is deterministic).
        """
        d, k, e = self._slots_at
        for stage in range(NUM_STAGES):
            for slot in range(stage * MAX_DEPTH + DEPTHS[row[d + stage]],
                              (stage + 1) * MAX_DEPTH):
                row[k + slot] = 0
                row[e + slot] = 0

    def _repair_indices(self, idx: np.ndarray, rng: np.random.Generator | None) -> None:
        """Vectorised :meth:`_repair_row`: inactive kernel/expand slots to option 0 (the minimum).

        Args:
            idx: (n, num_choices) option indices, edited in place.
            rng: unused (the canonical form is deterministic).
        """
        depth = np.asarray(DEPTHS, dtype=np.int64)[idx[:, self.columns("depths")]]  # (n, 5)
        inactive = np.repeat(depth, MAX_DEPTH, axis=1) <= _SLOT_IN_STAGE  # (n, 20)
        for field in ("kernels", "expands"):
            block = idx[:, self.columns(field)]
            block[inactive] = 0
            idx[:, self.columns(field)] = block

    def _check(self, arch: Arch) -> None:
        a: OFAArch = arch  # type: ignore[assignment]
        for s, d in enumerate(a.depths):
            for slot in range(s * MAX_DEPTH + d, (s + 1) * MAX_DEPTH):
                for field, values, canon in (("kernels", a.kernels, KERNELS[0]),
                                             ("expands", a.expands, EXPANDS[0])):
                    if values[slot] != canon:
                        raise InvalidArchitectureError(
                            f"{self.name}: {field}[{slot}] = {values[slot]} belongs to an "
                            f"inactive block (depths[{s}] = {d}) and must hold the canonical "
                            f"value {canon}; allowed for inactive slots: {{{canon}}} (load "
                            "through arch_from_dict or call space.canonicalize(arch))"
                        )

    def canonicalize(self, arch: OFAArch) -> OFAArch:
        """``arch`` with inactive kernel/expand slots set to the minimum (not validated)."""
        k, e = list(arch.kernels), list(arch.expands)
        _canonicalize_lists(arch.depths, k, e)
        return arch.replace(kernels=tuple(k), expands=tuple(e))  # type: ignore[return-value]

    def arch_from_dict(self, data: dict[str, Any]) -> Arch:
        """Build an architecture from its dict form, canonicalise inactive slots, validate.

        Raises:
            InvalidArchitectureError: a missing or unknown field, or a value outside the space.
        """
        return super().arch_from_dict(_canonical_dict(data))

    def size(self) -> int:
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return len(self.cfg.resolutions) * per_stage**NUM_STAGES

    def encode(self, arch: Arch) -> np.ndarray:
        """Resolution, depths, then kernels and expands per slot; inactive slots are 0."""
        a: OFAArch = arch  # type: ignore[assignment]
        active = _active_mask(a.depths)
        k = [float(x) if on else 0.0 for x, on in zip(a.kernels, active, strict=True)]
        e = [float(x) if on else 0.0 for x, on in zip(a.expands, active, strict=True)]
        return np.asarray([float(a.resolution), *map(float, a.depths), *k, *e],
                          dtype=np.float64)

    # ---- blocks of index rows (codec hook) ---------------------------------------------
    def num_segment_codes(self) -> int:
        """Per resolution: first conv, first block, 20 slots x 3 kernels x 3 expands, 4 head
        blocks (:meth:`segment_codes`)."""
        return len(self.cfg.resolutions) * (2 + NUM_STAGES * MAX_DEPTH * 9 + 4)

    def segment_codes(self, matrix: np.ndarray) -> np.ndarray:
        """Block codes of index rows: columns first conv, first block, the 20 slots (``-1``
        where inactive), the 4 head blocks, in the order of :meth:`blocks`.

        A slot's block depends only on the resolution, the slot (its stage, stride and input
        width are fixed) and its kernel and expand; the other blocks only on the resolution.

        Args:
            matrix: (n, num_choices) option indices (repaired rows).

        Returns:
            int64 array of shape (n, 26).
        """
        idx = np.asarray(matrix, dtype=np.int64)
        n_res, n_slots = len(self.cfg.resolutions), NUM_STAGES * MAX_DEPTH
        r = idx[:, self.columns("resolution")]  # (n, 1)
        depth = np.asarray(DEPTHS, dtype=np.int64)[idx[:, self.columns("depths")]]
        active = np.repeat(depth, MAX_DEPTH, axis=1) > _SLOT_IN_STAGE  # (n, 20)
        kernel_expand = 3 * idx[:, self.columns("kernels")] + idx[:, self.columns("expands")]
        slots = 2 * n_res + (np.arange(n_slots) * n_res + r) * 9 + kernel_expand
        head = (2 + 9 * n_slots + np.arange(4)) * n_res + r
        return np.concatenate([r, n_res + r, np.where(active, slots, -1), head], axis=1)

    # ---- blocks --------------------------------------------------------------------------
    def blocks(self, arch: Arch) -> list[Block]:
        a: OFAArch = arch  # type: ignore[assignment]
        return list(_make_blocks(self.cfg, a.resolution, a.depths, a.kernels, a.expands,
                                 self.num_classes))


def _active_mask(depths: Sequence[int]) -> list[bool]:
    return [i < d for d in depths for i in range(MAX_DEPTH)]


def _canonical_dict(data: Any) -> Any:
    """``data`` with inactive slots canonicalised when its shape allows (else unchanged)."""
    if not isinstance(data, dict):
        return data
    d, k, e = data.get("depths"), data.get("kernels"), data.get("expands")
    n = NUM_STAGES * MAX_DEPTH
    if not (isinstance(d, list | tuple) and len(d) == NUM_STAGES and all(x in DEPTHS for x in d)
            and isinstance(k, list | tuple) and isinstance(e, list | tuple)
            and len(k) == len(e) == n):
        return data  # validation reports what is wrong
    k, e = list(k), list(e)
    _canonicalize_lists(d, k, e)  # out-of-set values stay, so that validation names them
    return {**data, "kernels": k, "expands": e}


def _canonicalize_lists(depths: Sequence[int], kernels: list[Any], expands: list[Any]) -> None:
    for slot, on in enumerate(_active_mask(depths)):
        if not on:
            if kernels[slot] in KERNELS:
                kernels[slot] = KERNELS[0]
            if expands[slot] in EXPANDS:
                expands[slot] = EXPANDS[0]


def _conv_out(h: int, stride: int) -> int:
    # odd kernel, padding k // 2: floor((h - 1) / s) + 1
    return (h - 1) // stride + 1


@lru_cache(maxsize=1 << 16)
def _make_blocks(
    cfg: OFAMobileNetV3Cfg,
    res: int,
    depths: tuple[int, ...],
    kernels: tuple[int, ...],
    expands: tuple[int, ...],
    num_classes: int,
) -> tuple[Block, ...]:
    w = cfg.widths
    h = _conv_out(res, 2)
    out = [
        Block("ofa_first_conv", "first_conv", res, h, 3, w[0], stride=2, kernel=3, act="hswish"),
        Block("ofa_mbconv", "first_block", h, h, w[0], w[1], stride=1, kernel=3, mid=w[0],
              expand=1, act="relu", shortcut="identity" if w[0] == w[1] else "none"),
    ]
    cin = w[1]
    for s in range(NUM_STAGES):
        cout = w[2 + s]
        for i in range(depths[s]):
            slot = s * MAX_DEPTH + i
            stride = STAGE_STRIDES[s] if i == 0 else 1
            h_out = _conv_out(h, stride)
            mid = mid_channels(cin, expands[slot])
            out.append(Block(
                "ofa_mbconv", STAGES[s], h, h_out, cin, cout, stride=stride,
                kernel=kernels[slot], mid=mid, expand=expands[slot],
                se_mid=se_channels(mid) if STAGE_SE[s] else 0, act=STAGE_ACTS[s],
                shortcut="identity" if stride == 1 and cin == cout else "none",
            ))
            cin, h = cout, h_out
    out += [
        Block("ofa_final_expand", "head", h, h, cin, cfg.final_expand, kernel=1, act="hswish"),
        Block("ofa_pool", "head", h, 1, cfg.final_expand, cfg.final_expand),
        Block("ofa_feature_mix", "head", 1, 1, cfg.final_expand, cfg.feature_mix, kernel=1,
              act="hswish"),
        Block("ofa_classifier", "head", 1, 1, cfg.feature_mix, num_classes,
              classes=num_classes),
    ]
    return tuple(out)


# ---- cost rules (MACs and parameters of the built modules) -------------------------------------
def _conv_bn_flops(b: Block) -> int:
    return b.cin * b.cout * b.kernel**2 * b.hw_out**2


def _conv_bn_params(b: Block) -> int:
    return b.cin * b.cout * b.kernel**2 + 2 * b.cout


def _mbconv_flops(b: Block) -> int:
    total = b.cin * b.mid * b.hw_in**2 if b.expand != 1 else 0
    total += b.mid * b.kernel**2 * b.hw_out**2 + b.mid * b.cout * b.hw_out**2
    if b.se_mid:
        total += 2 * b.mid * b.se_mid
    return total


def _mbconv_params(b: Block) -> int:
    total = b.cin * b.mid + 2 * b.mid if b.expand != 1 else 0
    total += b.mid * b.kernel**2 + 2 * b.mid + b.mid * b.cout + 2 * b.cout
    if b.se_mid:
        total += 2 * b.mid * b.se_mid + b.se_mid + b.mid
    return total


def _zero(b: Block) -> int:
    return 0


def _feature_mix_cost(b: Block) -> int:
    return b.cin * b.cout


def _classifier_flops(b: Block) -> int:
    return b.cin * b.classes


def _classifier_params(b: Block) -> int:
    return b.cin * b.classes + b.classes


register_block_kind("ofa_first_conv", _conv_bn_flops, _conv_bn_params)
register_block_kind("ofa_mbconv", _mbconv_flops, _mbconv_params)
register_block_kind("ofa_final_expand", _conv_bn_flops, _conv_bn_params)
register_block_kind("ofa_pool", _zero, _zero)
register_block_kind("ofa_feature_mix", _feature_mix_cost, _feature_mix_cost)
register_block_kind("ofa_classifier", _classifier_flops, _classifier_params)


# ---- variant table and registered entry points ------------------------------------------------
SPACE_CFGS: dict[str, OFAMobileNetV3Cfg] = {
    "ofa_mbv3": _cfg(1.0),
    "ofa_mbv3_w12": _cfg(1.2),
}

for _name in SPACE_CFGS:
    register_space_factory(_name, partial(OFAMobileNetV3Space, _name))
