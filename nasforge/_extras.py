"""Optional dependencies: import one, or say in one line which extra of nasforge installs it.

A bare ``pip install nasforge`` runs everything that needs no extra; a feature that needs one
imports its module through :func:`import_optional`, so a missing package is one line naming
the extra (``pip install 'nasforge[onnx]'``) and exit code 2 at the CLI, never a traceback.

Example:
    >>> import_optional("json", extra="none", feature="reading JSON").__name__
    'json'
    >>> try:
    ...     import_optional("no_such_module_xyz", extra="onnx", feature="ONNX export")
    ... except MissingDependencyError as e:
    ...     print(e)
    ONNX export needs no_such_module_xyz, which is not installed: pip install 'nasforge[onnx]'
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from nasforge.errors import MissingDependencyError

__all__ = ["import_optional", "require_optional"]


def import_optional(module: str, *, extra: str, feature: str,
                    package: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``extra``.

    Args:
        module: the import name (``onnxruntime``, ``ray``).
        extra: the nasforge extra that installs it (``onnx``, ``ray``).
        feature: what needs it, for the message (``"ONNX export"``).
        package: the distribution name when it differs from ``module`` (``ai-edge-litert``).
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{feature} needs {package or module}, which is not installed: "
            f"pip install 'nasforge[{extra}]'"
        ) from None


def require_optional(modules: dict[str, str], *, extra: str, feature: str) -> None:
    """Check without importing that every module of ``modules`` (import name -> distribution
    name) is installed; raise one :class:`MissingDependencyError` naming all that are not."""
    missing = [pkg for mod, pkg in modules.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise MissingDependencyError(
            f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
            f"not installed: pip install 'nasforge[{extra}]'"
        )
