"""``nas profile``: measure a latency table on a reachable device (``cpu-local`` or a command).

Steps (each resumable: measured rows are appended to the folder's CSV files as they come, and
a rerun skips what is there):

1. candidates: the distinct blocks of ``n_archs`` random architectures of the space plus its
   min and max (:func:`~nasforge.hardware_models._adaptive.candidate_pool`);
2. seed set: ``seed_blocks`` of them (:func:`~nasforge.hardware_models._adaptive.seed_set`),
   each block built with :func:`~nasforge.search_spaces.static.build_block` and timed by the
   backend (:mod:`~nasforge.hardware_models._runners`);
3. adaptive rounds: fit a bootstrap ensemble, measure the ``batch`` candidates where it is least
   sure, until ``budget`` blocks of the space are measured or ``time_budget_s`` has passed;
4. the per-family regressors are fitted on the whole table (held-out error recorded);
5. ``n_networks`` whole networks are measured end to end and the runtime's fusion rule is fitted
   (:mod:`~nasforge.hardware_models._fusion`);
6. ``profile.json`` is written: the device is then registered (``nas devices``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Callable
from collections.abc import Sequence
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
from rich.progress import BarColumn
from rich.progress import MofNCompleteColumn
from rich.progress import Progress
from rich.progress import TextColumn
from rich.progress import TimeElapsedColumn

from nasforge._paths import devices_cache_dir
from nasforge.errors import InvalidInputError
from nasforge.hardware_models import _devices
from nasforge.hardware_models._adaptive import BASE
from nasforge.hardware_models._adaptive import MIN_TREE_ROWS
from nasforge.hardware_models._adaptive import candidate_pool
from nasforge.hardware_models._adaptive import next_batch
from nasforge.hardware_models._adaptive import seed_set
from nasforge.hardware_models._blockkeys import block_key_scheme
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
from nasforge.search_spaces.registry import get_space

if TYPE_CHECKING:
    from rich.console import Console

    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["profile_device", "profiled_device_folder", "read_partial_table"]

CHUNK = 8  # blocks timed together (interleaved)
NET_CHUNK = 4  # whole networks timed together
NET_HEADER = ("arch_id", "space", "ms", "std_ms", "arch")


def profiled_device_folder(device: str, backend: str, threads: int,
                           clock: str = "wall") -> tuple[str, Path]:
    """The device name and folder ``nas profile`` writes.

    Raises:
        InvalidInputError: a device other than ``cpu-local`` without ``--backend command``, or a
            name that is not a simple identifier.
    """
    if device == LOCAL:
        name = local_device_name(backend, threads, clock)
    else:
        if backend != "command":
            raise InvalidInputError(
                f"device {device!r} is not this machine: only {LOCAL!r} is measured with the "
                f"{backend} backend; profile another device with --backend command --command "
                "'TEMPLATE {model}'")
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


def _measure_blocks(runner: Runner, keys: Sequence[str], blocks: dict[str, Any], path: Path,
                    table: dict[str, LatencyEntry], advance: Callable[[int], None]) -> None:
    from nasforge.search_spaces.static import build_block

    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        items = [(build_block(blocks[k]), (1, blocks[k].cin, blocks[k].hw_in, blocks[k].hw_in))
                 for k in chunk]
        got = runner.measure(items)
        rows = []
        for k, m in zip(chunk, got, strict=True):
            table[k] = LatencyEntry(m.ms, m.std, m.count)
            rows.append([k, repr(m.ms), "" if math.isnan(m.std) else repr(m.std), m.count])
        _append(path, CSV_HEADER, rows)
        advance(len(chunk))


def _network_archs(space: SearchSpace, n: int, seed: int) -> list[Arch]:
    rng = np.random.default_rng(seed)
    base = [space.min_arch(), space.max_arch()] if n >= 2 else []
    return [*base, *(space.sample(rng) for _ in range(n - len(base)))]


def measure_networks(runner: Runner, space: SearchSpace, archs: Sequence[Arch],
                     advance: Callable[[int], None] | None = None,
                     group: int = NET_CHUNK) -> list[tuple[float, float]]:
    """End-to-end ``(ms, std)`` of each architecture's static model, ``group`` interleaved."""
    out: list[tuple[float, float]] = []
    for i in range(0, len(archs), group):
        chunk = archs[i:i + group]
        items = []
        for a in chunk:
            first = space.blocks(a)[0]
            items.append((space.build_model(a), (1, first.cin, first.hw_in, first.hw_in)))
        out.extend((m.ms, m.std) for m in runner.measure(items))
        del items
        if advance is not None:
            advance(len(chunk))
    return out


