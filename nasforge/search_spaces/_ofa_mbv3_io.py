"""Once-for-All's exchange formats for the ``ofa_mbv3`` spaces.

OFA's ``net.config`` JSON (the layout of its released specialized sub-networks, read by
``MobileNetV3.build_from_config``) and its sub-network dict ``{"ks", "e", "d", "r"}``, both
ways, with errors that name the field path, the value and the allowed set.
Once-for-All: Train One Network and Specialize it for Efficient Deployment,
https://arxiv.org/abs/1908.09791
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import InvalidArchitectureError
from nasforge.errors import InvalidInputError
from nasforge.search_spaces._ofa_mbv3 import _OFA_ACT
from nasforge.search_spaces._ofa_mbv3 import DEPTHS
from nasforge.search_spaces._ofa_mbv3 import EXPANDS
from nasforge.search_spaces._ofa_mbv3 import KERNELS
from nasforge.search_spaces._ofa_mbv3 import MAX_DEPTH
from nasforge.search_spaces._ofa_mbv3 import NUM_STAGES
from nasforge.search_spaces._ofa_mbv3 import SPACE_CFGS
from nasforge.search_spaces._ofa_mbv3 import STAGE_ACTS
from nasforge.search_spaces._ofa_mbv3 import STAGE_SE
from nasforge.search_spaces._ofa_mbv3 import STAGE_STRIDES
from nasforge.search_spaces._ofa_mbv3 import OFAArch
from nasforge.search_spaces._ofa_mbv3 import OFAMobileNetV3Cfg
from nasforge.search_spaces._ofa_mbv3 import OFAMobileNetV3Space
from nasforge.search_spaces._ofa_mbv3 import _make_blocks
from nasforge.search_spaces._ofa_mbv3 import mid_channels
from nasforge.search_spaces.block import Block
from nasforge.search_spaces.registry import get_space

__all__ = [
    "arch_from_ofa_config",
    "arch_from_ofa_subnet",
    "arch_to_ofa_config",
    "arch_to_ofa_subnet",
]


# ---- OFA's sub-network dict {"ks", "e", "d", "r"} ---------------------------------------------
def arch_to_ofa_subnet(arch: OFAArch) -> dict[str, list[int]]:
    """OFA's ``set_active_subnet`` dict: ``{"ks": [20], "e": [20], "d": [5], "r": [res]}``."""
    return {"ks": list(arch.kernels), "e": list(arch.expands), "d": list(arch.depths),
            "r": [arch.resolution]}


def arch_from_ofa_subnet(space: OFAMobileNetV3Space, subnet: dict[str, Any],
                         resolution: int | None = None) -> OFAArch:
    """Parse OFA's sub-network dict (inactive slots may hold anything; they are canonicalised).

    Args:
        space: the variant the sub-network belongs to.
        subnet: ``{"ks": [20], "e": [20], "d": [5]}`` and optionally ``"r": [res]``.
        resolution: the input size when ``subnet`` has no ``"r"``.

    Raises:
        InvalidInputError: a key is missing or malformed.
        InvalidArchitectureError: a value is outside the space.
    """
    if not isinstance(subnet, dict):
        raise InvalidInputError(f"an OFA sub-network is a dict with keys ks, e, d (and r), "
                                f"got {type(subnet).__name__}")
    for key, n in (("ks", 20), ("e", 20), ("d", 5)):
        v = subnet.get(key)
        if not isinstance(v, list | tuple) or len(v) != n:
            raise InvalidInputError(f"OFA sub-network key {key!r} must be a list of {n} ints, "
                                    f"got {v!r}")
    r = subnet.get("r")
    if r is not None:
        r = r[0] if isinstance(r, list | tuple) and len(r) == 1 else r
        if resolution is not None and resolution != r:
            raise InvalidInputError(f"resolution={resolution} contradicts the sub-network's "
                                    f"r = {r}; pass one of them")
        resolution = r
    if resolution is None:
        raise InvalidInputError("the OFA sub-network has no 'r'; pass resolution=")
    data = {"resolution": _as_int(resolution, "r"),
            "depths": [_as_int(x, f"d[{i}]") for i, x in enumerate(subnet["d"])],
            "kernels": [_as_int(x, f"ks[{i}]") for i, x in enumerate(subnet["ks"])],
            "expands": [_as_int(x, f"e[{i}]") for i, x in enumerate(subnet["e"])]}
    return space.arch_from_dict(data)  # type: ignore[return-value]


def _as_int(v: Any, path: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v):
        raise InvalidInputError(f"{path} must be an integer, got {v!r}")
    return int(v)


