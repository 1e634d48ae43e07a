"""nasforge: hardware-aware neural architecture search.

Weight-shared supernets over hybrid CNN / ViT / efficient-attention search spaces, per-device
latency models with provenance, and search strategies that output deployable subnets.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
