"""Runs: experiment configs, results storage, sweeps, reports and model export."""

from __future__ import annotations

from nasforge.experiments._formats import EXPORT_FORMATS
from nasforge.experiments._formats import ExportFormat
from nasforge.experiments.export import ArchConfig
from nasforge.experiments.export import ExportResult
from nasforge.experiments.export import ExportVerificationError
from nasforge.experiments.export import export_model
from nasforge.experiments.export import export_name
from nasforge.experiments.export import extract_subnet
from nasforge.experiments.export import load_arch_config
from nasforge.experiments.export import predict_device_ms
from nasforge.experiments.export import write_arch_config
from nasforge.experiments.pool import SupernetActorPool
from nasforge.experiments.report import ReportOutcome
from nasforge.experiments.report import make_report
from nasforge.experiments.sweep import SweepOutcome
from nasforge.experiments.sweep import run_sweep
from nasforge.experiments.sweep_config import SweepConfig
from nasforge.experiments.sweep_config import load_sweep

__all__ = [
    "EXPORT_FORMATS",
    "ArchConfig",
    "ExportFormat",
    "ExportResult",
    "ExportVerificationError",
    "ReportOutcome",
    "SupernetActorPool",
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
