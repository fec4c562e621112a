# SPDX-License-Identifier: GPL-3.0-or-later
"""The one atomic file writer: journals, baselines, reports, locks and manifests are written through it.

A temporary file in the target's directory, written and fsynced, given its mode, then renamed over
the target: a reader sees the old file or the new one, never half of one, and a failure leaves no
temporary file behind. ``sync_directory`` also fsyncs the directory, so that the rename itself
survives a power cut (the deployment journal's job files need that). Every failure is one
sentence: ``Cannot write PATH: reason.``, or ``WHAT: cannot write PATH: reason.`` when ``what`` names
the writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional

from .errors import StellaOpsError


def write_text(path: str, text: str, mode: int = 0o644, *, sync_directory: bool = False, what: Optional[str] = None) -> None:
    """Replace ``path`` with ``text`` (UTF-8), creating its directory when missing."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
        if sync_directory:
            dir_fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as err:
        reason = err.strerror or str(err)
        raise StellaOpsError(f"{what}: cannot write {path}: {reason}." if what else f"Cannot write {path}: {reason}.", kind="unreadable") from None
    finally:
        if tmp is not None and os.path.lexists(tmp):
            os.unlink(tmp)


def write_json(
    path: str, data: Any, mode: int = 0o644, *, indent: Optional[int] = 2, sync_directory: bool = False, what: Optional[str] = None
) -> None:
    """Replace ``path`` with ``data`` as JSON (sorted keys, UTF-8, a final newline)."""
    text = json.dumps(data, indent=indent, sort_keys=True, ensure_ascii=False) + "\n"
    write_text(path, text, mode, sync_directory=sync_directory, what=what)
