"""Model export: write a subnet as ONNX, TorchScript, safetensors, TFLite or ExecuTorch, then check.

:func:`export_model` (:mod:`.run`, in small steps) writes the model file (:mod:`.formats`) and
its architecture config (:mod:`.config`), runs the written file on its deployment runtime on one
fixed random input, compares the output with PyTorch's (max abs diff), and times it on this
machine (median of N runs after warm-up, pinned threads; :mod:`.checks`). Files are named as the
field names deployable subnets (``pixel7_lat@24.6ms_top1@71.3``) when the device latency and the
accuracy are known, else ``{space}_{arch_id}`` (:func:`export_name`). The weights come from a
trained supernet (:func:`extract_subnet`, :mod:`.weights`) or a fresh initialisation;
:func:`export_arch_file` (:mod:`.request`) does all of it from file and flag values.

Example:
    >>> import tempfile
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> arch = space.min_arch()
    >>> from nasforge.supernet.static import build_static
    >>> model = build_static(space, arch, num_classes=10)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     r = export_model(model, arch, space, "torchscript", d, input_size=64, runs=1)
    >>> r.ok, r.model_path.suffix
    (True, '.pt')
"""

from __future__ import annotations

from nasforge.experiments.export import _executorch  # noqa: F401  (registers executorch)
from nasforge.experiments.export import _int8  # noqa: F401  (registers the int8 formats)
from nasforge.experiments.export import _tflite  # noqa: F401  (registers the tflite format)
from nasforge.experiments.export._lm import export_language_model
from nasforge.experiments.export.config import ArchConfig
from nasforge.experiments.export.config import arch_config_from_data
from nasforge.experiments.export.config import load_arch_config
from nasforge.experiments.export.config import write_arch_config
from nasforge.experiments.export.formats import EXPORT_FORMATS
from nasforge.experiments.export.formats import ExportFormat
from nasforge.experiments.export.request import ExportRequest
from nasforge.experiments.export.request import export_arch_file
from nasforge.experiments.export.result import ExportResult
from nasforge.experiments.export.result import ExportVerificationError
from nasforge.experiments.export.result import export_name
from nasforge.experiments.export.run import DEFAULT_RTOL
from nasforge.experiments.export.run import DEFAULT_TOLERANCE
from nasforge.experiments.export.run import export_model
from nasforge.experiments.export.weights import extract_subnet
from nasforge.experiments.export.weights import predict_device_ms

__all__ = [
    "DEFAULT_RTOL",
    "DEFAULT_TOLERANCE",
    "EXPORT_FORMATS",
    "ArchConfig",
    "ExportFormat",
    "ExportRequest",
    "ExportResult",
    "ExportVerificationError",
    "arch_config_from_data",
    "export_arch_file",
    "export_language_model",
    "export_model",
    "export_name",
    "extract_subnet",
    "load_arch_config",
    "predict_device_ms",
    "write_arch_config",
]
