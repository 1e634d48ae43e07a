"""What a latency key says about the work a block does: parsed fields, op counts, features.

Everything here is a function of the *key* (the tables hold keys, not blocks), so the same code
serves fitting on a table, predicting keys no table holds, and the analytical estimate.

Op families (the columns of :func:`op_terms`), in multiply-accumulates or elements:

* ``dense``: 1x1 convolutions, full convolutions and linear layers (MACs);
* ``dw``: depthwise convolutions (MACs);
* ``attn``: token-by-token matrix products of attention (MACs);
* ``bytes``: activations read and written plus weights, in fp32 bytes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._blockkeys import block_fields
from nasforge.hardware_models._blockkeys import block_terms
from nasforge.hardware_models._blockkeys import is_block_key
from nasforge.hardware_models._keys import key_family

__all__ = [
    "FEATURE_FAMILIES",
    "OP_FAMILIES",
    "feature_matrix",
    "features",
    "op_terms",
    "parse_key",
]

OP_FAMILIES: tuple[str, ...] = ("dense", "dw", "attn", "bytes")
HEAD_DIM = 16
BYTES = 4  # fp32

#: key family -> the integer fields its keys carry, in order.
_NNMETER_FIELDS: dict[str, tuple[tuple[str, int], ...]] = {
    # (field name, position among the "_"-split parts after the family)
    "firstconv": (("res", 0), ("cin", 1), ("cout", 2), ("stride", 3), ("k", 4)),
    "conv": (("hw", 0), ("cin", 1), ("cout", 2), ("e", 3), ("stride", 4), ("k", 7)),
    "transds": (("hw", 0), ("cin", 1), ("cout", 2), ("stride", 3), ("e", 4)),
    "transattn": (("hw", 0), ("c", 1), ("v", 4)),
    "transattnlinear": (("hw", 0), ("c", 1), ("v", 4)),
    "transattnwindow": (("hw", 0), ("c", 1), ("v", 4), ("w", 5)),
    "transffn": (("hw", 0), ("c", 1), ("m", 2)),
    "mbpool": (("hw", 0), ("c", 1), ("out", 2), ("mul", 3)),
}
_OFA_FAMILIES = ("expanded_conv", "Conv", "Conv_1", "AvgPool2D", "Conv_2", "Logits", "ofa_head")

#: families :func:`features` knows.
FEATURE_FAMILIES: tuple[str, ...] = (*_NNMETER_FIELDS, *_OFA_FAMILIES)


@lru_cache(maxsize=1 << 17)
def parse_key(key: str) -> dict[str, int]:
    """The integer fields of a key (``hw``, ``cin``, ``cout``, ``e``, ``k``, ``se``, ...).

    Block-shape keys (``kind:field=value;...``) give every integer Block field and a code per
    categorical field (:func:`~nasforge.hardware_models._blockkeys.block_fields`).

    Raises:
        InvalidInputError: the key does not follow its family's pattern.
        MissingLatencyError: the family is unknown (no features, hence no prediction).
    """
    if is_block_key(key):
        return block_fields(key)
    fam = key_family(key)
    try:
        if fam in _NNMETER_FIELDS:
            parts = key.split("_")[1:]
            out = {name: int(parts[i]) for name, i in _NNMETER_FIELDS[fam]}
            if fam == "conv":
                out["se"] = int(parts[8] == "se")
            return out
        if fam in _OFA_FAMILIES and fam != "ofa_head":
            return _parse_ofa(key)
    except (IndexError, ValueError):
        raise InvalidInputError(
            f"latency key {key!r} does not follow the pattern of family {fam!r}; see "
            "nasforge.hardware_models._keys for the key formats") from None
    if fam == "ofa_head":
        return {}
    raise MissingLatencyError(
        f"no features for latency-key family {fam!r} (key {key!r}); known families: "
        f"{', '.join(FEATURE_FAMILIES)}")


def _parse_ofa(key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in key.split("-")[1:]:
        name, _, value = part.partition(":")
        if name in ("input", "output"):
            dims = [int(x) for x in value.split("x")]
            if len(dims) == 3:
                out[f"{name}_hw"], out[f"{name}_c"] = dims[0], dims[2]
            else:
                out[f"{name}_hw"], out[f"{name}_c"] = 1, dims[0]
        else:
            out[name] = int(value)
    return out


@lru_cache(maxsize=1 << 17)
def op_terms(key: str) -> tuple[float, float, float, float]:
    """``(dense, dw, attn, bytes)`` of the block a key describes (see the module docstring)."""
    if is_block_key(key):
        return block_terms(key)
    fam = key_family(key)
    if fam == "ofa_head":
        parts = [op_terms(p) for p in key.split("+")]
        return tuple(float(sum(x)) for x in zip(*parts, strict=True))  # type: ignore[return-value]
    f = parse_key(key)
    dense = dw = attn = elems = weights = 0.0
    if fam == "firstconv":
        ho = f["res"] // f["stride"]
        dense = f["cin"] * f["cout"] * f["k"] ** 2 * ho**2
        elems = f["res"] ** 2 * f["cin"] + 2 * ho**2 * f["cout"]
        weights = f["cin"] * f["cout"] * f["k"] ** 2
    elif fam in ("conv", "transds"):
        h, cin, cout, e, s = f["hw"], f["cin"], f["cout"], f["e"], f["stride"]
        k = f.get("k", 3)
        se = f.get("se", 1)
        ho, mid = h // s, cin * e
        expand = cin * mid * h**2 if e > 1 else 0
        short = cin * cout * ho**2 if (s > 1 and cin != cout) else 0
        dense = expand + mid * cout * ho**2 + short + (2 * mid * (mid // 4) if se else 0)
        dw = mid * k**2 * ho**2
        elems = cin * h**2 + (3 * mid * h**2 if e > 1 else 0) + 3 * mid * ho**2 + 3 * cout * ho**2
        weights = (cin * mid if e > 1 else 0) + mid * k**2 + mid * cout + (cin * cout if short
                                                                           else 0)
    elif fam.startswith("transattn"):
        h, c, v = f["hw"], f["c"], f["v"]
        n, heads = h * h, max(c // HEAD_DIM, 1)
        vv = HEAD_DIM * v
        dense = n * c * heads * (2 * HEAD_DIM + vv) + n * heads * vv * c
        dw = 9 * n * heads * vv
        elems = 4 * n * c + 3 * n * heads * (2 * HEAD_DIM + vv) + 2 * n * heads * vv
        weights = c * heads * (2 * HEAD_DIM + vv) + heads * vv * c
        if fam == "transattn":
            attn = heads * n * n * (HEAD_DIM + vv)
            elems += 3 * heads * n * n
        elif fam == "transattnlinear":
            attn = 2 * heads * n * HEAD_DIM * vv + heads * n * HEAD_DIM
            elems += 3 * n * heads * HEAD_DIM + 2 * heads * HEAD_DIM * vv
        else:
            w = max(min(f["w"], h), 1)
            nw = math.ceil(h / w) ** 2
            attn = nw * heads * w**4 * (HEAD_DIM + vv)
            elems += 3 * nw * heads * w**4 + 2 * (nw * w * w - n) * c
    elif fam == "transffn":
        n, c, m = f["hw"] ** 2, f["c"], f["m"]
        dense = 2 * n * c * m * c
        elems = 3 * n * c + 3 * n * c * m
        weights = 2 * c * m * c
    elif fam == "mbpool":
        n, c, out, mul = f["hw"] ** 2, f["c"], f["out"], f["mul"]
        dense = n * c * c * mul + c * mul * out + out * 1000
        elems = n * c + 3 * n * c * mul + c * mul + out
        weights = c * c * mul + c * mul * out + out * 1000
    elif fam == "expanded_conv":
        h, cin, ho, cout = f["input_hw"], f["input_c"], f["output_hw"], f["output_c"]
        mid, k = f["expand"], f["kernel"]
        expand = cin * mid * h**2 if mid != cin else 0
        dense = expand + mid * cout * ho**2 + (2 * mid * (mid // 4) if f["se"] else 0)
        dw = mid * k**2 * ho**2
        elems = cin * h**2 + (3 * mid * h**2 if expand else 0) + 3 * mid * ho**2 + 2 * cout * ho**2
        weights = (cin * mid if expand else 0) + mid * k**2 + mid * cout
    elif fam in ("Conv", "Conv_1", "Conv_2", "Logits"):
        h, cin, ho, cout = f["input_hw"], f["input_c"], f["output_hw"], f["output_c"]
        k = 3 if fam == "Conv" else 1
        dense = cin * cout * k * k * ho**2
        elems = cin * h**2 + 2 * cout * ho**2
        weights = cin * cout * k * k
    elif fam == "AvgPool2D":
        elems = f["input_hw"] ** 2 * f["input_c"] + f["input_c"]
    return float(dense), float(dw), float(attn), float(BYTES * (elems + weights))


def features(key: str) -> np.ndarray:
    """The regressor features of a key: its integer fields, then log1p of each op term and of
    the total MACs. Keys of one family always give vectors of one length."""
    fields = parse_key(key)
    terms = op_terms(key)
    macs = terms[0] + terms[1] + terms[2]
    return np.asarray([*fields.values(), *(math.log1p(t) for t in terms), math.log1p(macs)],
                      dtype=np.float64)


def feature_matrix(keys: list[str]) -> np.ndarray:
    """Stack :func:`features` of keys of one family: shape ``(len(keys), n_features)``."""
    return np.stack([features(k) for k in keys]) if keys else np.zeros((0, 0))
