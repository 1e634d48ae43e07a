"""The device registry: shipped phones, derived devices, and the user's imported devices.

* Shipped devices live in ``nasforge/hardware_models/devices/<name>/`` (package data): a
  ``profile.json`` plus fitted regressors, or a ``derived`` section naming a base device and a
  factor.
* ``nas hw import`` writes ``$NASFORGE_CACHE/devices/<name>/`` (a ``table.csv`` and a
  ``profile.json``). A user device with a shipped name overlays it: the measured table answers
  first, the shipped regressors fill the gaps.
* ``nas profile`` writes ``$NASFORGE_CACHE/devices/cpu-local-<backend>-t<threads>/`` (or the
  name given with ``--backend command``); ``cpu-local`` is registered as an alias of the
  profiled folder (:mod:`~nasforge.hardware_models._local`) and raises
  :class:`~nasforge.errors.MissingLatencyError` with the ``nas profile`` command to run until
  one exists.

:func:`get_device` resolves a name to a :class:`~nasforge.hardware_models.base.LatencyModel`;
an unknown name raises :class:`~nasforge.errors.UnknownNameError` with the closest name.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial
from pathlib import Path

from nasforge._paths import devices_cache_dir
from nasforge.errors import InvalidInputError
from nasforge.errors import MissingLatencyError
from nasforge.errors import UnknownNameError
from nasforge.hardware_models._analytic import AnalyticEstimator
from nasforge.hardware_models._features import parse_key
from nasforge.hardware_models._keys import get_key_scheme
from nasforge.hardware_models._lm_latency import FeatureLatencyModel
from nasforge.hardware_models._lm_latency import is_feature_device
from nasforge.hardware_models._lm_latency import load_feature_model
from nasforge.hardware_models._lm_latency import split_measure
from nasforge.hardware_models._local import LOCAL_ALIASES
from nasforge.hardware_models._local import load_profiled
from nasforge.hardware_models._local import resolve_local
from nasforge.hardware_models._lut import TABLE_FORMATS
from nasforge.hardware_models._lut import LatencyTable
from nasforge.hardware_models._lut import read_table
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import PROFILE_FILE
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.hardware_models.base import LatencyModel
from nasforge.registry import Registry

__all__ = [
    "DEVICES",
    "SHIPPED_DIR",
    "clear_device_cache",
    "device_profile",
    "device_profiles",
    "get_device",
    "import_table",
    "list_devices",
    "read_checked_table",
    "register_device",
]

#: Folder of the shipped device profiles (package data).
SHIPPED_DIR = Path(__file__).parent / "devices"
USER_TABLE = "table.csv"

#: name -> zero-argument factory returning the device's latency model.
DEVICES: Registry[Callable[[], LatencyModel]] = Registry("device")

_MODELS: dict[tuple[object, ...], LatencyModel] = {}


def register_device(name: str, factory: Callable[[], LatencyModel]) -> None:
    """Register a device ``name`` whose model ``factory()`` builds (duplicates raise)."""
    DEVICES.add(name, factory)


def _user_names() -> list[str]:
    root = devices_cache_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / PROFILE_FILE).is_file())


def _view() -> Registry[Callable[[], LatencyModel]]:
    reg: Registry[Callable[[], LatencyModel]] = Registry("device")
    for n in DEVICES.list():
        reg.add(n, DEVICES.get(n))
    for n in _user_names():
        if n not in reg:
            reg.add(n, partial(_load_device, n))
    return reg


def list_devices() -> list[str]:
    """All device names: registered (shipped) and the user's imported or profiled ones."""
    return _view().list()


def _mtime(folder: Path) -> float:
    p = folder / PROFILE_FILE
    return p.stat().st_mtime_ns if p.is_file() else -1.0


