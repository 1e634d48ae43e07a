"""The nasforge error hierarchy.

Every error a user can cause derives from :class:`NasforgeError`; the CLI turns those into one
line on stderr and exit code 2. Messages state the rule, the offending value and the fix.
"""

from __future__ import annotations

__all__ = [
    "IncompatibleComponentsError",
    "InvalidArchitectureError",
    "InvalidInputError",
    "MissingLatencyError",
    "NasforgeError",
    "UnknownNameError",
    "UnknownPluginError",
]


class NasforgeError(Exception):
    """Base class of every error nasforge raises for bad input or bad combinations."""


class UnknownNameError(NasforgeError, KeyError):
    """A name (space, device, strategy, ...) is not in its registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


UnknownPluginError = UnknownNameError


class InvalidArchitectureError(NasforgeError, ValueError):
    """An architecture has a field outside its search space."""


class InvalidInputError(NasforgeError, ValueError):
    """A file or value given by the user is malformed (YAML, JSON, LUT, checkpoint, ...)."""


class IncompatibleComponentsError(NasforgeError, ValueError):
    """Two components cannot work together (a checkpoint of another space, two accuracy sources)."""


class MissingLatencyError(NasforgeError, LookupError):
    """A block has neither a measured table entry nor a regressor; never silently zero."""
