# SPDX-License-Identifier: GPL-3.0-or-later
"""User-facing error type shared by the pure helpers of the collection.

Pure helpers raise ``StellaOpsError`` with one sentence that names the file,
the field and what was expected; modules turn it into ``fail_json(msg=...)``
and the command-line tools print it and exit non-zero. No traceback reaches
an operator for bad input.

Every message passes the one redactor (``_redact.printable``): a value quoted from hostile input
cannot carry a URL's password or a control character (an ANSI escape that clears the operator's
screen) into a result, a log or a report.
"""

from __future__ import annotations

from .redact import printable


class StellaOpsError(Exception):
    """An error caused by input or environment, with an operator-readable message."""

    def __init__(self, message: str, **details: object) -> None:
        message = printable(message)
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message
