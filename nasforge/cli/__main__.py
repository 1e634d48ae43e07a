"""``python -m nasforge.cli`` runs the ``nas`` command."""

from __future__ import annotations

from nasforge.cli._app import main

main()
