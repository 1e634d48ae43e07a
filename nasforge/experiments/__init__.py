"""Runs: experiment configs, results storage, sweeps, reports and model export.

The public names load their modules on first use (PEP 562), so importing a light submodule
such as :mod:`nasforge.experiments.config` — which the CLI does at start-up — does not import
torch, onnx or Ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasforge._lazy import lazy_exports

if TYPE_CHECKING:
    from nasforge.experiments.export import EXPORT_FORMATS
    from nasforge.experiments.export import ArchConfig
    from nasforge.experiments.export import ExportFormat
    from nasforge.experiments.export import ExportResult
    from nasforge.experiments.export import ExportVerificationError
    from nasforge.experiments.export import export_model
    from nasforge.experiments.export import export_name
    from nasforge.experiments.export import extract_subnet
    from nasforge.experiments.export import load_arch_config
    from nasforge.experiments.export import predict_device_ms
    from nasforge.experiments.export import write_arch_config
    from nasforge.experiments.report import ReportOutcome
    from nasforge.experiments.report import make_report
    from nasforge.experiments.sweep import SweepConfig
    from nasforge.experiments.sweep import SweepOutcome
    from nasforge.experiments.sweep import load_sweep
    from nasforge.experiments.sweep import run_sweep

#: public name -> the submodule defining it
_SOURCES = {
    "EXPORT_FORMATS": "export", "ExportFormat": "export",
    "ArchConfig": "export", "ExportResult": "export", "ExportVerificationError": "export",
    "export_model": "export", "export_name": "export", "extract_subnet": "export",
    "load_arch_config": "export", "predict_device_ms": "export", "write_arch_config": "export",
    "ReportOutcome": "report", "make_report": "report",
    "SweepOutcome": "sweep", "run_sweep": "sweep",
    "SweepConfig": "sweep", "load_sweep": "sweep",
}

__all__ = [
    "EXPORT_FORMATS",
    "ArchConfig",
    "ExportFormat",
    "ExportResult",
    "ExportVerificationError",
    "ReportOutcome",
    "SweepConfig",
    "SweepOutcome",
    "export_model",
    "export_name",
    "extract_subnet",
    "load_arch_config",
    "load_sweep",
    "make_report",
    "predict_device_ms",
    "run_sweep",
    "write_arch_config",
]


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
