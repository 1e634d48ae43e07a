"""Step 5 of ``nas profile``: the runtime's fusion rule, the noise floor, ``profile.json``."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge.hardware_models._blockkeys import block_key_scheme
from nasforge.hardware_models._devices import clear_device_cache
from nasforge.hardware_models._fusion import fit_fusion
from nasforge.hardware_models._local import REGRESSORS_DIR
from nasforge.hardware_models._local import TABLE_FILE
from nasforge.hardware_models._local import cpu_description
from nasforge.hardware_models._lut import LatencyEntry
from nasforge.hardware_models._lut import LatencyTable
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import PROFILE_FILE
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models.profiling._folder import REMOTE_BACKENDS
from nasforge.search_spaces.block import total_params
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from nasforge.hardware_models._regressor import BlockRegressors
    from nasforge.hardware_models.profiling.base import Runner
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["noise_floor", "write_profile"]

logger = logging.getLogger(__name__)


def noise_floor(table: dict[str, LatencyEntry], nets: dict[str, tuple[float, float]]
                ) -> dict[str, Any]:
    """Median relative spread (std / ms) of the measured blocks and networks."""
    def med(pairs: list[tuple[float, float]]) -> float | None:
        rel = [s / m for m, s in pairs if m > 0 and math.isfinite(s)]
        return float(np.median(rel)) if rel else None

    return {"blocks_median_rel_std": med([(e.mean, e.std) for e in table.values()]),
            "networks_median_rel_std": med(list(nets.values())),
            "note": "std of the kept samples over the estimate (see _protocol)"}


def write_profile(*, name: str, folder: Path, space: SearchSpace, runner: Runner,
                  table: dict[str, LatencyEntry], regs: BlockRegressors,
                  holdout: dict[str, Any], nets: dict[str, tuple[float, float]],
                  fusion_archs: Sequence[Arch], settings: dict[str, Any],
                  n_candidates: int) -> DeviceProfile:
    """Step 5: fit the fusion rule, write ``profile.json`` (and the sorted table).

    ``fusion_archs`` are the networks the rule is fitted to (:func:`fusion_networks`, any spaces);
    those not in ``nets`` (not measured) are skipped.
    """
    LatencyTable(table).write_csv(folder / TABLE_FILE)  # sorted, de-torn
    old = DeviceProfile.load(folder) if (folder / PROFILE_FILE).is_file() else None
    remote = runner.name in REMOTE_BACKENDS
    cfg = runner.config()
    hardware = (f"reached through `{cfg.get('command')}`" if runner.name == "command" else
                f"Android phone {cfg.get('serial') or '?'} over adb" if runner.name == "adb"
                else cpu_description())
    profile = DeviceProfile(
        name=name, hardware=hardware, runtime=runner.runtime(), provenance="measured",
        spaces=sorted({space.name, *(old.spaces if old else [])}),
        source=(f"measured {'over ' + runner.name if remote else 'on this machine'} by "
                f"`nas profile` ({len(table)} blocks)"),
        description=("Blocks measured one by one (block-shape keys), per-family regressors for "
                     "the rest (labelled predicted), plus the runtime's fitted fusion rule."),
        table=TABLE_FILE, regressors=REGRESSORS_DIR, errors={"holdout": holdout},
    )
    fusion_dict = _fusion_rule(profile, table, regs, runner, nets, fusion_archs)
    profile.extra = {
        "profiler": {**cfg, **settings},
        "keying": block_key_scheme(space.name).name,
        "fusion": fusion_dict,
        "measured_blocks": len(table),
        "candidates": {**(old.extra.get("candidates", {}) if old else {}),
                       space.name: n_candidates},
        "noise_floor": noise_floor(table, nets),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    profile.save(folder)
    clear_device_cache()
    return profile


def _fusion_rule(profile: DeviceProfile, table: dict[str, LatencyEntry], regs: BlockRegressors,
                 runner: Runner, nets: dict[str, tuple[float, float]],
                 fusion_archs: Sequence[Arch]) -> dict[str, Any]:
    """The fusion rule fitted on the measured ``fusion_archs`` (``{}``: none of them measured).

    Its error goes into ``profile.errors["fusion"]``.
    """
    bare = BlockSumLatencyModel(profile, table=LatencyTable(table), regressors=regs,
                                keying="block")
    fusion_nets = [a for a in fusion_archs if a.arch_id in nets]
    unmeasured = sorted({a.space for a in fusion_archs} - {a.space for a in fusion_nets})
    if unmeasured:
        logger.info("fusion rule: no whole networks of %s measured with this seed and count "
                    "(profiled with other --seed/--networks?); fitted without them",
                    ", ".join(unmeasured))
    if not fusion_nets:
        return {}
    sums = bare.predict_many(fusion_nets)
    blocks = [get_space(a.space).blocks(a) for a in fusion_nets]
    fusion = fit_fusion(sums.tolist(), [len(b) for b in blocks],
                        [nets[a.arch_id][0] for a in fusion_nets],
                        [total_params(b) / 1e6 for b in blocks])
    profile.errors["fusion"] = fusion.rel_err
    return {**fusion.to_dict(),
            "networks": [a.arch_id for a in fusion_nets],
            "spaces": {sp: sum(a.space == sp for a in fusion_nets)
                       for sp in sorted({a.space for a in fusion_nets})},
            "measured_with": {"backend": runner.name, "clock": runner.clock,
                              "threads": runner.threads},
            "fitted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
