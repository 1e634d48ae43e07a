"""Device profiles: what a device is, how it runs models, and where its numbers come from.

A profile is a JSON file (``profile.json``) in a device folder, next to the parts it names: a
measured table (``table.csv``), fitted regressors (``regressors/``), and the analytical-estimate
parameters and error figures inline. Shipped devices live in
``nasforge/hardware_models/devices/<name>/``; imported and profiled ones in
``$NASFORGE_CACHE/devices/<name>/``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

from nasforge.errors import InvalidInputError
from nasforge.hardware_models.base import PROVENANCES
from nasforge.hardware_models.base import Provenance
from nasforge.validation import check_inside
from nasforge.validation import parse_structured
from nasforge.validation import read_text

__all__ = ["PROFILE_FILE", "DeviceProfile"]

PROFILE_FILE = "profile.json"


@dataclass
class DeviceProfile:
    """One device.

    Attributes:
        name: registered device name (``pixel6``, ``cpu-local``, ...).
        hardware: SoC / CPU description.
        runtime: how models run (``TFLite fp32, 1 thread, big core``, ...).
        provenance: ``measured`` (a table), ``predicted`` (regressors fitted on measured data)
            or ``derived`` (another device times a documented factor).
        spaces: search spaces whose blocks the device's table or regressors cover.
        source: attribution of the data behind the numbers.
        description: free text.
        table: file name of the measured table in the device folder, or None.
        regressors: folder name of the fitted regressors in the device folder, or None.
        analytic: analytical-estimate parameters and calibration error, or None.
        errors: error figures of the regressors (held-out keys, whole networks).
        derived: for derived devices: ``from``, ``factor``, ``factor_low``, ``factor_high``,
            ``assumption``, ``uncertainty``.
        extra: anything else (profiler backend, threads, dates).
        folder: the device folder (not stored).
    """

    name: str
    hardware: str = ""
    runtime: str = ""
    provenance: Provenance = "measured"
    spaces: list[str] = field(default_factory=list)
    source: str = ""
    description: str = ""
    table: str | None = None
    regressors: str | None = None
    analytic: dict[str, Any] | None = None
    errors: dict[str, Any] = field(default_factory=dict)
    derived: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without ``folder``)."""
        d = asdict(self)
        d.pop("folder")
        return d

    def save(self, folder: Path) -> Path:
        """Write ``profile.json`` into ``folder`` (created); returns its path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / PROFILE_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n")
        self.folder = folder
        return path

    @classmethod
    def load(cls, folder: Path) -> DeviceProfile:
        """Read ``folder/profile.json``.

        Raises:
            InvalidInputError: missing file, malformed JSON, unknown fields or provenance.
        """
        path = Path(folder) / PROFILE_FILE
        data = parse_structured(read_text(path, "device profile"), str(path), kind="json")
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            raise InvalidInputError(f"{path}: a device profile is a JSON object with a 'name'")
        known = {f.name for f in fields(cls)} - {"folder"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"{path}: unknown profile field(s) {', '.join(unknown)}; "
                                    f"fields are {', '.join(sorted(known))}")
        if data.get("provenance", "measured") not in PROVENANCES:
            raise InvalidInputError(
                f"{path}: provenance must be one of {', '.join(PROVENANCES)}, got "
                f"{data.get('provenance')!r}")
        for key, kind in _FIELD_TYPES.items():
            if key in data and data[key] is not None and not isinstance(data[key], kind):
                raise InvalidInputError(
                    f"{path}: {key} must be {_KIND_NAMES[kind]}, got {data[key]!r}")
        if not all(isinstance(s, str) for s in data.get("spaces", [])):
            raise InvalidInputError(f"{path}: spaces must be a list of space names, got "
                                    f"{data['spaces']!r}")
        for key in ("table", "regressors"):  # stored paths stay inside the device folder
            if data.get(key) is not None:
                check_inside(folder, data[key], f"{path}: {key}")
        return cls(**data, folder=Path(folder))


#: the JSON type of each profile field (``None`` is allowed for the optional ones)
_FIELD_TYPES: dict[str, type] = {
    "hardware": str, "runtime": str, "source": str, "description": str, "spaces": list,
    "table": str, "regressors": str, "analytic": dict, "errors": dict, "derived": dict,
    "extra": dict,
}
_KIND_NAMES: dict[type, str] = {str: "a string", list: "a list", dict: "a JSON object"}
