"""ElasticViT's own architecture format: the repository's 10-field tuple.

The ElasticViT repository (microsoft/Moonlit, ``ElasticViT/models``) describes a subnet as
``(res, channels, depths, conv_ratio, kernel, mlp_ratio, num_heads, window, qk_scale,
v_scale)`` with one entry per layer; the space shares those per stage.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> t = arch_to_elasticvit_tuple(space.min_arch())
    >>> arch_from_elasticvit_tuple(space, t) == space.min_arch()
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces._elasticvit import HEAD_DIM
from nasforge.search_spaces._elasticvit import ElasticViTArch
from nasforge.search_spaces._elasticvit import ElasticViTSpace

__all__ = ["arch_from_elasticvit_tuple", "arch_to_elasticvit_tuple"]


def arch_to_elasticvit_tuple(arch: ElasticViTArch) -> list[Any]:
    """ElasticViT's 10-field tuple ``(res, channels, depths, conv_ratio, kernel, mlp_ratio,
    num_heads, window, qk_scale, v_scale)``, per CNN layer (stem incl.) and per T layer."""
    if any(k != "softmax" for k in arch.attention):
        raise InvalidArchitectureError(
            f"the elasticvit-tuple format holds softmax attention only, but attention = "
            f"{list(arch.attention)}"
        )
    d = arch.depths
    conv_ratio = [1] * d[0] + [arch.expands[0]] * d[1] + [arch.expands[1]] * d[2]
    kernel = [arch.kernels[0]] * d[0] + [arch.kernels[1]] * d[1] + [arch.kernels[2]] * d[2]
    mlp, heads, window, qk, v = [], [], [], [], []
    for t in range(4):
        n = d[3 + t]
        mlp += [arch.mlp_ratios[t]] * n
        heads += [arch.widths[3 + t] // HEAD_DIM] * n
        window += [1] * n
        qk += [1] * n
        v += [arch.v_scales[t]] * n
    return [arch.resolution, list(arch.widths), list(d), conv_ratio, kernel, mlp, heads, window,
            qk, v]


def arch_from_elasticvit_tuple(space: ElasticViTSpace, data: Sequence[Any]) -> ElasticViTArch:
    """Parse ElasticViT's 10-field tuple (see :func:`arch_to_elasticvit_tuple`) and validate it.

    Raises:
        InvalidInputError: the tuple is malformed (length, types, per-layer list lengths).
        InvalidArchitectureError: a value is outside the space, or per-layer values differ within
            a stage (the space shares them per stage).
    """
    names = ("res", "channels", "depths", "conv_ratio", "kernel", "mlp_ratio", "num_heads",
             "window", "qk_scale", "v_scale")
    if not isinstance(data, list | tuple) or len(data) != 10:
        raise InvalidInputError(
            f"an elasticvit tuple has 10 fields ({', '.join(names)}), got "
            f"{len(data) if isinstance(data, list | tuple) else type(data).__name__}"
        )
    res, ch, dep, ratio, kern, mlp, heads, window, qk, vs = data
    for name, val in zip(names[1:], data[1:], strict=True):
        if not isinstance(val, list | tuple) or not all(isinstance(x, int | float) for x in val):
            raise InvalidInputError(f"elasticvit tuple field {name} must be a list of numbers, "
                                    f"got {val!r}")
    if not isinstance(res, int):
        raise InvalidInputError(f"elasticvit tuple field res must be an int, got {res!r}")
    if len(ch) != 7 or len(dep) != 7:
        raise InvalidInputError(
            f"channels and depths list the 7 stages (stem, C1, C2, T1..T4), got {len(ch)} and "
            f"{len(dep)}"
        )
    dep = [int(x) for x in dep]
    n_cnn, n_t = sum(dep[:3]), sum(dep[3:])
    for name, val, n in (("conv_ratio", ratio, n_cnn), ("kernel", kern, n_cnn), ("mlp_ratio", mlp,
                         n_t), ("num_heads", heads, n_t), ("window", window, n_t),
                         ("qk_scale", qk, n_t), ("v_scale", vs, n_t)):
        if len(val) != n:
            raise InvalidInputError(
                f"elasticvit tuple field {name} needs one value per layer ({n} for depths "
                f"{dep}), got {len(val)}"
            )

    def per_stage(name: str, values: Sequence[Any], starts: Sequence[int], lens: Sequence[int]
                  ) -> list[int]:
        out = []
        for s, (a, n) in enumerate(zip(starts, lens, strict=True)):
            seg = [int(x) for x in values[a:a + n]]
            if len(set(seg)) > 1:
                raise InvalidArchitectureError(
                    f"{name} differs within stage {s} ({seg}); {space.name} shares it per stage"
                )
            out.append(seg[0])
        return out

    cnn_starts = [0, dep[0], dep[0] + dep[1]]
    t_starts = [sum(dep[3:3 + t]) for t in range(4)]
    ratios = per_stage("conv_ratio", ratio, cnn_starts, dep[:3])
    if ratios[0] != 1:
        raise InvalidArchitectureError(f"conv_ratio of the stem must be 1, got {ratios[0]}")
    for name, val in (("window", window), ("qk_scale", qk)):
        if any(int(x) != 1 for x in val):
            raise InvalidArchitectureError(f"{name} must be 1 in every layer (global attention, "
                                           f"qk head dim 16), got {list(val)}")
    hs = per_stage("num_heads", heads, t_starts, dep[3:])
    for t, h in enumerate(hs):
        if h != int(ch[3 + t]) // HEAD_DIM:
            raise InvalidArchitectureError(
                f"num_heads of T{t + 1} must be channels // 16 = {int(ch[3 + t]) // HEAD_DIM}, "
                f"got {h}"
            )
    arch = ElasticViTArch(
        space=space.name,
        resolution=res,
        widths=tuple(int(x) for x in ch),
        depths=tuple(dep),
        kernels=tuple(per_stage("kernel", kern, cnn_starts, dep[:3])),
        expands=tuple(ratios[1:]),
        mlp_ratios=tuple(per_stage("mlp_ratio", mlp, t_starts, dep[3:])),
        v_scales=tuple(per_stage("v_scale", vs, t_starts, dep[3:])),
        attention=("softmax",) * 4,
    )
    space.validate(arch)
    return arch