def get_device(name: str) -> LatencyModel:
    """The latency model of device ``name`` (cached while its files are unchanged).

    A language-model device answers ``NAME:MEASURE`` too (``raspberrypi:decoder``,
    ``cpu-local-elastic_lm:prefill``; :mod:`~nasforge.hardware_models._lm_latency`).

    Raises:
        UnknownNameError: no such device; the message lists them and the closest name.
        InvalidInputError: a measure on a device without measures, or an unknown measure.
    """
    base, measure = split_measure(name)
    if measure is not None:
        lm = get_device(base)
        if not isinstance(lm, FeatureLatencyModel):
            raise InvalidInputError(f"device {base!r} has one latency; ':{measure}' selects a "
                                    "measure of a language-model device only")
        return lm.with_measure(measure)
    factory = _view().get(name)
    folder = resolve_local(name) if name in LOCAL_ALIASES else devices_cache_dir() / name
    key = (name, str(folder), _mtime(folder), _mtime(SHIPPED_DIR / name))
    model = _MODELS.get(key)
    if model is None:
        model = _MODELS[key] = factory()
    return model


def clear_device_cache() -> None:
    """Forget the loaded latency models (after a device folder was rewritten)."""
    _MODELS.clear()


def device_profile(name: str) -> DeviceProfile:
    """The profile of ``name`` (as :func:`get_device` would use it)."""
    return get_device(name).profile


def device_profiles() -> list[DeviceProfile]:
    """The profile of every device (:func:`list_devices`), as ``nas devices`` lists them.

    A local alias not profiled yet (``cpu-local`` before ``nas profile``) gets a placeholder
    whose description says how to profile it.

    Example:
        >>> from nasforge.hardware_models import device_profiles
        >>> {p.name: p.provenance for p in device_profiles()}["pixel7"]
        'derived'
    """
    profiles = []
    for name in list_devices():
        try:
            profiles.append(device_profile(name))
        except MissingLatencyError:  # cpu-local before `nas profile`
            profiles.append(DeviceProfile(name, hardware="this machine", provenance="measured",
                                          description="not profiled yet: run `nas profile "
                                          "--device cpu-local --space SPACE`"))
    return profiles


def _read_profile(folder: Path) -> DeviceProfile | None:
    return DeviceProfile.load(folder) if (folder / PROFILE_FILE).is_file() else None


def _load_device(name: str) -> LatencyModel:
    shipped = _read_profile(SHIPPED_DIR / name)
    user = _read_profile(devices_cache_dir() / name)
    if shipped is None and user is None:
        raise _unknown_device(name)
    if user is not None and is_feature_device(user) and user.folder is not None:
        return load_feature_model(user.folder)  # HAT CSV import, LM profile
    if user is not None and "profiler" in user.extra and user.folder is not None:
        return load_profiled(user.folder)
    table: LatencyTable | None = None
    if user is not None and user.table and user.folder is not None:
        table = read_checked_table(user.folder / user.table, "csv")
    if shipped is not None and shipped.derived and table is None:
        base = get_device(str(shipped.derived["from"]))
        if not isinstance(base, BlockSumLatencyModel):
            raise InvalidInputError(f"device {name!r} is derived from {base.name!r}, which is "
                                    "not a block-sum model")
        return BlockSumLatencyModel(shipped, table=base.table, regressors=base.regressors,
                                    analytic=base.analytic,
                                    factor=float(shipped.derived["factor"]),
                                    derived_from=base.name)
    regs = None
    if shipped is not None and shipped.regressors and shipped.folder is not None:
        regs = BlockRegressors.load(shipped.folder / shipped.regressors)
    ana_src = user if (user is not None and user.analytic) else shipped
    analytic = AnalyticEstimator.from_dict(ana_src.analytic) if (
        ana_src is not None and ana_src.analytic) else None
    if user is not None and shipped is not None:
        profile = dataclasses.replace(
            shipped, provenance="measured", table=user.table, folder=user.folder,
            source=f"table: {user.source}; regressors: {shipped.source}",
            spaces=sorted(set(shipped.spaces) | set(user.spaces)),
            analytic=ana_src.analytic if ana_src is not None else None,
            description=(shipped.description + " Measured table imported by the user.").strip())
    else:
        profile = user if user is not None else shipped  # type: ignore[assignment]
    return BlockSumLatencyModel(profile, table=table, regressors=regs, analytic=analytic)


