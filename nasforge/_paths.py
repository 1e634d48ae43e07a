"""Where nasforge keeps per-user files (imported latency tables, profiled devices, datasets).

The cache directory is ``$NASFORGE_CACHE`` when set, else ``~/.cache/nasforge``. It is read at
call time (never stored in a global), so tests and users can point it elsewhere per process.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir", "devices_cache_dir"]


def cache_dir() -> Path:
    """The nasforge cache directory (not created).

    Returns:
        ``Path($NASFORGE_CACHE)`` if that variable is set and non-empty, else
        ``~/.cache/nasforge``.
    """
    env = os.environ.get("NASFORGE_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nasforge"


def devices_cache_dir() -> Path:
    """The folder holding user devices: one sub-folder per device name (not created)."""
    return cache_dir() / "devices"
