"""Language-model latency on this machine: prefill/decode (``elastic_lm``), encoder/decoder
(``hat_*``).

``nas profile --device cpu-local --space elastic_lm|hat_*`` and ``nas hw validate`` run here.
``elastic_lm`` (HAT's protocol scaled to the space): batch 1, a prompt of ``context_length // 2``
tokens (the ``prompt_tokens`` feature) run in one forward (**prefill**), then
:data:`DECODE_STEPS` tokens generated one at a time through the KV cache (**decode**; ms per
token = (prefill-and-generate - prefill) / steps, both estimates from the same interleaved
rounds). ``hat_*``: HAT's own protocol (:mod:`~._hat_profile`), encoder and decoder ms. Each
subnet is the static twin of its architecture (random weights: latency does not depend on their
values), timed by the shared interleaved protocol (:mod:`~._protocol`: pinned, one torch
thread, preempted samples set aside, the median of the faster half).

The fitted two-part model (:data:`~nasforge.hardware_models._lm_latency.LM_TERMS`, or HAT's
:data:`~nasforge.hardware_models._hat_csv.HAT_TERMS`) and the measurements
(``measurements.csv``) go to ``$NASFORGE_CACHE/devices/cpu-local-<space>/``; ``cpu-local`` with
a language space resolves there (:func:`lm_local_name`).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nasforge._paths import devices_cache_dir
from nasforge.hardware_models._lm_latency import LM_FEATURES
from nasforge.hardware_models._lm_latency import LM_TERMS
from nasforge.hardware_models._lm_latency import lm_features
from nasforge.hardware_models._lm_latency import load_feature_model
from nasforge.hardware_models._local import cpu_description
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._seq_model import PartsRegressor
from nasforge.hardware_models.profiling._protocol import default_cpus
from nasforge.hardware_models.profiling._protocol import measure_interleaved
from nasforge.hardware_models.profiling._protocol import pinned
from nasforge.hardware_models.profiling._protocol import self_agreement
from nasforge.search_spaces.base import SearchSpace

__all__ = ["DECODE_STEPS", "ensure_lm_profile", "lm_local_name", "measure_lm", "profile_lm",
           "validate_lm"]

log = logging.getLogger(__name__)

#: Tokens generated one at a time after the prompt (HAT decodes 30).
DECODE_STEPS = 30
MODEL_FILE = "latency_model.json"
MEASUREMENTS = "measurements.csv"


def _twin(space: SearchSpace, arch: Any) -> torch.nn.Module:
    from nasforge.supernet.static._lm import StaticLM

    return StaticLM(space.vocab_size, arch.embed_dim,  # type: ignore[attr-defined]
                    tuple(arch.ffn_embed_dim), tuple(arch.self_attention_heads),
                    space.head_dim, arch.context_length).eval()  # type: ignore[attr-defined]


def _calls(model: torch.nn.Module, prompt: int, steps: int,
           seed: int) -> tuple[Callable[[], object], Callable[[], object]]:
    """(prefill, prefill + ``steps`` cached decode steps) as zero-argument calls."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 256, (1, prompt), generator=gen)
    nxt = torch.randint(0, 256, (1, 1), generator=gen)

    @torch.inference_mode()
    def prefill() -> object:
        return model(tokens)

    @torch.inference_mode()
    def generate() -> object:
        cache = model.new_cache()  # type: ignore[operator]
        model(tokens, cache)
        for _ in range(steps):
            model(nxt, cache)
        return cache

    return prefill, generate


def _pair(space: SearchSpace, arch: Any, seed: int
          ) -> tuple[Callable[[], object], Callable[[], object], Callable[[float, float],
                                                                       tuple[float, float]]]:
    """The two timed calls of ``arch`` and how their ms become its two parts."""
    if hasattr(space, "hat_features_many"):
        from nasforge.hardware_models.profiling._hat_profile import hat_calls

        enc, both = hat_calls(space, arch, seed)
        return enc, both, lambda first, total: (first, max(total - first, 1e-6))
    p = arch.context_length // 2
    steps = min(DECODE_STEPS, arch.context_length - p)
    pre, gen = _calls(_twin(space, arch), p, steps, seed)
    return pre, gen, lambda first, total: (first, max(total - first, 1e-6) / steps)


