"""The ``nas`` command.

Each topic lives in its own module (``_spaces``, ``_arch``, ``_hw``, ...) that adds commands to
:data:`app`; this module assembles them and maps user errors to one line and exit code 2.
"""

from __future__ import annotations

from nasforge.cli._app import app
from nasforge.cli._app import main

__all__ = ["app", "main"]
