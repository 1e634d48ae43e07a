"""HAT's latency datasets (``{task}_{cpu|gpu}_{device}_all.csv``) as nasforge devices.

HAT (Hardware-Aware Transformers, arXiv 2005.14187) measured 2,000 SubTransformers per task and
device end to end -- batch 1, a 30-token source (23 for IWSLT), as many incremental decoder
steps, beam 5; 5 dry runs, then 20 timed runs (2 on the Raspberry Pi), the 10th-90th percentile
kept -- and published them with 10 features per row: the embed dims and layer counts, the
per-layer choices averaged (``HATSpace.hat_features``), and the encoder's and decoder's mean and
std in ms. Attribution: "HAT (MIT Han Lab), MIT".

:func:`read_hat_csv` reads and checks one file; :func:`fit_hat_model` fits the two-part model
(encoder + decoder, :mod:`~nasforge.hardware_models._seq_model`) with :data:`HAT_TERMS`;
:func:`import_hat_csv` (``nas hw import --format hat-csv``) stores it as a device whose
latency is HAT's target, encoder + decoder ms, and checks the rows for collection drift
(:mod:`~nasforge.hardware_models._drift`). Only the fitted weights are stored, not the rows.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nasforge._paths import devices_cache_dir
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._drift import DriftReport
from nasforge.hardware_models._drift import out_of_fold
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._seq_model import PartsRegressor
from nasforge.structured import read_text

__all__ = [
    "HAT_DEVICES",
    "HAT_FEATURES",
    "HAT_TERMS",
    "HATLatencyData",
    "fit_hat_model",
    "holdout_errors",
    "import_hat_csv",
    "read_hat_csv",
]

log = logging.getLogger(__name__)

#: HAT's 10 feature columns, in its CSV order.
HAT_FEATURES: tuple[str, ...] = (
    "encoder_embed_dim", "encoder_layer_num", "encoder_ffn_embed_dim_avg",
    "encoder_self_attention_heads_avg", "decoder_embed_dim", "decoder_layer_num",
    "decoder_ffn_embed_dim_avg", "decoder_self_attention_heads_avg",
    "decoder_ende_attention_heads_avg", "decoder_arbitrary_ende_attn_avg",
)
_LATENCY_COLUMNS = ("latency_mean_encoder", "latency_mean_decoder")
_STD_COLUMNS = ("latency_std_encoder", "latency_std_decoder")

_EL, _ED, _EF, _EH = ("encoder_layer_num", "encoder_embed_dim", "encoder_ffn_embed_dim_avg",
                      "encoder_self_attention_heads_avg")
_DL, _DD, _DF, _DH = ("decoder_layer_num", "decoder_embed_dim", "decoder_ffn_embed_dim_avg",
                      "decoder_self_attention_heads_avg")
_DA, _DR = "decoder_ende_attention_heads_avg", "decoder_arbitrary_ende_attn_avg"

#: The cost terms of each part (products of features; see ``_seq_model.term_matrix``).
#: Encoder, per layer: projections (d^2), FFN (d x ffn), attention heads (softmax, reshapes),
#: LayerNorm and residuals (d), a per-layer call overhead. Decoder, per step and layer: the same
#: plus the encoder-decoder attention (its heads, and the keys of 1-3 encoder layers it
#: attends); outside the layers: embedding / output projection (d) and a per-sentence constant.
HAT_TERMS: dict[str, tuple[str, ...]] = {
    "encoder": ("1", f"{_EL}*{_ED}*{_ED}", f"{_EL}*{_ED}*{_EF}", f"{_EL}*{_EH}", f"{_EL}*{_ED}",
                _EL),
    "decoder": ("1", _DD, _DL, f"{_DL}*{_DD}*{_DD}", f"{_DL}*{_DD}*{_DF}", f"{_DL}*{_DH}",
                f"{_DL}*{_DA}", f"{_DL}*{_DA}*{_DR}", f"{_DL}*{_DD}*{_DR}", f"{_DL}*{_DD}"),
}

#: HAT's device tag in the file name -> (hardware, timed runs).
HAT_DEVICES: dict[str, tuple[str, int]] = {
    "raspberrypi": ("Raspberry Pi 4 (ARM Cortex-A72 CPU)", 2),
    "xeon": ("Intel Xeon E5-2640 CPU", 20),
    "titanxp": ("NVIDIA TITAN Xp GPU", 20),
}
ATTRIBUTION = "HAT (MIT Han Lab), MIT"
MODEL_FILE = "latency_model.json"


@dataclass(frozen=True)
class HATLatencyData:
    """One HAT latency CSV, rows in measurement order.

    Attributes:
        features: HAT's 10 features, shape (N, 10), columns :data:`HAT_FEATURES`.
        encoder_ms: mean encoder latency, shape (N,).
        decoder_ms: mean decoder latency (all incremental steps), shape (N,).
        path: the file read.
    """

    features: np.ndarray
    encoder_ms: np.ndarray
    decoder_ms: np.ndarray
    path: Path

    @property
    def total_ms(self) -> np.ndarray:
        """HAT's target: encoder + decoder ms, shape (N,)."""
        return self.encoder_ms + self.decoder_ms

    def targets(self, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Part name -> ms of ``rows`` (default all)."""
        idx = slice(None) if rows is None else rows
        return {"encoder": self.encoder_ms[idx], "decoder": self.decoder_ms[idx]}


def read_hat_csv(path: Path) -> HATLatencyData:
    """Read and check one of HAT's latency CSVs.

    Raises:
        InvalidInputError: unreadable file, a missing column, a non-numeric or non-finite value,
            a latency <= 0, or fewer than 20 rows (one line naming the file, the row and column).
    """
    path = Path(path)
    text = read_text(path, "HAT latency CSV", max_bytes=64 << 20)
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    need = HAT_FEATURES + _LATENCY_COLUMNS
    missing = [c for c in need if c not in header]
    if missing:
        raise InvalidInputError(
            f"{path}: a HAT latency CSV needs the columns {', '.join(need)}; missing "
            f"{', '.join(missing)} (header: {', '.join(header) or 'none'})")
    rows: list[list[float]] = []
    for line, row in enumerate(reader, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        vals = []
        for col in need:
            try:
                v = float(row.get(col) or "nan")
            except ValueError:
                v = math.nan
            if not math.isfinite(v) or (col in _LATENCY_COLUMNS and v <= 0):
                rule = "finite and > 0 ms" if col in _LATENCY_COLUMNS else "a finite number"
                raise InvalidInputError(f"{path}: line {line}, column {col}: must be {rule}, "
                                        f"got {row.get(col)!r}")
            vals.append(v)
        rows.append(vals)
    if len(rows) < 20:
        raise InvalidInputError(f"{path}: a HAT latency CSV needs at least 20 rows to fit a "
                                f"latency model, got {len(rows)}")
    a = np.asarray(rows, dtype=np.float64)
    return HATLatencyData(a[:, :10], a[:, 10], a[:, 11], path)


def fit_hat_model(data: HATLatencyData, rows: np.ndarray | None = None) -> PartsRegressor:
    """The encoder + decoder parts model fitted on ``rows`` of ``data`` (default all)."""
    x = data.features if rows is None else data.features[rows]
    return PartsRegressor.fit(x, HAT_FEATURES, data.targets(rows), HAT_TERMS)


def holdout_errors(measured: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAPE, RMSE (ms), Spearman and share within +-10% of ``predicted`` vs ``measured``."""
    from scipy.stats import spearmanr

    rel = np.abs(predicted - measured) / measured
    return {"mape": float(np.mean(rel)), "rmse_ms": float(np.sqrt(np.mean((predicted - measured)
                                                                           ** 2))),
            "spearman": float(spearmanr(measured, predicted).statistic),
            "within_10pct": float(np.mean(rel <= 0.10)), "n": len(measured)}


def _drift(data: HATLatencyData, seed: int) -> DriftReport:
    def fit_predict(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return fit_hat_model(data, train).predict(data.features[test])

    oof = out_of_fold(fit_predict, len(data.total_ms), np.random.default_rng(seed))
    return DriftReport.of(data.total_ms, oof)


def _describe(path: Path) -> tuple[str, str]:
    """(hardware, protocol) from HAT's file name ``{task}_{cpu|gpu}_{device}_all.csv``."""
    parts = path.stem.split("_")
    tag = parts[2] if len(parts) >= 3 else ""
    hardware, runs = HAT_DEVICES.get(tag, ("unknown (file name not HAT's)", 0))
    tokens = 23 if parts and parts[0].startswith("iwslt") else 30
    protocol = (f"batch 1, {tokens}-token source, {tokens} incremental decoder steps, beam 5; "
                f"5 dry runs, then {runs or '?'} timed runs, 10th-90th percentile kept")
    return hardware, protocol


def import_hat_csv(path: Path, name: str, space: str, *,
                   seed: int = 0) -> tuple[DeviceProfile, DriftReport]:
    """Import one HAT latency CSV as device ``name`` in the user's cache.

    Fits the encoder + decoder model on every row, records its error on a seeded random 20%
    hold-out (fitted on the other 80%) and the drift check (logged as a warning when the
    residuals follow the row order), and writes ``profile.json`` and
    ``latency_model.json`` to ``$NASFORGE_CACHE/devices/<name>/``.

    Args:
        path: the CSV.
        name: the device name to create.
        space: a HAT space (``hat_wmt14ende``, ...): its ``hat_features`` feed the model.
        seed: seed of the hold-out split and of the drift check's folds.

    Raises:
        InvalidInputError: a bad file (see :func:`read_hat_csv`), a bad device name, or a space
            without HAT's features.
        UnknownNameError: unknown space.
    """
    from nasforge.search_spaces import get_space

    if not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise InvalidInputError(f"device names use letters, digits, '-', '_' and '.', got {name!r}")
    if not hasattr(get_space(space), "hat_features_many"):
        raise InvalidInputError(f"--format hat-csv needs a HAT space (hat_wmt14ende, ...) whose "
                                f"architectures have HAT's features; {space!r} has none")
    data = read_hat_csv(path)
    model = fit_hat_model(data)
    perm = np.random.default_rng(seed).permutation(len(data.total_ms))
    n_test = len(perm) // 5
    held = fit_hat_model(data, perm[n_test:]).predict(data.features[perm[:n_test]])
    errors = holdout_errors(data.total_ms[perm[:n_test]], held)
    drift = _drift(data, seed)
    if drift.drifting:
        log.warning(drift.message(str(path)))
    hardware, protocol = _describe(Path(path))
    folder = devices_cache_dir() / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MODEL_FILE).write_text(json.dumps(model.to_dict(), indent=1) + "\n")
    extra: dict[str, Any] = {
        "model": {"kind": "parts", "file": MODEL_FILE, "features": "hat",
                  "measures": {"end_to_end": ["encoder", "decoder"], "encoder": ["encoder"],
                               "decoder": ["decoder"]}, "default": "end_to_end"},
        "protocol": protocol, "drift": drift.to_dict(), "seed": seed}
    profile = DeviceProfile(
        name=name, hardware=hardware, runtime="PyTorch (HAT's fairseq code), measured by HAT",
        provenance="predicted", spaces=[space],
        source=f"measured by HAT: {Path(path).name} ({len(data.total_ms)} SubTransformers); "
               f"{ATTRIBUTION}",
        description=(f"HAT's end-to-end latency (encoder + decoder ms): {protocol}. Latency "
                     "model: encoder and decoder parts, linear in per-layer MACs (smooth)."),
        errors={"holdout": {**errors, "split": f"seeded random 20% (seed {seed})",
                            "median_rel_err": float(np.median(
                                np.abs(held - data.total_ms[perm[:n_test]])
                                / data.total_ms[perm[:n_test]]))}},
        extra=extra)
    profile.save(folder)
    return profile, drift
