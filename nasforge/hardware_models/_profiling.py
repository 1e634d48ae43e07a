"""``nas profile``: measure a latency table on a reachable device, in named steps.

Any device a runner reaches is profiled here: this machine (``cpu-local`` with the ``torch``,
``onnxruntime`` or ``litert`` backend), a phone over ``adb``, or an external command. Each step
is resumable: measured rows are appended to the folder's CSV files as they come, and a rerun
skips what is there.

1. :func:`plan_blocks`: the distinct blocks of ``n_archs`` random architectures of the space
   plus its min and max (:func:`~nasforge.hardware_models._adaptive.candidate_pool`);
2. :func:`measure_block_set`: a seed set of them, then adaptive rounds (a bootstrap ensemble
   picks the ``batch`` candidates where it is least sure) until ``budget`` blocks are measured
   or ``time_budget_s`` has passed; each block built with
   :func:`~nasforge.supernet.static.build_block` and timed by the runner
   (:mod:`~nasforge.hardware_models._runners`, protocol in
   :mod:`~nasforge.hardware_models._protocol`);
3. :func:`measure_network_set`: ``n_networks`` whole networks measured end to end;
4. :func:`fit_regressors`: the per-family regressors on the whole table (held-out error);
5. :func:`write_profile`: the runtime's fusion rule is fitted
   (:mod:`~nasforge.hardware_models._fusion`), the noise floor (median relative spread of
   the measured blocks and networks) recorded, and ``profile.json`` written: the device is then
   registered (``nas devices``).

Progress goes through :class:`nasforge.progress.ProgressBar`, the outcome to this module's
logger; nothing here prints.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from nasforge._paths import devices_cache_dir
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._adaptive import BASE
from nasforge.hardware_models._adaptive import MIN_TREE_ROWS
from nasforge.hardware_models._adaptive import CandidatePool
from nasforge.hardware_models._adaptive import candidate_pool
from nasforge.hardware_models._adaptive import next_batch
from nasforge.hardware_models._adaptive import seed_set
from nasforge.hardware_models._blockkeys import block_key_scheme
from nasforge.hardware_models._devices import clear_device_cache
from nasforge.hardware_models._fit import holdout_split
from nasforge.hardware_models._fusion import fit_fusion
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models._local import LOCAL
from nasforge.hardware_models._local import NETWORKS_FILE
from nasforge.hardware_models._local import REGRESSORS_DIR
from nasforge.hardware_models._local import TABLE_FILE
from nasforge.hardware_models._local import cpu_description
from nasforge.hardware_models._local import local_device_name
from nasforge.hardware_models._lut import CSV_HEADER
from nasforge.hardware_models._lut import LatencyEntry
from nasforge.hardware_models._lut import LatencyTable
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import PROFILE_FILE
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.hardware_models._runners import Runner
from nasforge.hardware_models._runners import make_runner
from nasforge.progress import ProgressBar
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = [
    "BlockPlan",
    "fit_regressors",
    "measure_block_set",
    "measure_network_set",
    "measure_networks",
    "network_key",
    "plan_blocks",
    "profile_device",
    "profiled_device_folder",
    "read_partial_table",
    "write_profile",
]

logger = logging.getLogger(__name__)

CHUNK = 8  # blocks timed together (interleaved)
NET_CHUNK = 4  # whole networks timed together
NET_HEADER = ("arch_id", "space", "ms", "std_ms", "arch")
#: backends that reach a device other than this machine (then any device name is allowed).
REMOTE_BACKENDS = ("command", "adb")


def profiled_device_folder(device: str, backend: str, threads: int,
                           clock: str = "wall") -> tuple[str, Path]:
    """The device name and folder ``nas profile`` writes.

    Raises:
        InvalidInputError: a device other than ``cpu-local`` without ``--backend adb`` or
            ``command``, or a name that is not a simple identifier.
    """
    if device == LOCAL:
        if backend == "adb":
            raise InvalidInputError(
                "--backend adb measures a phone, not this machine: name it, e.g. "
                "--device my-pixel --backend adb [--serial SERIAL]")
        name = local_device_name(backend, threads, clock)
    else:
        if backend not in REMOTE_BACKENDS:
            raise InvalidInputError(
                f"device {device!r} is not this machine: only {LOCAL!r} is measured with the "
                f"{backend} backend; profile a phone with --backend adb [--serial S], another "
                "device with --backend command --command 'TEMPLATE {model}'")
        if not all(c.isalnum() or c in "-_." for c in device) or device[:1] in ("", "."):
            raise InvalidInputError(
                f"device names use letters, digits, '-', '_' and '.', got {device!r}")
        name = device
    return name, devices_cache_dir() / name


def read_partial_table(path: Path) -> dict[str, LatencyEntry]:
    """The rows of a table CSV being written; a torn last row (a killed run) is skipped."""
    out: dict[str, LatencyEntry] = {}
    if not path.is_file():
        return out
    with path.open(newline="") as f:
        for row in csv.reader(f):
            if len(row) < 4 or row[0] == CSV_HEADER[0]:
                continue
            try:
                mean = float(row[1])
                std = float(row[2]) if row[2] else math.nan
                out[row[0]] = LatencyEntry(mean, std, int(row[3] or 0))
            except ValueError:
                continue
    return out


def _append(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def network_key(space: str, arch: Arch) -> str:
    """The cache key of a whole network (converted files are cached by it)."""
    return f"net:{space}:{arch.arch_id}"


def _measure_blocks(runner: Runner, keys: Sequence[str], blocks: dict[str, Any], path: Path,
                    table: dict[str, LatencyEntry], advance: Callable[[int], None]) -> None:
    from nasforge.supernet.static import build_block

    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        items = [(build_block(blocks[k]), (1, blocks[k].cin, blocks[k].hw_in, blocks[k].hw_in))
                 for k in chunk]
        got = runner.measure(items, keys=chunk)
        rows = []
        for k, m in zip(chunk, got, strict=True):
            table[k] = LatencyEntry(m.ms, m.std, m.count)
            rows.append([k, repr(m.ms), "" if math.isnan(m.std) else repr(m.std), m.count])
        _append(path, CSV_HEADER, rows)
        advance(len(chunk))


#: Tag of the random stream the profile's whole networks come from: never the stream
#: ``nas hw validate`` samples its subnets from (``default_rng(seed)``), so that a fusion rule is
#: not judged on the networks it was fitted to (with ``default_rng(seed + 1)``, a profile of seed
#: 0 and a validation of seed 1 shared 18 of 50 networks).
NETWORK_STREAM = 0x6E6574


def _network_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    rng = np.random.default_rng([seed, NETWORK_STREAM])
    base = [space.min_arch(), space.max_arch()] if n >= 2 else []
    return [*base, *(space.sample(rng) for _ in range(n - len(base)))]


def fusion_networks(folder: Path, space: SearchSpace, n: int, seed: int) -> list[Arch]:
    """The whole networks the device's fusion rule is fitted to.

    One rule per runtime (DESIGN.md, "a fusion rule per runtime"): profiling a second space into
    a device folder refits it on the networks of every space profiled there, not on the newest
    space's alone. Each space contributes the networks :func:`profile_device` draws for it with
    this ``n`` and ``seed``; networks of other draws that ``networks.csv`` may still hold (an
    older seed) are left out.

    Args:
        folder: the device folder (its ``profile.json`` names the spaces profiled so far).
        space: the space being profiled now (first in the result).
        n: networks per space.
        seed: the profile's seed.
    """
    others: list[str] = []
    if (folder / PROFILE_FILE).is_file():
        others = [s for s in DeviceProfile.load(folder).spaces if s != space.name]
    return [a for sp in (space, *map(get_space, others)) for a in _network_archs(sp, n, seed)]


def measure_networks(runner: Runner, space: SearchSpace, archs: Sequence[Arch],
                     advance: Callable[[int], None] | None = None,
                     group: int = NET_CHUNK,
                     bases: list[str] | None = None) -> list[tuple[float, float]]:
    """End-to-end ``(ms, std)`` of each architecture's static model, ``group`` interleaved.

    Args:
        runner: the device's runner.
        space: the architectures' space.
        archs: what to measure.
        advance: called with the number of networks done after each group.
        group: networks timed together (interleaved).
        bases: if given, extended with each measurement's basis (``wall-undisturbed``,
            ``cpu-fallback``, ...; :attr:`~nasforge.hardware_models._protocol.Measurement.basis`).
    """
    from nasforge.supernet.static import build_static

    out: list[tuple[float, float]] = []
    for i in range(0, len(archs), group):
        chunk = archs[i:i + group]
        items = []
        for a in chunk:
            first = space.blocks(a)[0]
            items.append((build_static(space, a), (1, first.cin, first.hw_in, first.hw_in)))
        keys = [network_key(space.name, a) for a in chunk]
        got = runner.measure(items, keys=keys)
        out.extend((m.ms, m.std) for m in got)
        if bases is not None:
            bases.extend(m.basis for m in got)
        del items
        if advance is not None:
            advance(len(chunk))
    return out


def _read_networks(path: Path) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    if path.is_file():
        with path.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) == len(NET_HEADER) and row[0] != NET_HEADER[0]:
                    try:
                        out[row[0]] = (float(row[2]), float(row[3]) if row[3] else math.nan)
                    except ValueError:
                        continue
    return out


def _holdout(table: dict[str, float], seed: int) -> dict[str, Any]:
    held = holdout_split(list(table), 0.2, np.random.default_rng(seed))
    if len(held) < 3:
        return {}
    reg = BlockRegressors.fit({k: v for k, v in table.items() if k not in held}, seed=seed,
                              min_tree_rows=MIN_TREE_ROWS, base=BASE)
    hk = sorted(held)
    rel = np.abs(reg.predict(hk) / np.asarray([table[k] for k in hk]) - 1.0)
    return {"frac": 0.2, "n_keys": len(hk), "median_rel_err": float(np.median(rel)),
            "p90_rel_err": float(np.quantile(rel, 0.9))}


# ---- the steps -------------------------------------------------------------------------------
@dataclass
class BlockPlan:
    """Which blocks of a space to measure.

    Attributes:
        space: the space.
        pool: the candidates.
        budget: blocks of the space to have measured (at least one per kind).
        rng: the generator of the seed set and the adaptive rounds (seeded, continues the
            candidates' draws).
    """

    space: SearchSpace
    pool: CandidatePool
    budget: int
    rng: np.random.Generator

    def done(self, table: dict[str, LatencyEntry]) -> int:
        """Candidates already measured."""
        return sum(k in table for k in self.pool.keys)


def plan_blocks(space: SearchSpace, n_archs: int, budget: int, seed: int) -> BlockPlan:
    """Step 1: the candidates of ``space`` and the budget clipped to them."""
    rng = np.random.default_rng(seed)
    pool = candidate_pool(space, n_archs, rng)
    n_kinds = len({key_family(k) for k in pool.keys})
    return BlockPlan(space, pool, min(max(budget, n_kinds), len(pool.keys)), rng)


def measure_block_set(runner: Runner, plan: BlockPlan, table_path: Path, *, seed_blocks: int,
                      batch: int, time_budget_s: float | None, label: str
                      ) -> dict[str, LatencyEntry]:
    """Step 2: the seed set, then adaptive rounds; rows appended to ``table_path``.

    Returns:
        The whole table (rows of earlier runs included).
    """
    table = read_partial_table(table_path)
    start = time.monotonic()
    with ProgressBar(f"{label}: {plan.space.name} blocks", total=plan.budget,
                     completed=plan.done(table)) as bar:
        def advance(_: int) -> None:
            bar.update(plan.done(table))

        todo = [k for k in seed_set(plan.pool, min(seed_blocks, plan.budget), plan.rng)
                if k not in table]
        _measure_blocks(runner, todo, plan.pool.blocks, table_path, table, advance)
        while plan.done(table) < plan.budget:
            if time_budget_s is not None and time.monotonic() - start > time_budget_s:
                logger.info("%s: time budget of %.0f s spent after %d blocks", label,
                            time_budget_s, plan.done(table))
                break
            means = {k: e.mean for k, e in table.items()}
            keys = next_batch(plan.pool, means, min(batch, plan.budget - plan.done(table)),
                              plan.rng)
            if not keys:
                break
            _measure_blocks(runner, keys, plan.pool.blocks, table_path, table, advance)
    return table


def measure_network_set(runner: Runner, space: SearchSpace, archs: Sequence[Arch],
                        nets_path: Path, label: str) -> dict[str, tuple[float, float]]:
    """Step 3: whole networks end to end, appended chunk by chunk to ``nets_path``.

    Returns:
        arch id -> ``(ms, std)`` for every network measured so far.
    """
    nets = _read_networks(nets_path)
    todo = [a for a in archs if a.arch_id not in nets]
    if not todo:
        return nets
    with ProgressBar(f"{label}: whole networks", total=len(archs),
                     completed=len(archs) - len(todo)) as bar:
        for i in range(0, len(todo), NET_CHUNK):
            chunk = todo[i:i + NET_CHUNK]
            got = measure_networks(runner, space, chunk, bar.advance)
            for a, (ms, std) in zip(chunk, got, strict=True):
                nets[a.arch_id] = (ms, std)
            _append(nets_path, NET_HEADER, [[a.arch_id, space.name, repr(ms), repr(std),
                                             json.dumps(a.to_dict(), sort_keys=True)]
                                            for a, (ms, std) in zip(chunk, got, strict=True)])
    return nets


def fit_regressors(table: dict[str, LatencyEntry], folder: Path, seed: int
                   ) -> tuple[BlockRegressors, dict[str, Any]]:
    """Step 4: per-family regressors on the whole table, saved; with the held-out error."""
    means = {k: e.mean for k, e in table.items()}
    regs = BlockRegressors.fit(means, seed=seed, min_tree_rows=MIN_TREE_ROWS, base=BASE)
    regs.save(folder / REGRESSORS_DIR)
    return regs, _holdout(means, seed)


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
    bare = BlockSumLatencyModel(profile, table=LatencyTable(table), regressors=regs,
                                keying="block")
    fusion_nets = [a for a in fusion_archs if a.arch_id in nets]
    unmeasured = sorted({a.space for a in fusion_archs} - {a.space for a in fusion_nets})
    if unmeasured:
        logger.info("fusion rule: no whole networks of %s measured with this seed and count "
                    "(profiled with other --seed/--networks?); fitted without them",
                    ", ".join(unmeasured))
    fusion_dict: dict[str, Any] = {}
    if fusion_nets:
        sums = bare.predict_many(fusion_nets)
        nblk = [len(get_space(a.space).blocks(a)) for a in fusion_nets]
        fusion = fit_fusion(sums.tolist(), nblk, [nets[a.arch_id][0] for a in fusion_nets])
        profile.errors["fusion"] = fusion.rel_err
        fusion_dict = {**fusion.to_dict(),
                       "networks": [a.arch_id for a in fusion_nets],
                       "spaces": {sp: sum(a.space == sp for a in fusion_nets)
                                  for sp in sorted({a.space for a in fusion_nets})},
                       "measured_with": {"backend": runner.name, "clock": runner.clock,
                                         "threads": runner.threads},
                       "fitted": datetime.now(timezone.utc).isoformat(timespec="seconds")}
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


def profile_device(
    device: str,
    space: str,
    *,
    backend: str = "torch",
    command: str = "",
    threads: int = 1,
    n_archs: int = 200,
    seed: int = 0,
    budget: int = 400,
    seed_blocks: int = 150,
    batch: int = 16,
    time_budget_s: float | None = None,
    n_networks: int = 20,
    repeats: int = 15,
    cpus: tuple[int, ...] | None = None,
    clock: str = "wall",
    serial: str = "",
    workers: int = 1,
) -> DeviceProfile:
    """Measure (or resume measuring) a latency table for ``space`` on ``device``.

    Args:
        device: ``cpu-local`` (this machine; folder ``cpu-local-<backend>-t<threads>``) or the
            name of a device reached through ``--backend adb`` or ``--backend command``.
        space: the search space whose blocks are measured.
        backend: ``torch``, ``onnxruntime``, ``litert``, ``adb`` or ``command``.
        command: the command template of the ``command`` backend (``{model}``, ``{threads}``).
        threads: runtime threads, pinned.
        n_archs: random architectures whose blocks form the candidates.
        seed: seeds the candidates, the seed set, the ensembles and the networks.
        budget: blocks of this space to have measured in the end (at least one per block
            kind; the table may hold more, e.g. other spaces' blocks).
        seed_blocks: size of the seed set (capped by ``budget``).
        batch: blocks measured per adaptive round.
        time_budget_s: stop measuring blocks after this many seconds (None: no limit).
        n_networks: whole networks measured to fit the fusion rule (0: plain block sum).
        repeats: timed rounds per block or network (``adb``: passes, at most 3).
        cpus: CPUs to pin to while measuring (None: no pinning; ``litert``: the last CPU).
        clock: ``wall`` or ``cpu`` (thread CPU time; one thread; for loaded machines), see
            :mod:`~nasforge.hardware_models._runners`.
        serial: ``adb``: the phone's serial (empty: the only one attached).
        workers: ``litert`` / ``adb``: conversion processes.

    Returns:
        The written profile.

    Raises:
        InvalidInputError: bad backend, device name or budgets; an unreachable phone; a block
            the converter cannot convert (named).
        UnknownNameError: unknown space.
    """
    if budget < 1 or seed_blocks < 0 or batch < 1 or n_networks < 0:
        raise InvalidInputError(
            f"budget and batch must be >= 1, seed_blocks and n_networks >= 0, but got "
            f"{budget=}, {batch=}, {seed_blocks=}, {n_networks=}")
    sp = get_space(space)
    if not sp.has_model:
        raise InvalidInputError(f"space {space!r} is tabular: it has no blocks to build and time")
    name, folder = profiled_device_folder(device, backend, threads, clock)
    runner = make_runner(backend, threads=threads, command=command, repeats=repeats, cpus=cpus,
                         clock=clock, workers=workers, serial=serial)
    runner.check()  # a phone: reached before anything is converted
    folder.mkdir(parents=True, exist_ok=True)
    plan = plan_blocks(sp, n_archs, budget, seed)
    table = measure_block_set(runner, plan, folder / TABLE_FILE, seed_blocks=seed_blocks,
                              batch=batch, time_budget_s=time_budget_s, label=name)
    net_archs = _network_archs(sp, n_networks, seed)
    nets = measure_network_set(runner, sp, net_archs, folder / NETWORKS_FILE, name)
    fit_archs = fusion_networks(folder, sp, n_networks, seed) if n_networks else []
    regs, holdout = fit_regressors(table, folder, seed)
    settings: dict[str, Any] = {"repeats": repeats, "n_archs": n_archs, "seed": seed,
                                "budget": plan.budget, "cpus": list(cpus) if cpus else None}
    profile = write_profile(name=name, folder=folder, space=sp, runner=runner, table=table,
                            regs=regs, holdout=holdout, nets=nets, fusion_archs=fit_archs,
                            settings=settings, n_candidates=len(plan.pool.keys))
    f = profile.extra["fusion"]
    rule = (f"network = {f['per_network_ms']:+.3f} ms + sum({f['scale']:.3f} x block "
            f"{f['per_block_ms']:+.4f} ms) (form {f['rel_err']['form']}), fit on "
            f"{f['n_networks']} networks") if f else "plain block sum"
    logger.info("profiled %s: %d blocks measured (%d of %d %s candidates); fusion rule: %s; "
                "written to %s", name, len(table), plan.done(table), len(plan.pool.keys),
                space, rule, folder)
    return profile