# ---- OFA's net.config ---------------------------------------------------------------------------
def arch_to_ofa_config(arch: OFAArch, num_classes: int = 1000, dropout_rate: float = 0.1
                       ) -> dict[str, Any]:
    """OFA's ``net.config`` dict of ``arch`` (the layout of the released specialized nets).

    Blocks use the released files' keys (``MobileInvertedResidualBlock`` with
    ``mobile_inverted_conv`` of name ``MBInvertedConvLayer``), which both old and current OFA
    ``MobileNetV3.build_from_config`` read. The resolution is not part of ``net.config`` (OFA
    keeps it in ``run.config`` as ``image_size``).

    Args:
        arch: an architecture of ``ofa_mbv3`` or ``ofa_mbv3_w12``.
        num_classes: classifier width.
        dropout_rate: the classifier's dropout (OFA's supernet default 0.1).
    """
    cfg = _cfg_of_space(arch.space)
    blocks = [b for b in _make_blocks(cfg, arch.resolution, arch.depths, arch.kernels,
                                      arch.expands, num_classes) if b.kind == "ofa_mbconv"]
    return {
        "name": "MobileNetV3",
        "bn": {"momentum": 0.1, "eps": 1e-05},
        "first_conv": _conv_layer(3, cfg.widths[0], 3, 2, "h_swish", use_bn=True),
        "blocks": [_block_config(b) for b in blocks],
        "final_expand_layer": _conv_layer(cfg.widths[-1], cfg.final_expand, 1, 1, "h_swish",
                                          use_bn=True),
        "feature_mix_layer": _conv_layer(cfg.final_expand, cfg.feature_mix, 1, 1, "h_swish",
                                         use_bn=False),
        "classifier": {"name": "LinearLayer", "in_features": cfg.feature_mix,
                       "out_features": num_classes, "bias": True, "use_bn": False,
                       "act_func": None, "dropout_rate": dropout_rate,
                       "ops_order": "weight_bn_act"},
    }


def _conv_layer(cin: int, cout: int, k: int, stride: int, act: str, use_bn: bool
                ) -> dict[str, Any]:
    return {"name": "ConvLayer", "kernel_size": k, "stride": stride, "dilation": 1, "groups": 1,
            "bias": False, "has_shuffle": False, "in_channels": cin, "out_channels": cout,
            "use_bn": use_bn, "act_func": act, "dropout_rate": 0, "ops_order": "weight_bn_act"}


def _block_config(b: Block) -> dict[str, Any]:
    conv = {"name": "MBInvertedConvLayer", "in_channels": b.cin, "out_channels": b.cout,
            "kernel_size": b.kernel, "stride": b.stride, "expand_ratio": b.expand,
            "mid_channels": None if b.expand == 1 else b.mid, "act_func": _OFA_ACT[b.act],
            "use_se": b.se_mid > 0}
    shortcut = None
    if b.shortcut == "identity":
        shortcut = {"name": "IdentityLayer", "in_channels": [b.cin], "out_channels": [b.cout],
                    "use_bn": False, "act_func": None, "dropout_rate": 0,
                    "ops_order": "weight_bn_act"}
    return {"name": "MobileInvertedResidualBlock", "mobile_inverted_conv": conv,
            "shortcut": shortcut}


def _cfg_of_space(name: str) -> OFAMobileNetV3Cfg:
    if name not in SPACE_CFGS:
        raise InvalidArchitectureError(
            f"architecture of space {name!r} is not a Once-for-All MobileNetV3; allowed spaces: "
            f"{', '.join(sorted(SPACE_CFGS))}"
        )
    return SPACE_CFGS[name]


def arch_from_ofa_config(space: OFAMobileNetV3Space | None, config: dict[str, Any],
                         resolution: int | None = None) -> OFAArch:
    """Parse OFA's ``net.config`` (a ``MobileNetV3`` sub-network) into an architecture.

    The width variant is inferred from the channels; ``space`` (or None to infer it) must be
    that variant. Both block layouts are read: released files (``mobile_inverted_conv``,
    ``MBInvertedConvLayer``) and current OFA (``conv``, ``MBConvLayer``). The classifier width
    is not part of the architecture (``build_static(space, arch, num_classes=...)`` sets it).

    Args:
        space: the expected variant, or None to pick it from the channels.
        config: the parsed ``net.config`` JSON; a top-level ``image_size`` or ``resolution``
            (``run.config``'s key merged in) gives the resolution.
        resolution: the input size when ``config`` has none.

    Raises:
        InvalidInputError: the config is malformed (missing keys, wrong types, no resolution).
        InvalidArchitectureError: the network is not in the space; the message names the field
            path (``blocks[5].mobile_inverted_conv.kernel_size``), the value and the allowed set.
    """
    space = _space_of(space, config)
    depths, kernels, expands = _read_stages(config, space.cfg)
    _check_head(config, space.cfg)
    arch = OFAArch(space=space.name, resolution=_resolution_of(config, resolution),
                   depths=tuple(depths), kernels=tuple(kernels), expands=tuple(expands))
    space.validate(arch)
    return arch