def read_checked_table(path: Path, fmt: str) -> LatencyTable:
    """:func:`read_table` behind the edge checks of issue 16.

    The file must be UTF-8; a JSON/YAML table must not repeat a key (the parser would keep
    the last one silently) nor nest deeper than :data:`nasforge.validation.MAX_DEPTH`; every
    entry's std must be finite and >= 0 (or unknown) and its count >= 0.

    Raises:
        InvalidInputError: the first problem, naming the file and the key.
    """
    if fmt not in TABLE_FORMATS:
        raise InvalidInputError(
            f"unknown latency-table format {fmt!r}; use one of {', '.join(TABLE_FORMATS)}")
    table = read_table(path, fmt)  # the bounded reader: regular file, size cap, unique keys
    for key in table:
        e = table[key]
        if math.isinf(e.std) or e.std < 0 or e.count < 0:
            raise InvalidInputError(
                f"{path}: key {key!r}: std must be finite and >= 0 (or left empty) and count "
                f">= 0, got std={e.std!r}, count={e.count!r}; fix or remove the entry")
    return table


def _unknown_device(name: str) -> UnknownNameError:
    return UnknownNameError(_view().unknown_message(name))


def import_table(
    path: Path,
    fmt: str,
    device: str,
    space: str,
    *,
    hardware: str = "",
    runtime: str = "",
) -> DeviceProfile:
    """Import a measured table into the user's cache as device ``device``.

    The table is validated (every key must follow a known key pattern), the analytical
    estimate is calibrated on it (fallback for keys it lacks), and both are written to
    ``$NASFORGE_CACHE/devices/<device>/``.

    Args:
        path: the table file.
        fmt: ``nnmeter-hybrid``, ``ofa-yaml`` or ``csv``.
        device: the device name to create or overlay (a shipped name overlays it).
        space: the search space the table keys (must have a key scheme).
        hardware: hardware description for the profile.
        runtime: runtime description for the profile.

    Raises:
        InvalidInputError: malformed file or key (names the file and the key or line), or a
            device name that is not a simple identifier.
        UnknownNameError: unknown space.
    """
    if not device or not all(c.isalnum() or c in "-_." for c in device) or device[0] == ".":
        raise InvalidInputError(
            f"device names use letters, digits, '-', '_' and '.', got {device!r}")
    get_key_scheme(space)  # unknown space -> UnknownNameError with the closest name
    table = read_checked_table(path, fmt)
    for k in table:
        try:
            parse_key(k)
        except Exception as e:
            raise InvalidInputError(f"{path}: key {k!r}: {e}") from None
    analytic = AnalyticEstimator.calibrate(table.means)
    folder = devices_cache_dir() / device
    table.write_csv(folder / USER_TABLE)
    shipped = _read_profile(SHIPPED_DIR / device)
    profile = DeviceProfile(
        name=device,
        hardware=hardware or (shipped.hardware if shipped else ""),
        runtime=runtime or (shipped.runtime if shipped else ""),
        provenance="measured",
        spaces=[space],
        source=f"imported from {Path(path).resolve()} ({fmt}, {len(table)} entries)",
        table=USER_TABLE,
        analytic=analytic.to_dict(),
    )
    profile.save(folder)
    clear_device_cache()
    return profile


for _p in sorted(SHIPPED_DIR.glob(f"*/{PROFILE_FILE}")):
    register_device(_p.parent.name, partial(_load_device, _p.parent.name))


def _load_local_alias(name: str) -> LatencyModel:
    return load_profiled(resolve_local(name))


for _alias in LOCAL_ALIASES:  # cpu-local, cpu-local-litert
    register_device(_alias, partial(_load_local_alias, _alias))
