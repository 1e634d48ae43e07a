"""Latency, the predict side: devices, lookup tables, per-block regressors, fusion, estimates.

Importing this package registers the shipped devices (``pixel1``, ``pixel4``, ``pixel6``,
``xiaomi11``, ``pixel7``), the ``cpu-local`` alias of this machine (usable once ``nas profile``
has measured it) and the key schemes of the spaces it can key. Latency is a function of
``space.blocks(arch)`` only; nothing here imports :mod:`nasforge.supernet` or loads torch. The
measure side (profiler backends, ``nas profile``, ``nas hw validate``) is
:mod:`nasforge.hardware_models.profiling`, which does.

Example:
    >>> import numpy as np
    >>> from nasforge.hardware_models import get_device
    >>> from nasforge.search_spaces import get_space
    >>> space = get_space("elasticvit")
    >>> model = get_device("pixel6")
    >>> ms = model.predict(space.min_arch())
    >>> 0 < ms < 100
    True
"""

from __future__ import annotations

from nasforge.hardware_models._analytic import AnalyticEstimator
from nasforge.hardware_models._blockkeys import BlockKeys
from nasforge.hardware_models._blockkeys import block_key
from nasforge.hardware_models._derive import pixel7_derivation
from nasforge.hardware_models._devices import DEVICES
from nasforge.hardware_models._devices import SHIPPED_DIR
from nasforge.hardware_models._devices import device_profile
from nasforge.hardware_models._devices import device_profiles
from nasforge.hardware_models._devices import get_device
from nasforge.hardware_models._devices import import_table
from nasforge.hardware_models._devices import list_devices
from nasforge.hardware_models._devices import register_device
from nasforge.hardware_models._drift import DRIFT_THRESHOLD
from nasforge.hardware_models._drift import DriftReport
from nasforge.hardware_models._fit import regressor_report
from nasforge.hardware_models._fusion import Fusion
from nasforge.hardware_models._hat_csv import HATLatencyData
from nasforge.hardware_models._hat_csv import import_hat_csv
from nasforge.hardware_models._hat_csv import read_hat_csv
from nasforge.hardware_models._keys import KEY_SCHEMES
from nasforge.hardware_models._keys import KeyScheme
from nasforge.hardware_models._keys import NnMeterHybridKeys
from nasforge.hardware_models._keys import OfaKeys
from nasforge.hardware_models._keys import get_key_scheme
from nasforge.hardware_models._keys import key_family
from nasforge.hardware_models._keys import register_key_scheme
from nasforge.hardware_models._lm_latency import LM_FEATURES
from nasforge.hardware_models._lm_latency import FeatureLatencyModel
from nasforge.hardware_models._lm_latency import lm_features
from nasforge.hardware_models._lut import TABLE_FORMATS
from nasforge.hardware_models._lut import LatencyEntry
from nasforge.hardware_models._lut import LatencyTable
from nasforge.hardware_models._lut import read_table
from nasforge.hardware_models._model import BlockSumLatencyModel
from nasforge.hardware_models._profile import DeviceProfile
from nasforge.hardware_models._regressor import BlockRegressors
from nasforge.hardware_models._seq_model import PartsRegressor
from nasforge.hardware_models.base import PROVENANCES
from nasforge.hardware_models.base import BlockLatency
from nasforge.hardware_models.base import LatencyModel
from nasforge.hardware_models.base import Provenance

__all__ = [
    "DEVICES",
    "DRIFT_THRESHOLD",
    "KEY_SCHEMES",
    "LM_FEATURES",
    "PROVENANCES",
    "SHIPPED_DIR",
    "TABLE_FORMATS",
    "AnalyticEstimator",
    "BlockKeys",
    "BlockLatency",
    "BlockRegressors",
    "BlockSumLatencyModel",
    "DeviceProfile",
    "DriftReport",
    "FeatureLatencyModel",
    "Fusion",
    "HATLatencyData",
    "KeyScheme",
    "LatencyEntry",
    "LatencyModel",
    "LatencyTable",
    "NnMeterHybridKeys",
    "OfaKeys",
    "PartsRegressor",
    "Provenance",
    "block_key",
    "device_profile",
    "device_profiles",
    "get_device",
    "get_key_scheme",
    "import_hat_csv",
    "import_table",
    "key_family",
    "list_devices",
    "lm_features",
    "pixel7_derivation",
    "read_hat_csv",
    "read_table",
    "register_device",
    "register_key_scheme",
    "regressor_report",
]
