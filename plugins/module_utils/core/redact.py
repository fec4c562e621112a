# SPDX-License-Identifier: GPL-3.0-or-later
"""The one redactor for everything a run shows or writes: results, messages, reports.

``redact`` masks the userinfo of every ``scheme://user:password@host``: all of it up to the last
``@`` of the authority, so a password holding an unencoded ``@`` does not leave its tail behind.
``printable`` also drops control characters (an ANSI escape in a message would rewrite the
operator's terminal; a carriage return would start a new line in a report).
"""

from __future__ import annotations

import re

MASK = "********"
# The userinfo of scheme://user:password@host in any text (a URL, or an argument holding one): greedy up
# to the last '@' before the path, query or fragment.
USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#\s]*)@")
# C0 and C1 control characters but tab and newline.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL in it replaced by ``********``."""
    return USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)


def printable(text: str) -> str:
    """``text`` redacted and without control characters (tab and newline stay)."""
    return _CONTROL_RE.sub("", redact(text))


def one_line(text: str) -> str:
    """``text`` printable, its runs of whitespace (newlines included) one space: a name that heads a line."""
    return " ".join(printable(text).split())