def _space_of(space: OFAMobileNetV3Space | None, config: dict[str, Any]) -> OFAMobileNetV3Space:
    """The width variant of ``config`` (by ``first_conv.out_channels``), checked against
    ``space`` when one is given, and the first conv checked."""
    if not isinstance(config, dict):
        raise InvalidInputError(f"an OFA net.config must be a JSON object, got "
                                f"{type(config).__name__}")
    first = _section(config, "first_conv")
    c0 = _int_field(first, "first_conv", "out_channels")
    by_width = {c.widths[0]: n for n, c in SPACE_CFGS.items()}
    if c0 not in by_width:
        raise InvalidArchitectureError(
            f"first_conv.out_channels = {c0} matches no Once-for-All MobileNetV3 width; allowed: "
            + ", ".join(f"{w} ({n})" for w, n in sorted(by_width.items()))
        )
    name = by_width[c0]
    if space is None:
        space = _get_space(name)
    elif space.cfg.widths[0] != c0:
        raise InvalidArchitectureError(
            f"first_conv.out_channels = {c0} is the width of {name!r} (width multiplier "
            f"{SPACE_CFGS[name].width_mult}), not of {space.name!r} (allowed: "
            f"{space.cfg.widths[0]}); load it with get_space({name!r}) or space=None"
        )
    _expect(first, "first_conv", "in_channels", {3})
    _expect(first, "first_conv", "kernel_size", {3})
    _expect(first, "first_conv", "stride", {2})
    _expect(first, "first_conv", "act_func", {"h_swish"})
    return space


def _read_stages(config: dict[str, Any], cfg: OFAMobileNetV3Cfg
                 ) -> tuple[list[int], list[int], list[int]]:
    """Depths, kernels and expands (inactive slots canonical) of the config's blocks."""
    blocks = config.get("blocks")
    if not isinstance(blocks, list) or not blocks:
        raise InvalidInputError("net.config field blocks must be a non-empty list of blocks")
    _check_block(blocks, 0, cfg.widths[0], cfg.widths[1], 1, 3, "relu", False, expand=1)
    pos, cin = 1, cfg.widths[1]
    depths: list[int] = []
    kernels: list[int] = []
    expands: list[int] = []
    for s in range(NUM_STAGES):
        cout = cfg.widths[2 + s]
        d = 0
        while pos < len(blocks) and _out_channels(blocks, pos) == cout:
            stride = STAGE_STRIDES[s] if d == 0 else 1
            k, e = _check_block(blocks, pos, cin, cout, stride, None, _OFA_ACT[STAGE_ACTS[s]],
                                STAGE_SE[s])
            kernels.append(k)
            expands.append(e)
            cin, d, pos = cout, d + 1, pos + 1
        if d not in DEPTHS:
            raise InvalidArchitectureError(
                f"stage {s + 1} (blocks of width {cout}, from blocks[{pos - d}]) has depth {d}; "
                f"allowed: {{{', '.join(map(str, DEPTHS))}}}"
            )
        depths.append(d)
        kernels += [KERNELS[0]] * (MAX_DEPTH - d)
        expands += [EXPANDS[0]] * (MAX_DEPTH - d)
    if pos != len(blocks):
        raise InvalidArchitectureError(
            f"blocks[{pos}].out_channels = {_out_channels(blocks, pos)} follows the last stage "
            f"(width {cfg.widths[-1]}); a sub-network has {pos} blocks here"
        )
    return depths, kernels, expands


def _check_head(config: dict[str, Any], cfg: OFAMobileNetV3Cfg) -> None:
    """The final expand, feature mix and classifier layers match the variant."""
    fe = _section(config, "final_expand_layer")
    _expect(fe, "final_expand_layer", "in_channels", {cfg.widths[-1]})
    _expect(fe, "final_expand_layer", "out_channels", {cfg.final_expand})
    _expect(fe, "final_expand_layer", "kernel_size", {1})
    fm = _section(config, "feature_mix_layer")
    _expect(fm, "feature_mix_layer", "in_channels", {cfg.final_expand})
    _expect(fm, "feature_mix_layer", "out_channels", {cfg.feature_mix})
    _expect(fm, "feature_mix_layer", "kernel_size", {1})
    _expect(fm, "feature_mix_layer", "use_bn", {False})
    cl = _section(config, "classifier")
    _expect(cl, "classifier", "in_features", {cfg.feature_mix})


