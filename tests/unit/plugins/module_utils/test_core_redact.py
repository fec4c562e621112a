# SPDX-License-Identifier: GPL-3.0-or-later
"""The one redactor: URL userinfo masked up to its last '@', control characters dropped; where reports and smoke tests use it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.redact import printable, redact
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.smoke import normalize, run_http
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report import RunRecorder, render_markdown, summary_lines
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report_html import render_html

T0 = datetime(2026, 12, 6, 10, 0, 0, tzinfo=timezone.utc)  # noqa: UP017


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://user:p@ss@db.internal:5432/x", "http://********@db.internal:5432/x"),
        ("GET https://ops:s3cr@t@@host/health?q=a@b failed", "GET https://********@host/health?q=a@b failed"),
        ("mongodb+srv://u:p@c.example/x?tls=true", "mongodb+srv://********@c.example/x?tls=true"),
        ("no url here: a@b", "no url here: a@b"),
    ],
)
def test_userinfo_is_masked_up_to_its_last_at(text: str, shown: str) -> None:
    assert redact(text) == shown


def test_printable_drops_control_characters_but_tab_and_newline() -> None:
    assert printable("\x1b[2J\x1b[Hcleared\r\n# heading\tx\x00\x9b") == "[2J[Hcleared\n# heading\tx"


def test_a_failure_message_reaches_no_report_with_its_password_or_escapes() -> None:
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    message = "GET http://ops:hunter@2@127.0.0.1:1/health got no answer\x1b[2J\r# owned <script>alert(1)</script>"
    recorder.record(host="fleet-1", task="Smoke \x1b[31mtest", role="stellaops.deploy.smoke_test",
                    action="stellaops.deploy.smoke_test", status="failed", start=T0, end=T0, result={"msg": message})  # fmt: skip
    report = recorder.report(T0, {"fleet-1": {"failures": 1}})
    rendered = {"summary": "\n".join(summary_lines(report, {})), "markdown": render_markdown(report), "html": render_html(report)}
    for name, text in rendered.items():
        assert "hunter" not in text and "\x1b" not in text and "\r" not in text, name
    assert "<script>" not in rendered["markdown"] and "&lt;script&gt;" in rendered["markdown"]
    assert "\n# owned" not in rendered["markdown"]


def test_a_smoke_test_never_shows_the_password_of_its_url() -> None:
    test = normalize({"type": "http", "url": "http://ops:p@ss@127.0.0.1:9/health"}, 0)
    assert "p@ss" not in test["name"] and "ss@" not in test["name"]
    healthy, message = run_http({**test, "timeout": 1.0}, sleep=lambda _s: None, clock=lambda: 0.0)
    assert not healthy and "p@ss" not in message and "ss@127" not in message and "********@127.0.0.1:9" in message
