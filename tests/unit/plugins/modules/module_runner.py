# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module of the collection as Ansible runs it on a host: a child Python with its arguments in a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
MODULES = ROOT / "plugins" / "modules"


def run_module(name: str, args: dict[str, Any], tmp_path: Path, *, check_mode: bool = False, seconds: float = 60.0) -> dict[str, Any]:
    """The module's JSON result; fails the test on a traceback, on output that is not JSON, or on a hang."""
    args_file = tmp_path / f"{name}-args.json"
    # the invocation is injected, as INJECT_INVOCATION makes Ansible do: it must hold no secret either
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {**args, "_ansible_check_mode": check_mode, "_ansible_inject_invocation": True}}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / ".build")}
    try:
        proc = subprocess.run(
            [sys.executable, str(MODULES / f"{name}.py"), str(args_file)], capture_output=True, text=True, env=env, timeout=seconds, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"module {name} did not finish within {seconds:g} s (it hangs)")
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    try:
        result: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"module {name} printed no JSON result (rc {proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    return result


def failed_with(result: dict[str, Any], *parts: str) -> str:
    """The message of a failed module result: one sentence holding every part."""
    assert result.get("failed") is True, result
    message = str(result["msg"])
    assert "\n" not in message and message.endswith("."), message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message
