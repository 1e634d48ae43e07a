"""Whole-file writes that leave either the old file or the new one, never a torn one.

A full disk or a file-size limit (``ulimit -f``) stops a write midway; written in place, the
output would be a truncated file that looks like a result. :func:`write_text_atomic` writes a
temporary file beside the target and renames it over the target only once it is complete; the
error it raises names the target, so the CLI's boundary can say which file could not be
written.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_text_atomic"]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and ``os.replace``.

    Raises:
        OSError: the write failed (no space, a file-size limit, permissions); its ``filename``
            is ``path`` and the temporary file is removed.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> write_text_atomic(d / "a.yaml", "x: 1\\n")
        >>> (d / "a.yaml").read_text(), sorted(p.name for p in d.iterdir())
        ('x: 1\\n', ['a.yaml'])
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
