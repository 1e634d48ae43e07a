"""The architecture config beside an exported model file: what rebuilds its static model
(arch, space, classes, input size) and the verification block an export appends."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import torch
import yaml

from nasforge.errors import InvalidInputError
from nasforge.search_spaces.io import ArchFile
from nasforge.search_spaces.io import arch_file_from_data
from nasforge.search_spaces.io import read_arch_file
from nasforge.search_spaces.registry import get_space
from nasforge.supernet.static import build_static

if TYPE_CHECKING:
    from torch import nn

    from nasforge.experiments.export.result import ExportResult
    from nasforge.search_spaces.arch import Arch
    from nasforge.search_spaces.base import SearchSpace

__all__ = ["ArchConfig", "append_verification", "arch_config_from_data", "load_arch_config",
           "write_arch_config"]


@dataclass(frozen=True)
class ArchConfig:
    """An architecture with what is needed to rebuild its static model.

    Attributes:
        arch: the (validated) architecture.
        space: its search space.
        num_classes: classifier width, ``None`` when the file does not say.
        input_size: input side the model was exported at, ``None`` when the file does not say.
        extra: every other top-level key of the file (format, verification, source, ...).
    """

    arch: Arch
    space: SearchSpace
    num_classes: int | None = None
    input_size: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build_model(self) -> nn.Module:
        """A randomly initialised static model (the global torch RNG is left untouched)."""
        with torch.random.fork_rng(devices=[]):
            return build_static(self.space, self.arch, num_classes=self.num_classes)


def _positive_int(value: Any, key: str, source: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{source}: `{key}` must be a positive integer, got {value!r}")
    return value


def arch_config_from_data(data: Any, source: str = "<input>") -> ArchConfig:
    """An :class:`ArchConfig` from parsed YAML/JSON.

    Accepts our architecture file (a mapping with ``space`` and the arch's fields, as
    ``arch.to_yaml()`` writes it) or the config :func:`write_arch_config` writes (``arch:``
    holding that mapping, beside ``num_classes``, ``input_size`` and more).

    Raises:
        InvalidInputError: not a mapping, several archs, or bad ``num_classes`` /
            ``input_size``.
        InvalidArchitectureError: the arch is outside its space.
        UnknownNameError: unknown space.
    """
    return _arch_config(arch_file_from_data(data, source))


def load_arch_config(path: str | Path) -> ArchConfig:
    """Read an architecture file or an export config (see :func:`arch_config_from_data`)."""
    return _arch_config(read_arch_file(path))


def _arch_config(file: ArchFile) -> ArchConfig:
    rest = dict(file.extra)
    arch = file.one()
    num_classes = _positive_int(rest.pop("num_classes", None), "num_classes", file.source)
    input_size = _positive_int(rest.pop("input_size", None), "input_size", file.source)
    return ArchConfig(arch, get_space(arch.space), num_classes, input_size, rest)


def write_arch_config(path: str | Path, arch: Arch, num_classes: int, input_size: int,
                      extra: dict[str, Any] | None = None) -> Path:
    """Write the YAML config of an exported model: ``arch:`` (as ``arch.to_yaml()``), ``space``,
    ``num_classes``, ``input_size`` and ``extra`` keys. :func:`load_arch_config` reads it back.
    """
    path = Path(path)
    arch_text = "".join(f"  {line}\n" for line in arch.to_yaml().splitlines())
    rest = {"space": arch.space, "arch_id": arch.arch_id, "num_classes": num_classes,
            "input_size": input_size, **(extra or {})}
    path.write_text(
        f"# nasforge export config; rebuild with nasforge.experiments.load_arch_config\n"
        f"arch:\n{arch_text}"
        + yaml.safe_dump(rest, sort_keys=False, default_flow_style=False)
    )
    return path


def append_verification(config_path: Path, r: ExportResult) -> None:
    """Append the ``verification`` block (and the target ``device``) of ``r`` to its config."""
    block = {"verification": {
        "max_abs_diff": float(f"{r.max_abs_diff:.3e}"),
        "tolerance": float(f"{r.tolerance:.3e}"), "atol": r.atol, "rtol": r.rtol,
        "output_scale": float(f"{r.output_scale:.4g}"), "ok": r.ok,
        "runtime": r.runtime, "latency_ms": round(r.latency_ms, 3), "runs": r.runs,
        "threads": r.threads,
    }}
    if r.device is not None:
        block["device"] = {"name": r.device, "predicted_ms": r.predicted_ms}
    with config_path.open("a") as f:
        f.write(yaml.safe_dump(block, sort_keys=False, default_flow_style=False))