def measure_lm(space: SearchSpace, archs: Sequence[Any], *, repeats: int = 7, seed: int = 0,
               chunk: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The two parts of ``archs``, each of shape (len(archs),): ``elastic_lm``: prefill ms and
    decode ms per token; ``hat_*``: encoder ms and decoder ms (all steps, beam 5).

    Archs are timed ``chunk`` at a time, interleaved (both calls of each), on one torch thread
    pinned to one CPU.
    """
    first = np.zeros(len(archs))
    second = np.zeros(len(archs))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pinned(default_cpus(1)):
            for start in range(0, len(archs), chunk):
                pairs = [_pair(space, a, seed + start + i)
                         for i, a in enumerate(archs[start:start + chunk])]
                ms = measure_interleaved([c for p in pairs for c in p[:2]], warmup=2,
                                         repeats=repeats, sample_ms=20.0, clock="wall",
                                         filtered=True)
                for i, (_, _, split) in enumerate(pairs):
                    first[start + i], second[start + i] = split(ms[2 * i].ms, ms[2 * i + 1].ms)
                log.info("measured %d/%d subnets", start + len(pairs), len(archs))
    finally:
        torch.set_num_threads(threads)
    return first, second


def lm_local_name(space: str) -> str:
    """The device folder name of ``space`` measured on this machine: ``cpu-local-<space>``."""
    return f"cpu-local-{space}"


def _sample(space: SearchSpace, n: int, seed: int, corners: bool) -> list[Any]:
    rng = np.random.default_rng(seed)
    archs = [space.min_arch(), space.max_arch()] if corners else []
    while len(archs) < n:
        archs.append(space.sample(rng))
    return archs[:n]


@dataclass(frozen=True)
class _Kind:
    """How one kind of language space is profiled: its parts, features, terms and measures."""

    parts: tuple[str, str]
    features: str
    measures: dict[str, list[str]]
    default: str
    description: str


_LM = _Kind(("prefill", "decode"), "lm", {"decode": ["decode"], "prefill": ["prefill"]},
            "decode", f"prefill of context_length // 2 prompt tokens, then {DECODE_STEPS} tokens "
            "decoded through the KV cache; latency = decode ms per token (NAME:prefill for the "
            "prompt)")
_HAT = _Kind(("encoder", "decoder"), "hat",
             {"end_to_end": ["encoder", "decoder"], "encoder": ["encoder"],
              "decoder": ["decoder"]}, "end_to_end",
             "HAT's protocol: batch 1, the task's source length, as many incremental decoder "
             "steps with beam 5 (no beam bookkeeping); latency = encoder + decoder ms")


def _kind(space: SearchSpace) -> _Kind:
    return _HAT if hasattr(space, "hat_features_many") else _LM


def _features(space: SearchSpace, archs: Sequence[Any]) -> np.ndarray:
    if hasattr(space, "hat_features_many"):
        return np.asarray(space.hat_features_many(archs))
    return lm_features(archs)


def profile_lm(space: SearchSpace, *, n_archs: int = 40, seed: int = 0,
               repeats: int = 7) -> DeviceProfile:
    """Measure ``n_archs`` subnets (the smallest and largest among them), fit the two-part
    model (prefill/decode, or HAT's encoder/decoder), write the device ``cpu-local-<space>``;
    returns its profile."""
    from nasforge.hardware_models._hat_csv import HAT_FEATURES
    from nasforge.hardware_models._hat_csv import HAT_TERMS

    kind = _kind(space)
    archs = _sample(space, n_archs, seed, corners=True)
    first, second = measure_lm(space, archs, repeats=repeats, seed=seed)
    x = _features(space, archs)
    names, terms = (HAT_FEATURES, HAT_TERMS) if kind is _HAT else (LM_FEATURES, LM_TERMS)
    ys = dict(zip(kind.parts, (first, second), strict=True))
    reg = PartsRegressor.fit(x, names, ys, terms)
    folder = devices_cache_dir() / lm_local_name(space.name)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / MEASUREMENTS).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", *(f"{p}_ms" for p in kind.parts)])
        for a, p, d in zip(archs, first, second, strict=True):
            w.writerow([json.dumps(a.to_dict(), sort_keys=True), f"{p:.6g}", f"{d:.6g}"])
    (folder / MODEL_FILE).write_text(json.dumps(reg.to_dict(), indent=1) + "\n")
    fit = reg.predict_parts(x)
    name = lm_local_name(space.name)
    profile = DeviceProfile(
        name=name, hardware=cpu_description(),
        runtime=f"PyTorch {torch.__version__} eager, 1 thread", provenance="predicted",
        spaces=[space.name], source=f"measured by nas profile on this machine ({len(archs)} "
        f"{space.name} subnets)", description=kind.description.replace("NAME", name),
        errors={p: {"train_mape": float(np.mean(np.abs(fit[p] / y - 1)))}
                for p, y in ys.items()},
        extra={"model": {"kind": "parts", "file": MODEL_FILE, "features": kind.features,
                         "measures": kind.measures, "default": kind.default},
               "protocol": {"description": kind.description.replace("NAME", name),
                            "threads": 1, "repeats": repeats},
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    profile.save(folder)
    return profile


def ensure_lm_profile(space: SearchSpace) -> None:
    """Measure ``cpu-local-<space>`` once if this machine has no profile of ``space`` yet, as
    ``nas profile --device cpu-local --space <space>`` would (``cpu-local`` is measured on first
    use, DESIGN section 6); a later call finds it cached."""
    folder = devices_cache_dir() / lm_local_name(space.name)
    if (folder / MODEL_FILE).is_file():
        return
    log.info("cpu-local has no %s profile yet: measuring it once (40 subnets; about 30 s "
                "on an idle 2-core CPU) into %s", space.name, folder)
    profile_lm(space)


def _figures(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    rel = np.abs(predicted / measured - 1)
    rho = spearmanr(measured, predicted).statistic if len(measured) > 2 else math.nan
    return {"within_10pct": float(np.mean(rel <= 0.10)), "mape": float(np.mean(rel)),
            "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
            "spearman": float(rho)}


def validate_lm(space: SearchSpace, *, n: int = 30, seed: int = 1, repeats: int = 7,
                passes: int = 1, out: Path | None = None) -> dict[str, Any]:
    """Measure ``n`` new random subnets; each part (prefill and decode, or encoder and
    decoder) predicted vs measured.

    Returns:
        per part: share within +-10%, MAPE, RMSE ms, Spearman; the measurements; with
        ``passes`` >= 2 the self-agreement of two measurement passes.
    """
    kind = _kind(space)
    model = load_feature_model(devices_cache_dir() / lm_local_name(space.name))
    archs = _sample(space, n, seed + 10_000, corners=False)
    runs = [measure_lm(space, archs, repeats=repeats, seed=seed + k) for k in range(passes)]
    measured = {p: np.median([r[j] for r in runs], axis=0) for j, p in enumerate(kind.parts)}
    pred = model.predict_parts(archs)
    report: dict[str, Any] = {"device": model.name, "space": space.name, "n": n, "seed": seed}
    for p in kind.parts:
        report[p] = _figures(measured[p], pred[p])
    report["subnets"] = [
        {"arch": a.to_dict(), **{f"{p}_ms": float(measured[p][i]) for p in kind.parts},
         **{f"pred_{p}_ms": float(pred[p][i]) for p in kind.parts}}
        for i, a in enumerate(archs)]
    if passes >= 2:
        report["self_agreement"] = {p: self_agreement(runs[0][j].tolist(), runs[1][j].tolist())
                                    for j, p in enumerate(kind.parts)}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "validate.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
