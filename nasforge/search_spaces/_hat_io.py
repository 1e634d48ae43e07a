"""HAT's SubTransformer YAML (``configs/<task>/subtransformer/*.yml``), read and written.

HAT describes a SubTransformer with ten keys::

    encoder-embed-dim-subtransformer: 512
    decoder-embed-dim-subtransformer: 512
    encoder-ffn-embed-dim-all-subtransformer: [3072, 3072, 3072, 3072, 3072, 3072]
    decoder-ffn-embed-dim-all-subtransformer: [3072]
    encoder-layer-num-subtransformer: 6
    decoder-layer-num-subtransformer: 1
    encoder-self-attention-heads-all-subtransformer: [4, 8, 8, 8, 8, 8]
    decoder-self-attention-heads-all-subtransformer: [8]
    decoder-ende-attention-heads-all-subtransformer: [8]
    decoder-arbitrary-ende-attn-all-subtransformer: [1]

Per-layer lists longer than the layer count are read as HAT reads them (the first
``*-layer-num`` entries; HAT's sampler writes one entry per SuperTransformer layer); shorter
ones are an error. Other keys of a training config (``arch``, ``data``, ...) are ignored.

Example:
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("hat_wmt14ende")
    >>> a = space.min_arch()
    >>> arch_from_hat_config(space, arch_to_hat_config(a)) == a
    True
"""

from __future__ import annotations

from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.search_spaces._hat import HATArch
from nasforge.search_spaces._hat import HATSpace

__all__ = ["HAT_KEYS", "arch_from_hat_config", "arch_to_hat_config", "hat_config_to_yaml"]

#: HAT's SubTransformer key of each :class:`HATArch` field.
HAT_KEYS = {
    "encoder_embed_dim": "encoder-embed-dim-subtransformer",
    "decoder_embed_dim": "decoder-embed-dim-subtransformer",
    "encoder_ffn_embed_dim": "encoder-ffn-embed-dim-all-subtransformer",
    "decoder_ffn_embed_dim": "decoder-ffn-embed-dim-all-subtransformer",
    "encoder_layer_num": "encoder-layer-num-subtransformer",
    "decoder_layer_num": "decoder-layer-num-subtransformer",
    "encoder_self_attention_heads": "encoder-self-attention-heads-all-subtransformer",
    "decoder_self_attention_heads": "decoder-self-attention-heads-all-subtransformer",
    "decoder_ende_attention_heads": "decoder-ende-attention-heads-all-subtransformer",
    "decoder_arbitrary_ende_attn": "decoder-arbitrary-ende-attn-all-subtransformer",
}
_SCALARS = frozenset({"encoder_embed_dim", "decoder_embed_dim", "encoder_layer_num",
                      "decoder_layer_num"})
_DEPTH_KEY = {"encoder": "encoder_layer_num", "decoder": "decoder_layer_num"}


def arch_from_hat_config(space: HATSpace, data: Any) -> HATArch:
    """Read a HAT SubTransformer config (the parsed YAML mapping) as an arch of ``space``.

    Args:
        space: a ``hat_*`` space.
        data: the mapping of HAT's keys (see the module docstring).

    Returns:
        The validated architecture.

    Raises:
        InvalidInputError: not a mapping, a missing key, a non-integer value, or a per-layer
            list shorter than its layer count.
        InvalidArchitectureError: a value outside the space (names the field and the allowed
            set), e.g. more decoder layers than the space allows.
    """
    if not isinstance(data, dict):
        raise InvalidInputError(
            f"a HAT SubTransformer config is a mapping of {HAT_KEYS['encoder_embed_dim']}, ...; "
            f"got {type(data).__name__}")
    missing = [k for k in HAT_KEYS.values() if k not in data]
    if missing:
        raise InvalidInputError(
            f"the HAT SubTransformer config misses {', '.join(missing)}; it needs all of "
            f"{', '.join(HAT_KEYS.values())}")
    fields: dict[str, Any] = {}
    for field, key in HAT_KEYS.items():
        v = data[key]
        if field in _SCALARS:
            fields[field] = _int(key, v)
        else:
            if not isinstance(v, list | tuple):
                raise InvalidInputError(f"{key} must be a list (one value per layer), got {v!r}")
            fields[field] = [_int(key, x) for x in v]
    for field, value in list(fields.items()):
        if isinstance(value, list):
            n = fields[_DEPTH_KEY[field.split("_", 1)[0]]]
            if len(value) < n:
                raise InvalidInputError(
                    f"{HAT_KEYS[field]} holds {len(value)} values but "
                    f"{HAT_KEYS[_DEPTH_KEY[field.split('_', 1)[0]]]} is {n}; give one per layer")
            fields[field] = value[:n]
    return space.arch_from_dict(fields)  # type: ignore[return-value]


def _int(key: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidInputError(f"{key} must hold integers, got {v!r}")
    return v


def arch_to_hat_config(arch: HATArch) -> dict[str, Any]:
    """HAT's SubTransformer mapping of ``arch`` (lists of the active layers, HAT's key order)."""
    return {key: (list(v) if isinstance(v := getattr(arch, field), tuple) else v)
            for field, key in HAT_KEYS.items()}


def hat_config_to_yaml(arch: HATArch) -> str:
    """HAT's SubTransformer YAML text of ``arch`` (flow-style lists, as HAT's files)."""
    lines = []
    for key, v in arch_to_hat_config(arch).items():
        text = "[" + ", ".join(str(x) for x in v) + "]" if isinstance(v, list) else str(v)
        lines.append(f"{key}: {text}")
    return "\n".join(lines) + "\n"
