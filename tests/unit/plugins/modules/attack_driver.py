# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs one module of the collection many times in one child process, as Ansible runs it on a host.

``python attack_driver.py MODULE.py CASES.json RESULTS.json SECONDS``: every case of CASES.json (a list
of ``{"id": ..., "args": {...}}``) is given to the module as its arguments; RESULTS.json gets, per
case, what the module printed, or ``traceback`` (an exception left the module) or ``hang`` (it did
not return within SECONDS). One process for all the cases of a module: its imports are paid once.
"""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import signal
import sys
import traceback
from typing import Any

from ansible.module_utils import basic


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so that no module's ``except Exception`` swallows it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang


def run_case(module_path: str, args: dict[str, Any], seconds: float) -> dict[str, Any]:
    basic._ANSIBLE_ARGS = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()  # noqa: SLF001 - how Ansible hands a module its arguments
    basic._ANSIBLE_PROFILE = "legacy"  # noqa: SLF001 - the profile Ansible names beside them
    printed = io.StringIO()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_path(module_path, run_name="__main__")
    except SystemExit:
        pass
    except Hang:
        return {"outcome": "hang", "printed": printed.getvalue()}
    except BaseException:  # noqa: BLE001 - what a traceback would be in a real run
        return {"outcome": "traceback", "printed": printed.getvalue() + traceback.format_exc()}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return {"outcome": "returned", "printed": printed.getvalue()}


def main() -> None:
    module_path, cases_path, results_path, seconds = sys.argv[1:5]
    signal.signal(signal.SIGALRM, _alarm)
    with open(cases_path, encoding="utf-8") as handle:
        cases = json.load(handle)
    results = [{"id": case["id"], **run_case(module_path, case["args"], float(seconds))} for case in cases]
    with open(results_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
