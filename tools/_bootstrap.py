# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared start-up of the command-line tools in ``tools/``.

Puts the repository root (the collection root) on ``sys.path`` so that a tool imports
``plugins.module_utils.release.manifest`` and the rest of the same code the modules use, whether it
runs from a checkout or from an installed collection. ``run`` turns a ``StellaOpsError`` into
one line on stderr and the exit code: 1 for invalid content, 2 for a bad invocation or
unreadable input.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plugins.module_utils.core.errors import StellaOpsError  # noqa: E402

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
USAGE_KINDS = frozenset({"unreadable", "usage"})


def exit_code_for(err: StellaOpsError) -> int:
    """2 when the input could not be read or the invocation is wrong, else 1."""
    return EXIT_USAGE if err.details.get("kind") in USAGE_KINDS else EXIT_INVALID


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")


def run(main: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    """Run ``main``; a ``StellaOpsError`` becomes one line on stderr, never a traceback."""
    try:
        return main(sys.argv[1:] if argv is None else argv)
    except StellaOpsError as err:
        prog = Path(sys.argv[0]).name
        sys.stderr.write(f"{prog}: {err}\n")
        return exit_code_for(err)
    except KeyboardInterrupt:
        return 130
