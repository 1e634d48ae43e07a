"""The measure side of latency: profiler backends, the shared protocol, ``nas profile``, validation.

Importing this package registers the profiler backends in :data:`RUNNERS` (``torch``,
``onnxruntime``, ``litert``, ``adb``, ``command``, ``executorch``, ``adb-executorch``; one
module each) and loads torch, which
:mod:`nasforge.hardware_models` (the predict side) never does.

* :func:`make_runner` builds a backend by name (:class:`Runner` is the interface);
* :mod:`~nasforge.hardware_models.profiling._protocol`: how every number is measured (pinned,
  interleaved, robust, spread recorded);
* :func:`profile_device` (``nas profile``): measure a device's latency table, regressors and
  fusion rule into ``$NASFORGE_CACHE/devices/<name>/``;
* :func:`validate_device` (``nas hw validate``): a device's model against end-to-end
  measurements of random subnets.

Example:
    >>> from nasforge.hardware_models.profiling import BACKENDS, RUNNERS
    >>> sorted(BACKENDS) == RUNNERS.list()
    True
"""

from __future__ import annotations

from nasforge.hardware_models.profiling import _adb  # noqa: F401  (registers its runner)
from nasforge.hardware_models.profiling import _command  # noqa: F401  (registers its runner)
from nasforge.hardware_models.profiling import _executorch_adb  # noqa: F401  (registers it)
from nasforge.hardware_models.profiling import _executorch_runner  # noqa: F401  (registers it)
from nasforge.hardware_models.profiling import _litert_runner  # noqa: F401  (registers its runner)
from nasforge.hardware_models.profiling import _onnxruntime  # noqa: F401  (registers its runner)
from nasforge.hardware_models.profiling import _torch  # noqa: F401  (registers its runner)
from nasforge.hardware_models.profiling._protocol import CLOCKS
from nasforge.hardware_models.profiling._protocol import Measurement
from nasforge.hardware_models.profiling._run import ProfileSettings
from nasforge.hardware_models.profiling._run import profile_device
from nasforge.hardware_models.profiling._validate import validate_device
from nasforge.hardware_models.profiling.base import BACKENDS
from nasforge.hardware_models.profiling.base import RUNNERS
from nasforge.hardware_models.profiling.base import Runner
from nasforge.hardware_models.profiling.base import RunnerOptions
from nasforge.hardware_models.profiling.base import make_runner

__all__ = [
    "BACKENDS",
    "CLOCKS",
    "RUNNERS",
    "Measurement",
    "ProfileSettings",
    "Runner",
    "RunnerOptions",
    "make_runner",
    "profile_device",
    "validate_device",
]
