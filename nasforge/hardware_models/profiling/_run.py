"""``nas profile``: measure a latency table on a reachable device, in named steps.

Any device a runner reaches is profiled here: this machine (``cpu-local`` with the ``torch``,
``onnxruntime`` or ``litert`` backend), a phone over ``adb``, or an external command. Each step
is resumable: measured rows are appended to the folder's CSV files as they come, and a rerun
skips what is there (:mod:`~nasforge.hardware_models.profiling._folder`).

:func:`profile_device` only validates and wires; the steps are
:mod:`~nasforge.hardware_models.profiling._steps`:

1. :func:`~._steps.plan_blocks`: the candidate blocks of the space;
2. :func:`~._steps.measure_block_set`: a seed set, then adaptive rounds up to the budget;
3. :func:`~._steps.measure_network_set`: whole networks end to end;
4. :func:`~._steps.fit_regressors`: the per-family regressors (held-out error);
5. :func:`~nasforge.hardware_models.profiling._write.write_profile`: the runtime's fusion rule
   (:mod:`~nasforge.hardware_models._fusion`), the noise floor (median relative spread of the
   measured blocks and networks) and ``profile.json``: the device is then registered
   (``nas devices``).

Progress goes through :class:`nasforge.progress.ProgressBar`, the outcome to this module's
logger; nothing here prints.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasforge._lock import lock_run_folder
from nasforge.errors import InvalidInputError
from nasforge.hardware_models._local import NETWORKS_FILE
from nasforge.hardware_models._local import TABLE_FILE
from nasforge.hardware_models._lut import LatencyEntry
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models.profiling._folder import profiled_device_folder
from nasforge.hardware_models.profiling._steps import BlockPlan
from nasforge.hardware_models.profiling._steps import fit_regressors
from nasforge.hardware_models.profiling._steps import fusion_networks
from nasforge.hardware_models.profiling._steps import measure_block_set
from nasforge.hardware_models.profiling._steps import measure_network_set
from nasforge.hardware_models.profiling._steps import network_archs
from nasforge.hardware_models.profiling._steps import plan_blocks
from nasforge.hardware_models.profiling._write import write_profile
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import make_runner
from nasforge.search_spaces.base import SearchSpace
from nasforge.search_spaces.registry import get_space

__all__ = ["ProfileSettings", "profile_device"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfileSettings:
    """How much of a space :func:`profile_device` measures (see its arguments).

    Raises:
        InvalidInputError: ``budget`` or ``batch`` below 1, ``seed_blocks`` or ``n_networks``
            below 0.
    """

    n_archs: int = 200
    seed: int = 0
    budget: int = 400
    seed_blocks: int = 150
    batch: int = 16
    time_budget_s: float | None = None
    n_networks: int = 20
    repeats: int = 15
    cpus: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        budget, batch = self.budget, self.batch
        seed_blocks, n_networks = self.seed_blocks, self.n_networks
        if budget < 1 or seed_blocks < 0 or batch < 1 or n_networks < 0:
            raise InvalidInputError(
                f"budget and batch must be >= 1, seed_blocks and n_networks >= 0, but got "
                f"{budget=}, {batch=}, {seed_blocks=}, {n_networks=}")

    def recorded(self, plan: BlockPlan) -> dict[str, Any]:
        """The settings ``profile.json`` records (``extra.profiler``), the clipped budget."""
        return {"repeats": self.repeats, "n_archs": self.n_archs, "seed": self.seed,
                "budget": plan.budget, "cpus": list(self.cpus) if self.cpus else None}


def profile_device(
    device: str, space: str, *, backend: str = "torch", command: str = "", threads: int = 1,
    n_archs: int = 200, seed: int = 0, budget: int = 400, seed_blocks: int = 150,
    batch: int = 16, time_budget_s: float | None = None, n_networks: int = 20, repeats: int = 15,
    cpus: tuple[int, ...] | None = None, clock: str = "wall", serial: str = "", workers: int = 1,
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
            :mod:`~nasforge.hardware_models.profiling.base`.
        serial: ``adb``: the phone's serial (empty: the only one attached).
        workers: ``litert`` / ``adb``: conversion processes.

    Returns:
        The written profile.

    Raises:
        InvalidInputError: bad backend, device name or budgets; an unreachable phone; a block
            the converter cannot convert (named).
        UnknownNameError: unknown space.
    """
    settings = ProfileSettings(n_archs=n_archs, seed=seed, budget=budget,
                               seed_blocks=seed_blocks, batch=batch, time_budget_s=time_budget_s,
                               n_networks=n_networks, repeats=repeats, cpus=cpus)
    sp = _space_with_blocks(space)
    name, folder = profiled_device_folder(device, backend, threads, clock)
    runner = make_runner(backend, threads=threads, command=command, repeats=repeats, cpus=cpus,
                         clock=clock, workers=workers, serial=serial)
    runner.check()  # a phone: reached before anything is converted
    with lock_run_folder(folder, "profile of this device", flag=None):  # creates it
        return _profile(runner, sp, name, folder, settings)


def _space_with_blocks(space: str) -> SearchSpace:
    sp = get_space(space)
    if not sp.has_model:
        raise InvalidInputError(f"space {space!r} is tabular: it has no blocks to build and time")
    return sp


def _profile(runner: Runner, sp: SearchSpace, name: str, folder: Path,
             s: ProfileSettings) -> DeviceProfile:
    """Steps 1 to 5 in a prepared folder."""
    plan = plan_blocks(sp, s.n_archs, s.budget, s.seed)
    table = measure_block_set(runner, plan, folder / TABLE_FILE, seed_blocks=s.seed_blocks,
                              batch=s.batch, time_budget_s=s.time_budget_s, label=name)
    nets = measure_network_set(runner, sp, network_archs(sp, s.n_networks, s.seed),
                               folder / NETWORKS_FILE, name)
    fit_archs = fusion_networks(folder, sp, s.n_networks, s.seed) if s.n_networks else []
    regs, holdout = fit_regressors(table, folder, s.seed)
    profile = write_profile(name=name, folder=folder, space=sp, runner=runner, table=table,
                            regs=regs, holdout=holdout, nets=nets, fusion_archs=fit_archs,
                            settings=s.recorded(plan), n_candidates=len(plan.pool.keys))
    _log_outcome(profile, plan, table, folder)
    return profile


def _log_outcome(profile: DeviceProfile, plan: BlockPlan, table: dict[str, LatencyEntry],
                 folder: Path) -> None:
    f = profile.extra["fusion"]
    rule = (f"network = {f['per_network_ms']:+.3f} ms + sum({f['scale']:.3f} x block "
            f"{f['per_block_ms']:+.4f} ms {f.get('per_mparam_ms', 0.0):+.4f} ms x M weights) "
            f"(form {f['rel_err']['form']}), fit on "
            f"{f['n_networks']} networks") if f else "plain block sum"
    logger.info("profiled %s: %d blocks measured (%d of %d %s candidates); fusion rule: %s; "
                "written to %s", profile.name, len(table), plan.done(table), len(plan.pool.keys),
                plan.space.name, rule, folder)
