"""The latency model of a language-model device: parts (encoder/decoder, prefill/decode) of an
architecture's features, and which of them a latency *means*.

A device imported from HAT's CSVs (``nas hw import --format hat-csv``) has the parts
``encoder`` and ``decoder`` over HAT's 10 features; a device ``nas profile`` measured for
``elastic_lm`` has ``prefill`` (the prompt in one forward) and ``decode`` (ms per generated
token, the mean over a growing KV cache) over :func:`lm_features`. A *measure* names the parts
summed into the number ``predict`` returns:

* HAT devices: ``end_to_end`` (HAT's target, the default), ``encoder``, ``decoder``;
* LM devices: ``decode`` (ms per token, the default), ``prefill``.

``get_device("NAME")`` answers the default; ``get_device("NAME:prefill")`` another measure
(the suffix is the edge's string; :func:`lm_measures` lists them). The device folder holds
``profile.json`` (``extra.model``: file, features, measures) and ``latency_model.json``
(:class:`~nasforge.hardware_models._seq_model.PartsRegressor`); nothing here loads torch.

Example:
    >>> import numpy as np
    >>> from nasforge.hardware_models._seq_model import PartsRegressor
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elastic_lm")
    >>> rng = np.random.default_rng(0)
    >>> archs = [space.sample(rng) for _ in range(40)]
    >>> x = lm_features(archs)
    >>> ms = {"prefill": 0.01 * x[:, 3] + 1.0, "decode": 0.001 * x[:, 4] + 0.2}
    >>> reg = PartsRegressor.fit(x, LM_FEATURES, ms, LM_TERMS)
    >>> model = FeatureLatencyModel(DeviceProfile("toy"), reg, "lm",
    ...                             {"prefill": ("prefill",), "decode": ("decode",)}, "decode")
    >>> bool(abs(model.predict(archs[0]) - ms["decode"][0]) < 1e-6)
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nasforge.errors import InvalidInputError
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._seq_model import PartsRegressor
from nasforge.hardware_models.base import BlockLatency
from nasforge.hardware_models.base import LatencyModel
from nasforge.search_spaces.block import Block
from nasforge.structured import load_structured

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch

__all__ = [
    "FEATURE_SETS",
    "LM_FEATURES",
    "LM_TERMS",
    "FeatureLatencyModel",
    "is_feature_device",
    "lm_features",
    "load_feature_model",
    "local_lm_device",
    "split_measure",
]

#: The features of an ``elastic_lm`` architecture the prefill/decode model reads.
#: ``*_sum`` are summed over the active layers (the work of all layers, not an average).
LM_FEATURES: tuple[str, ...] = (
    "embed_dim", "layer_num", "context_length", "ffn_embed_dim_sum",
    "self_attention_heads_sum", "prompt_tokens",
)

#: Prefill over P prompt tokens: per layer projections (d^2), FFN (d x ffn), attention scores
#: (P x heads), per-layer call overheads, the output projection (d), a constant. Decode, per
#: token: the same with one token and a cache of about P + steps / 2 rows.
LM_TERMS: dict[str, tuple[str, ...]] = {
    "prefill": ("1", "embed_dim*prompt_tokens", "layer_num*embed_dim*embed_dim*prompt_tokens",
                "embed_dim*ffn_embed_dim_sum*prompt_tokens",
                "self_attention_heads_sum*prompt_tokens*prompt_tokens",
                "self_attention_heads_sum", "layer_num"),
    "decode": ("1", "embed_dim", "layer_num*embed_dim*embed_dim", "embed_dim*ffn_embed_dim_sum",
               "self_attention_heads_sum*prompt_tokens", "self_attention_heads_sum",
               "layer_num"),
}
#: feature-set name -> the feature names its model reads.
FEATURE_SETS: dict[str, tuple[str, ...]] = {"lm": LM_FEATURES}
MEASURE_SEP = ":"


def lm_features(archs: Sequence[Arch], prompt_tokens: int | None = None) -> np.ndarray:
    """:data:`LM_FEATURES` of ``elastic_lm`` architectures, shape (len(archs), 6).

    Args:
        archs: :class:`~nasforge.search_spaces._elastic_lm.ElasticLMArch` instances.
        prompt_tokens: prompt length; default half each arch's ``context_length`` (the
            profiling protocol's prompt, :mod:`~nasforge.hardware_models.profiling._lm`).
    """
    out = np.zeros((len(archs), len(LM_FEATURES)), dtype=np.float64)
    for i, a in enumerate(archs):
        p = prompt_tokens if prompt_tokens is not None else a.context_length // 2  # type: ignore[attr-defined]
        out[i] = (a.embed_dim, a.layer_num, a.context_length,  # type: ignore[attr-defined]
                  sum(a.ffn_embed_dim), sum(a.self_attention_heads), p)  # type: ignore[attr-defined]
    return out


def local_lm_device(device: str, space: str) -> str:
    """``cpu-local[:measure]`` for a language-model ``space`` -> ``cpu-local-<space>[:measure]``
    (the folder ``nas profile --space <space>`` writes); any other name unchanged."""
    base, measure = split_measure(device)
    if base != "cpu-local":
        return device
    return f"cpu-local-{space}" + ("" if measure is None else f"{MEASURE_SEP}{measure}")


def split_measure(device: str) -> tuple[str, str | None]:
    """``"NAME:measure"`` -> ``("NAME", "measure")``; a plain name -> ``(name, None)``."""
    name, sep, measure = device.partition(MEASURE_SEP)
    return (name, measure) if sep else (device, None)


class FeatureLatencyModel(LatencyModel):
    """A device whose latency is a sum of parts predicted from an architecture's features.

    Args:
        profile: the device profile.
        regressor: the parts model.
        features: ``hat`` (the space's ``hat_features_many``) or ``lm`` (:func:`lm_features`).
        measures: measure name -> the parts it sums.
        measure: the measure ``predict`` returns.

    Raises:
        InvalidInputError: an unknown measure or feature set, or a measure naming a part the
            regressor lacks.
    """

    def __init__(self, profile: DeviceProfile, regressor: PartsRegressor, features: str,
                 measures: Mapping[str, Sequence[str]], measure: str) -> None:
        if features not in ("hat", *FEATURE_SETS):
            raise InvalidInputError(f"feature set must be hat or {', '.join(FEATURE_SETS)}, "
                                    f"got {features!r}")
        if measure not in measures:
            raise InvalidInputError(f"device {profile.name!r} has the latency measures "
                                    f"{', '.join(measures)}; got {measure!r}")
        for m, parts in measures.items():
            lacking = [p for p in parts if p not in regressor.parts]
            if lacking:
                raise InvalidInputError(f"device {profile.name!r}: measure {m!r} sums parts "
                                        f"{', '.join(lacking)} the model lacks")
        self.profile = profile
        self.regressor = regressor
        self.features = features
        self.measures = {m: tuple(p) for m, p in measures.items()}
        self.measure = measure

    def feature_matrix(self, archs: Sequence[Arch]) -> np.ndarray:
        """The features the model reads, shape (len(archs), F)."""
        if self.features == "lm":
            return lm_features(archs)
        from nasforge.search_spaces import get_space

        spaces = {a.space for a in archs}
        out = np.zeros((len(archs), len(self.regressor.feature_names)))
        for name in spaces:
            space = get_space(name)
            if not hasattr(space, "hat_features_many"):
                raise InvalidInputError(f"device {self.name!r} predicts HAT SubTransformers; "
                                        f"space {name!r} has no HAT features")
            idx = [i for i, a in enumerate(archs) if a.space == name]
            out[idx] = space.hat_features_many([archs[i] for i in idx])
        return out

    def predict_parts(self, archs: Sequence[Arch]) -> dict[str, np.ndarray]:
        """Part name -> ms, each of shape (len(archs),)."""
        return self.regressor.predict_parts(self.feature_matrix(archs))

    def predict_many(self, archs: Sequence[Arch]) -> np.ndarray:
        if not archs:
            return np.zeros(0, dtype=np.float64)
        return self.regressor.predict(self.feature_matrix(archs), self.measures[self.measure])

    def explain(self, arch: Arch) -> list[BlockLatency]:
        """One row per part of the measure (the block is a placeholder naming the part)."""
        parts = self.predict_parts([arch])
        return [BlockLatency(Block(p, p, 0, 0, 0, 0), f"{self.features}:{p}",
                             float(parts[p][0]), "predicted", "parts model")
                for p in self.measures[self.measure]]

    def with_measure(self, measure: str) -> FeatureLatencyModel:
        """The same device answering ``measure``."""
        return FeatureLatencyModel(self.profile, self.regressor, self.features, self.measures,
                                   measure)


def is_feature_device(profile: DeviceProfile) -> bool:
    """Whether ``profile`` describes a parts model (``extra.model.kind == "parts"``)."""
    model = profile.extra.get("model")
    return isinstance(model, dict) and model.get("kind") == "parts"


def load_feature_model(folder: Path, measure: str | None = None) -> FeatureLatencyModel:
    """The parts model stored in a device folder (``profile.json`` + its model file).

    Raises:
        InvalidInputError: malformed files or an unknown measure.
    """
    folder = Path(folder)
    profile = DeviceProfile.load(folder)
    spec = profile.extra.get("model")
    if not is_feature_device(profile) or not isinstance(spec, dict):
        raise InvalidInputError(f"{folder}: profile.json has no parts latency model")
    try:
        path = folder / str(spec["file"])
        reg = PartsRegressor.from_dict(load_structured(path, "latency model", kind="json"),
                                       str(path))
        measures = {str(k): tuple(v) for k, v in dict(spec["measures"]).items()}
        return FeatureLatencyModel(profile, reg, str(spec["features"]), measures,
                                   measure or str(spec["default"]))
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidInputError(f"{folder}: malformed parts latency model: {e}") from None
