"""The nasforge error hierarchy.

Every error a user can cause derives from :class:`NasforgeError`; the CLI turns those into one
line on stderr and exit code 2. Messages state the rule, the offending value and the fix.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "IncompatibleComponentsError",
    "InvalidArchitectureError",
    "InvalidInputError",
    "MissingDependencyError",
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


class MissingDependencyError(NasforgeError, ImportError):
    """An optional dependency (an extra of ``nasforge``) is not installed."""


class ConfigError(InvalidInputError):
    """A field of an experiment or sweep file is missing, unknown or of the wrong type.

    The message is ``[source: ]path: problem``; the parts are attributes, so a caller that
    re-frames the error (a sweep naming the grid value at fault) reads them instead of parsing
    the text.

    Example:
        >>> e = ConfigError("strategy.population", "must be an integer >= 1, got 'many'", "x.yaml")
        >>> str(e), e.path
        ("x.yaml: strategy.population: must be an integer >= 1, got 'many'", 'strategy.population')

    Attributes:
        path: the field path (``constraints.latency_ms``, ``grid.seed[1]``; ``(top level)``
            for the file itself).
        problem: what is wrong and what to write instead.
        source: the file (empty when the data did not come from a file).
    """

    def __init__(self, path: str, problem: str, source: str = "") -> None:
        self.path, self.problem, self.source = path, problem, source
        super().__init__(f"{source}: {path}: {problem}" if source else f"{path}: {problem}")

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, str, str]]:
        return type(self), (self.path, self.problem, self.source)
