"""Prefill and per-token decode latency of ``elastic_lm`` subnets on this machine.

``nas profile --device cpu-local --space elastic_lm`` and ``nas hw validate --device cpu-local
--space elastic_lm`` run here. The protocol (HAT's, scaled to the space): batch 1, a prompt of
``context_length // 2`` tokens (the ``prompt_tokens`` feature)
run in one forward (**prefill**), then :data:`DECODE_STEPS` tokens generated one at a time
through the KV cache (**decode**; ms per token = (prefill + steps - prefill) / steps, both
estimates from the same interleaved rounds). Each subnet is the static twin of its
architecture (``StaticLM``, random weights: latency does not depend on their values), timed by
the shared interleaved protocol (:mod:`~._protocol`: pinned, one torch thread, preempted
samples set aside, the median of the faster half).

The fitted prefill/decode model (:data:`~nasforge.hardware_models._lm_latency.LM_TERMS`) and
the measurements (``measurements.csv``) go to ``$NASFORGE_CACHE/devices/cpu-local-<space>/``;
``cpu-local`` with an LM space resolves there (:func:`lm_local_name`).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Callable
from collections.abc import Sequence
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

__all__ = ["DECODE_STEPS", "lm_local_name", "measure_lm", "profile_lm", "validate_lm"]

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


def measure_lm(space: SearchSpace, archs: Sequence[Any], *, repeats: int = 7, seed: int = 0,
               chunk: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Prefill ms and decode ms per token of ``archs`` (each shape (len(archs),)).

    Archs are timed ``chunk`` at a time, interleaved (prefill and generation of each), on one
    torch thread pinned to one CPU.
    """
    prefill = np.zeros(len(archs))
    decode = np.zeros(len(archs))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pinned(default_cpus(1)):
            for start in range(0, len(archs), chunk):
                part = archs[start:start + chunk]
                calls: list[Callable[[], object]] = []
                for i, a in enumerate(part):
                    p = a.context_length // 2
                    calls += _calls(_twin(space, a), p, min(DECODE_STEPS, a.context_length - p),
                                    seed + start + i)
                ms = measure_interleaved(calls, warmup=2, repeats=repeats, sample_ms=20.0,
                                         clock="wall", filtered=True)
                for i, a in enumerate(part):
                    steps = min(DECODE_STEPS, a.context_length - a.context_length // 2)
                    pre, gen = ms[2 * i].ms, ms[2 * i + 1].ms
                    prefill[start + i] = pre
                    decode[start + i] = max(gen - pre, 1e-6) / steps
                log.info("measured %d/%d LM subnets", start + len(part), len(archs))
    finally:
        torch.set_num_threads(threads)
    return prefill, decode


def lm_local_name(space: str) -> str:
    """The device folder name of ``space`` measured on this machine: ``cpu-local-<space>``."""
    return f"cpu-local-{space}"


def _sample(space: SearchSpace, n: int, seed: int, corners: bool) -> list[Any]:
    rng = np.random.default_rng(seed)
    archs = [space.min_arch(), space.max_arch()] if corners else []
    while len(archs) < n:
        archs.append(space.sample(rng))
    return archs[:n]


def profile_lm(space: SearchSpace, *, n_archs: int = 40, seed: int = 0,
               repeats: int = 7) -> DeviceProfile:
    """Measure ``n_archs`` subnets (the smallest and largest among them), fit the
    prefill/decode model, write the device ``cpu-local-<space>``; returns its profile."""
    archs = _sample(space, n_archs, seed, corners=True)
    prefill, decode = measure_lm(space, archs, repeats=repeats, seed=seed)
    x = lm_features(archs)
    reg = PartsRegressor.fit(x, LM_FEATURES, {"prefill": prefill, "decode": decode}, LM_TERMS)
    folder = devices_cache_dir() / lm_local_name(space.name)
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / MEASUREMENTS).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "prefill_ms", "decode_ms_per_token"])
        for a, p, d in zip(archs, prefill, decode, strict=True):
            w.writerow([json.dumps(a.to_dict(), sort_keys=True), f"{p:.6g}", f"{d:.6g}"])
    (folder / MODEL_FILE).write_text(json.dumps(reg.to_dict(), indent=1) + "\n")
    fit = reg.predict_parts(x)
    errors = {part: {"train_mape": float(np.mean(np.abs(fit[part] / y - 1)))}
              for part, y in (("prefill", prefill), ("decode", decode))}
    profile = DeviceProfile(
        name=lm_local_name(space.name), hardware=cpu_description(),
        runtime=f"PyTorch {torch.__version__} eager, 1 thread, batch 1", provenance="predicted",
        spaces=[space.name], source=f"measured by nas profile on this machine ({len(archs)} "
        f"{space.name} subnets)",
        description=(f"prefill of context_length // 2 prompt tokens, then {DECODE_STEPS} "
                     "tokens decoded through the KV cache; latency = decode ms per token "
                     f"({lm_local_name(space.name)}:prefill for the prompt)"),
        errors=errors,
        extra={"model": {"kind": "parts", "file": MODEL_FILE, "features": "lm",
                         "measures": {"decode": ["decode"], "prefill": ["prefill"]},
                         "default": "decode"},
               "protocol": {"prompt": "context_length // 2", "decode_steps": DECODE_STEPS,
                            "batch": 1, "threads": 1, "repeats": repeats},
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    profile.save(folder)
    return profile


def _figures(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    rel = np.abs(predicted / measured - 1)
    rho = spearmanr(measured, predicted).statistic if len(measured) > 2 else math.nan
    return {"within_10pct": float(np.mean(rel <= 0.10)), "mape": float(np.mean(rel)),
            "rmse_ms": float(np.sqrt(np.mean((predicted - measured) ** 2))),
            "spearman": float(rho)}


def validate_lm(space: SearchSpace, *, n: int = 30, seed: int = 1, repeats: int = 7,
                passes: int = 1, out: Path | None = None) -> dict[str, Any]:
    """Measure ``n`` new random subnets; prefill and decode predicted vs measured.

    Returns:
        ``prefill`` and ``decode`` figures (share within +-10%, MAPE, RMSE ms, Spearman), the
        measurements, and with ``passes`` >= 2 the self-agreement of two measurement passes.
    """
    model = load_feature_model(devices_cache_dir() / lm_local_name(space.name))
    archs = _sample(space, n, seed + 10_000, corners=False)
    runs = [measure_lm(space, archs, repeats=repeats, seed=seed + k) for k in range(passes)]
    prefill = np.median([r[0] for r in runs], axis=0)
    decode = np.median([r[1] for r in runs], axis=0)
    pred = model.predict_parts(archs)
    report: dict[str, Any] = {
        "device": model.name, "space": space.name, "n": n, "seed": seed,
        "prefill": _figures(prefill, pred["prefill"]),
        "decode": _figures(decode, pred["decode"]),
        "subnets": [{"arch": a.to_dict(), "prefill_ms": float(p), "decode_ms": float(d),
                     "pred_prefill_ms": float(pp), "pred_decode_ms": float(pd)}
                    for a, p, d, pp, pd in zip(archs, prefill, decode, pred["prefill"],
                                                pred["decode"], strict=True)]}
    if passes >= 2:
        report["self_agreement"] = {
            "prefill": self_agreement(runs[0][0].tolist(), runs[1][0].tolist()),
            "decode": self_agreement(runs[0][1].tolist(), runs[1][1].tolist())}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "validate.json").write_text(json.dumps(report, indent=1) + "\n")
    return report

