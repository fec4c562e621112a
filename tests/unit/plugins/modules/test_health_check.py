# SPDX-License-Identifier: GPL-3.0-or-later
"""health_check run as on a host: no secret in its result or invocation, bad checks are one sentence."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from module_runner import failed_with, run_module

PASSWORD = "Tr0ub4dor-db-password"


@pytest.fixture
def protected(basic_auth_server: Callable[[str, str], int]) -> int:
    return basic_auth_server("monitor", PASSWORD)


def test_no_secret_reaches_the_result_or_the_invocation(tmp_path: Path, protected: int) -> None:
    checks = [
        {"name": "metrics", "type": "http", "url": f"http://monitor:{PASSWORD}@127.0.0.1:{protected}/health"},
        {"type": "http", "url": f"http://monitor:wrong-{PASSWORD}@127.0.0.1:{protected}/health"},
        {"type": "command", "command": [sys.executable, "-c", "import sys; print(sys.argv[1]); sys.exit(1)", PASSWORD], "no_log": True},
        {"type": "command", "command": [sys.executable, "-c", "import os, sys; print(os.environ.get('HOME')); sys.exit(1)"], "show_output": False},
    ]
    result = run_module("health_check", {"checks": checks, "retries": 1, "interval": 0}, tmp_path)
    text = json.dumps(result)
    assert PASSWORD not in text
    assert result["failed"] is True and [r["healthy"] for r in result["results"]] == [True, False, False, False]
    assert result["results"][1]["status_code"] == 401
    shown = result["invocation"]["module_args"]["checks"]
    assert shown[0]["url"] == f"http://********@127.0.0.1:{protected}/health"
    assert shown[2]["command"] == [sys.executable, "********", "********", "********"]


def test_an_empty_list_of_checks_fails(tmp_path: Path) -> None:
    failed_with(run_module("health_check", {"checks": []}, tmp_path), "checks is empty; expected at least one check")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://[::1/health", "field url 'http://[::1/health' is not a valid address (Invalid IPv6 URL)."),
        (f"http://admin:{PASSWORD}@[fe80::1/", "field url 'http://********@[fe80::1/' is not a valid address"),
    ],
)
def test_an_invalid_url_is_one_sentence(tmp_path: Path, url: str, expected: str) -> None:
    result = run_module("health_check", {"checks": [{"type": "http", "url": url}], "retries": 1}, tmp_path)
    failed_with(result, "health check #1: ", expected)
    assert PASSWORD not in json.dumps(result)
