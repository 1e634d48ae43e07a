"""Devices nasforge profiles itself: folder names, the ``cpu-local`` alias, loading.

``nas profile --device cpu-local --backend B --threads T`` writes
``$NASFORGE_CACHE/devices/cpu-local-B-tT/`` (``cpu-local-B-tT-cpuclock`` with ``--clock cpu``):

* ``table.csv``: measured blocks (block-shape keys), appended as they are measured;
* ``networks.csv``: end-to-end runs behind the fusion rule, appended likewise;
* ``regressors/``: per-family regressors fitted on the table;
* ``profile.json``: hardware, runtime, provenance, the profiler configuration
  (``extra.profiler``) and the fusion rule (``extra.fusion``); written last, so a folder
  without it is an unfinished profile that the next run resumes.

The name ``cpu-local`` is an alias: ``cpu-local-torch-t1`` when it exists, else the most
recently profiled ``cpu-local-*``. Likewise ``cpu-local-litert`` (this machine measured with
LiteRT, the phone's runtime) stands for ``cpu-local-litert-t1``, else the most recent
``cpu-local-litert-*``, and ``cpu-local-executorch`` (ExecuTorch with XNNPACK) for
``cpu-local-executorch-t1``, else the most recent ``cpu-local-executorch-*``. A device
profiled with ``--backend command`` under another name (a phone) lives in
``$NASFORGE_CACHE/devices/<name>/`` with the same layout.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from nasforge._paths import devices_cache_dir
from nasforge.errors import MissingLatencyError
from nasforge.hardware_models._fusion import Fusion
from nasforge.hardware_models._lut import read_table
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import PROFILE_FILE
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._regressor import BlockRegressors

__all__ = [
    "EXECUTORCH_LOCAL",
    "LITERT_LOCAL",
    "LOCAL",
    "LOCAL_ALIASES",
    "cpu_description",
    "is_profiled",
    "load_profiled",
    "local_device_name",
    "resolve_local",
]

LOCAL = "cpu-local"
DEFAULT_LOCAL = f"{LOCAL}-torch-t1"
LITERT_LOCAL = f"{LOCAL}-litert"
EXECUTORCH_LOCAL = f"{LOCAL}-executorch"
#: alias -> the folder it prefers (else the newest folder starting with ``alias-``).
LOCAL_ALIASES = {LOCAL: DEFAULT_LOCAL, LITERT_LOCAL: f"{LITERT_LOCAL}-t1",
                 EXECUTORCH_LOCAL: f"{EXECUTORCH_LOCAL}-t1"}
TABLE_FILE = "table.csv"
NETWORKS_FILE = "networks.csv"
REGRESSORS_DIR = "regressors"


def local_device_name(backend: str, threads: int, clock: str = "wall") -> str:
    """``cpu-local-<backend>-t<threads>``, with ``-cpuclock`` for the CPU-time clock."""
    return f"{LOCAL}-{backend}-t{threads}" + ("-cpuclock" if clock == "cpu" else "")


def cpu_description() -> str:
    """CPU model (``/proc/cpuinfo``), logical cores and usable cores of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    model = model or platform.processor() or platform.machine()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {os.cpu_count()} logical cores ({usable} usable), {platform.machine()}"


def is_profiled(folder: Path) -> bool:
    """Whether ``folder`` holds a finished nasforge profile."""
    if not (folder / PROFILE_FILE).is_file():
        return False
    return "profiler" in DeviceProfile.load(folder).extra


def resolve_local(name: str = LOCAL) -> Path:
    """The folder the name ``cpu-local`` (``cpu-local-litert``, or ``cpu-local-B-tT``) stands for.

    Raises:
        MissingLatencyError: nothing profiled yet; the message says how to profile.
    """
    root = devices_cache_dir()
    if name not in LOCAL_ALIASES:
        folder = root / name
        if (folder / PROFILE_FILE).is_file():
            return folder
        raise _not_profiled(name)
    preferred = LOCAL_ALIASES[name]
    if (root / preferred / PROFILE_FILE).is_file():
        return root / preferred
    found = sorted(root.glob(f"{name}-*/{PROFILE_FILE}"), key=lambda p: p.stat().st_mtime_ns)
    if not found:
        raise _not_profiled(name)
    return found[-1].parent


def _not_profiled(name: str) -> MissingLatencyError:
    backend = (" --backend litert" if name.startswith(LITERT_LOCAL) else
               " --backend executorch" if name.startswith(EXECUTORCH_LOCAL) else "")
    return MissingLatencyError(
        f"device {name!r} has not been profiled on this machine yet (nothing in "
        f"{devices_cache_dir()}); run `nas profile --device cpu-local{backend} --space SPACE` "
        "first")


def load_profiled(folder: Path) -> BlockSumLatencyModel:
    """The latency model of a profiled device folder: table, regressors, fusion rule.

    Raises:
        InvalidInputError: malformed files.
        MissingLatencyError: no profile in ``folder``.
    """
    folder = Path(folder)
    if not (folder / PROFILE_FILE).is_file():
        raise _not_profiled(folder.name)
    profile = DeviceProfile.load(folder)
    table = read_table(folder / profile.table, "csv") if profile.table else None
    regs = (BlockRegressors.load(folder / profile.regressors)
            if profile.regressors and (folder / profile.regressors).is_dir() else None)
    prof = profile.extra.get("profiler") or {}
    where = (f"table ({prof.get('backend', '?')} on {profile.hardware}, "
             f"{str(profile.extra.get('date', ''))[:10]})")
    return BlockSumLatencyModel(profile, table=table, regressors=regs, keying="block",
                                fusion=Fusion.from_dict(profile.extra.get("fusion")),
                                table_source=where)