def _read_networks(path: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    if path.is_file():
        with path.open(newline="") as f:
            for row in csv.reader(f):
                if len(row) == len(NET_HEADER) and row[0] != NET_HEADER[0]:
                    try:
                        out[row[0]] = float(row[2])
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
    console: Console | None = None,
) -> DeviceProfile:
    """Measure (or resume measuring) a latency table for ``space`` on ``device``.

    Args:
        device: ``cpu-local`` (this machine; folder ``cpu-local-<backend>-t<threads>``) or the
            name of a device reached through ``--backend command``.
        space: the search space whose blocks are measured.
        backend: ``torch``, ``onnxruntime`` or ``command``.
        command: the command template of the ``command`` backend (``{model}``, ``{threads}``).
        threads: intra-op threads, pinned.
        n_archs: random architectures whose blocks form the candidates.
        seed: seeds the candidates, the seed set, the ensembles and the networks.
        budget: blocks of this space to have measured in the end (at least one per block
            kind; the table may hold more, e.g. other spaces' blocks).
        seed_blocks: size of the seed set (capped by ``budget``).
        batch: blocks measured per adaptive round.
        time_budget_s: stop measuring blocks after this many seconds (None: no limit).
        n_networks: whole networks measured to fit the fusion rule (0: plain block sum).
        repeats: timed rounds per block or network.
        cpus: CPUs to pin to while measuring (None: no pinning).
        clock: ``wall`` or ``cpu`` (thread CPU time; one thread; for loaded machines), see
            :mod:`~nasforge.hardware_models._runners`.
        console: where the progress bar goes (None: silent).

    Returns:
        The written profile.

    Raises:
        InvalidInputError: bad backend, device name or budgets.
        UnknownNameError: unknown space.
    """
    if budget < 1 or seed_blocks < 0 or batch < 1 or n_networks < 0:
        raise InvalidInputError(
            f"budget and batch must be >= 1, seed_blocks and n_networks >= 0, but got "
            f"{budget=}, {batch=}, {seed_blocks=}, {n_networks=}")
    sp = get_space(space)
    if not sp.has_model:
        raise InvalidInputError(f"space {space!r} is tabular: it has no blocks to build and time")
    runner = make_runner(backend, threads=threads, command=command, repeats=repeats, cpus=cpus,
                         clock=clock)
    name, folder = profiled_device_folder(device, backend, threads, clock)
    folder.mkdir(parents=True, exist_ok=True)
    table_path, nets_path = folder / TABLE_FILE, folder / NETWORKS_FILE
    table = read_partial_table(table_path)
    rng = np.random.default_rng(seed)
    pool = candidate_pool(sp, n_archs, rng)
    n_kinds = len({key_family(k) for k in pool.keys})
    budget = min(max(budget, n_kinds), len(pool.keys))  # one block of every kind at least
    start = time.monotonic()

    def out_of_time() -> bool:
        return time_budget_s is not None and time.monotonic() - start > time_budget_s

    def done_in_pool() -> int:
        return sum(k in table for k in pool.keys)

    net_archs = _network_archs(sp, n_networks, seed + 1)
    nets = _read_networks(nets_path)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, disable=console is None) as bar:
        task = bar.add_task(f"{name}: {space} blocks", total=budget, completed=done_in_pool())

        def advance(k: int) -> None:
            bar.update(task, completed=done_in_pool())

        todo = [k for k in seed_set(pool, min(seed_blocks, budget), rng) if k not in table]
        _measure_blocks(runner, todo, pool.blocks, table_path, table, advance)
        while done_in_pool() < budget and not out_of_time():
            means = {k: e.mean for k, e in table.items()}
            keys = next_batch(pool, means, min(batch, budget - done_in_pool()), rng)
            if not keys:
                break
            _measure_blocks(runner, keys, pool.blocks, table_path, table, advance)
        net_todo = [a for a in net_archs if a.arch_id not in nets]
        ntask = bar.add_task(f"{name}: whole networks", total=len(net_archs),
                             completed=len(net_archs) - len(net_todo))
        for i in range(0, len(net_todo), NET_CHUNK):  # appended chunk by chunk (resumable)
            chunk = net_todo[i:i + NET_CHUNK]
            got = measure_networks(runner, sp, chunk, lambda k: bar.advance(ntask, k))
            for a, (ms, _std) in zip(chunk, got, strict=True):
                nets[a.arch_id] = ms
            _append(nets_path, NET_HEADER, [[a.arch_id, space, repr(ms), repr(std),
                                             json.dumps(a.to_dict(), sort_keys=True)]
                                            for a, (ms, std) in zip(chunk, got, strict=True)])

    means = {k: e.mean for k, e in table.items()}
    regs = BlockRegressors.fit(means, seed=seed, min_tree_rows=MIN_TREE_ROWS, base=BASE)
    regs.save(folder / REGRESSORS_DIR)
    LatencyTable(table).write_csv(table_path)  # sorted, de-torn
    old = DeviceProfile.load(folder) if (folder / PROFILE_FILE).is_file() else None
    spaces = sorted({space, *(old.spaces if old else [])})
    profile = DeviceProfile(
        name=name,
        hardware=(cpu_description() if backend != "command" else
                  f"reached through `{command}`"),
        runtime=runner.runtime(),
        provenance="measured",
        spaces=spaces,
        source=f"measured on this machine by `nas profile` ({len(table)} blocks)",
        description=("Blocks measured one by one (block-shape keys), per-family regressors for "
                     "the rest (labelled predicted), plus the runtime's fitted fusion rule."),
        table=TABLE_FILE,
        regressors=REGRESSORS_DIR,
        errors={"holdout": _holdout(means, seed)},
    )
    bare = BlockSumLatencyModel(profile, table=LatencyTable(table), regressors=regs,
                                keying="block")
    fusion_nets = [a for a in net_archs if a.arch_id in nets]
    if fusion_nets:
        sums = bare.predict_many(fusion_nets)
        nblk = [len(sp.blocks(a)) for a in fusion_nets]
        fusion = fit_fusion(sums.tolist(), nblk, [nets[a.arch_id] for a in fusion_nets])
        profile.errors["fusion"] = fusion.rel_err
        fusion_dict: dict[str, Any] = fusion.to_dict()
    else:
        fusion_dict = {}
    profile.extra = {
        "profiler": {**runner.config(), "repeats": repeats, "n_archs": n_archs, "seed": seed,
                     "budget": budget, "cpus": list(cpus) if cpus else None},
        "keying": block_key_scheme(space).name,
        "fusion": fusion_dict,
        "measured_blocks": len(table),
        "candidates": {space: len(pool.keys)},
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    profile.save(folder)
    _devices._MODELS.clear()
    if console is not None:
        f = fusion_dict
        rule = (f"network = {f['per_network_ms']:+.3f} ms + sum({f['scale']:.3f} x block "
                f"{f['per_block_ms']:+.4f} ms) (form {f['rel_err']['form']}), fit on "
                f"{f['n_networks']} networks (leave-one-out mean err "
                f"{f['rel_err']['loo_mean']:.1%})") if f else "plain block sum"
        console.print(f"profiled [bold]{name}[/bold]: {len(table)} blocks measured "
                      f"({done_in_pool()} of {len(pool.keys)} {space} candidates); fusion rule: "
                      f"{rule}; written to {folder}")
    return profile