def _resolution_of(config: dict[str, Any], resolution: int | None) -> int:
    """The input size: the config's ``image_size`` / ``resolution``, else ``resolution``."""
    res = config.get("image_size", config.get("resolution"))
    if res is not None and resolution is not None and res != resolution:
        raise InvalidInputError(f"resolution={resolution} contradicts the config's image_size "
                                f"= {res}; pass one of them")
    res = resolution if res is None else res
    if res is None:
        raise InvalidInputError(
            "net.config holds no input size (OFA keeps it in run.config as image_size); pass "
            "resolution="
        )
    return _as_int(res, "resolution")


def _get_space(name: str) -> OFAMobileNetV3Space:
    return get_space(name)  # type: ignore[return-value]


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    v = config.get(key)
    if not isinstance(v, dict):
        raise InvalidInputError(f"net.config field {key} must be an object, got {v!r}")
    return v


def _int_field(d: dict[str, Any], path: str, key: str) -> int:
    if key not in d:
        raise InvalidInputError(f"net.config field {path}.{key} is missing")
    return _as_int(d[key], f"{path}.{key}")


def _expect(d: dict[str, Any], path: str, key: str, allowed: set[Any]) -> Any:
    if key not in d:
        raise InvalidInputError(f"net.config field {path}.{key} is missing")
    v = d[key]
    if isinstance(v, float) and v == int(v):
        v = int(v)
    if v not in allowed or (isinstance(v, bool) and not any(isinstance(a, bool) for a in allowed)):
        shown = ", ".join(repr(a) if isinstance(a, str) else str(a)
                          for a in sorted(allowed, key=str))
        raise InvalidArchitectureError(
            f"{path}.{key} = {d[key]!r} is not allowed; allowed: {{{shown}}}"
        )
    return v


def _conv_of(blocks: list[Any], i: int) -> tuple[str, dict[str, Any]]:
    b = blocks[i]
    if not isinstance(b, dict):
        raise InvalidInputError(f"net.config blocks[{i}] must be an object, got {b!r}")
    for key in ("mobile_inverted_conv", "conv"):
        if isinstance(b.get(key), dict):
            return f"blocks[{i}].{key}", b[key]
    raise InvalidInputError(f"net.config blocks[{i}] needs a mobile_inverted_conv (or conv) "
                            "object")


def _out_channels(blocks: list[Any], i: int) -> int:
    path, conv = _conv_of(blocks, i)
    return _int_field(conv, path, "out_channels")


def _check_block(blocks: list[Any], i: int, cin: int, cout: int, stride: int,
                 kernel: int | None, act: str, se: bool, expand: int | None = None
                 ) -> tuple[int, int]:
    path, conv = _conv_of(blocks, i)
    _expect(conv, path, "in_channels", {cin})
    _expect(conv, path, "out_channels", {cout})
    _expect(conv, path, "stride", {stride})
    k = _expect(conv, path, "kernel_size", set(KERNELS) if kernel is None else {kernel})
    e = _expect(conv, path, "expand_ratio", set(EXPANDS) if expand is None else {expand})
    _expect(conv, path, "act_func", {act})
    _expect(conv, path, "use_se", {se})
    mid = conv.get("mid_channels")
    want = cin if e == 1 else mid_channels(cin, e)
    if mid is not None and mid != want:
        raise InvalidArchitectureError(
            f"{path}.mid_channels = {mid!r} is not allowed for in_channels {cin} and expand_ratio "
            f"{e}; allowed: {{{want}}} (make_divisible(round(in_channels * expand_ratio), 8))"
        )
    has_short = blocks[i].get("shortcut") is not None
    if has_short != (stride == 1 and cin == cout):
        raise InvalidArchitectureError(
            f"blocks[{i}].shortcut = {blocks[i].get('shortcut')!r} is not allowed: a block has "
            f"an identity shortcut exactly when stride == 1 and in_channels == out_channels "
            f"(stride {stride}, {cin} -> {cout}); allowed: "
            f"{'{IdentityLayer}' if stride == 1 and cin == cout else '{null}'}"
        )
    return int(k), int(e)
