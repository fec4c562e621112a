# SPDX-License-Identifier: GPL-3.0-or-later
"""Run reports: phases of tasks, the report built from task results and journal jobs, its renderings."""

from __future__ import annotations

import colorsys
import json
from datetime import datetime, timedelta, timezone

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report import (
    RunRecorder,
    claim_report_stem,
    phase_of,
    render_markdown,
    rollback_seconds,
    summary_lines,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report_html import PHASE_COLOURS, render_html

T0 = datetime(2026, 12, 2, 1, 0, 0, tzinfo=timezone.utc)  # noqa: UP017


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def stamp(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("role", "action", "phase"),
    [
        ("stellaops.deploy.preflight", "stellaops.deploy.health_check", "pre-flight"),
        ("stellaops.deploy.backup", "stellaops.deploy.backup", "backup"),
        ("stellaops.deploy.evidence_gate", "stellaops.deploy.evidence_baseline", "backup"),
        ("stellaops.deploy.compose_upgrade", "stellaops.deploy.compose_deploy", "deploy"),
        ("stellaops.deploy.compose_upgrade", "ansible.builtin.set_fact", "deploy"),
        ("stellaops.deploy.evidence_gate", "stellaops.deploy.evidence_verify", "verification"),
        ("stellaops.deploy.compose_upgrade", "stellaops.deploy.smoke_test", "smoke"),
        ("stellaops.deploy.compose_rollback", "stellaops.deploy.deploy_lock", "rollback"),
        ("", "ansible.builtin.assert", None),
    ],
)
def test_phase_of_each_kind_of_task(role: str, action: str, phase: str | None) -> None:
    assert phase_of(role, action) == phase


def test_a_transaction_that_returns_a_host_to_its_bookmark_is_a_rollback_on_the_timeline() -> None:
    """A fleet rollback is a compose_deploy transaction of the upgrade role: its result, not its task file, says rollback."""
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    phases = [{"phase": "rollback", "start": stamp(1), "end": stamp(4), "status": "ok"}]
    recorder.record(host="fleet-1", task="Return each completed host to its bookmark", role="stellaops.deploy.compose_upgrade",
                    action="stellaops.deploy.compose_deploy", status="changed", start=at(1), end=at(4), result={"phases": phases})  # fmt: skip
    assert [(event["phase"], event["status"]) for event in recorder.events] == [("rollback", "ok")]


def job(host: str, status_times: list[tuple[str, float]], release_id: str = "2025.11.1-edge", previous: str = "2025.11.0-edge", **extra: object) -> dict:
    history = [{"status": status, "at": stamp(seconds)} for status, seconds in status_times]
    return {
        "id": f"20261202T010000.000000Z-{abs(hash(host)) % 16**8:08x}",
        "host": host,
        "release_id": release_id,
        "previous_release_id": previous,
        "status": status_times[-1][0],
        "started_at": history[0]["at"],
        "ended_at": history[-1]["at"],
        "history": history,
        **extra,
    }


def role_of(path: str) -> str:
    """The role of a task file under roles/ (as Ansible names it), or none."""
    parts = path.split("/")
    return "stellaops.deploy." + parts[parts.index("roles") + 1] if "roles" in parts else ""


def upgrade_that_rolled_back(kind: str = "drill", failures: int = 0) -> dict:
    """Both hosts fail the upgrade and their automatic rollback brings the earlier release back; the drill rescues
    the failure (``failures`` 0), upgrade.yml fails the hosts after their rollback (``failures`` 1)."""
    recorder = RunRecorder(kind, f"/c/playbooks/{kind}.yml", T0)
    steps = [
        ("fleet-1", "Take a verified backup set", "stellaops.deploy.backup", "/c/roles/backup/tasks/main.yml:4", 0, 3, "changed",
         {"set_id": "20261202T010000Z", "set_path": "/b/20261202T010000Z", "status": "complete", "changed": True}),
        ("fleet-1", "Capture the evidence baseline", "stellaops.deploy.evidence_baseline", "/c/roles/evidence_gate/tasks/baseline.yml:2", 3, 4, "ok",
         {"path": "/e/baseline.json", "checksum": "sha256:aa", "total": {"root": "ab" * 32, "count": 60}, "partitions": {"acme/sbom": {"root": "cd" * 32}}}),
        ("fleet-2", "Skipped one", "stellaops.deploy.compose_deploy", "/c/roles/compose_upgrade/tasks/main.yml:170", 4, 4, "skipped", {"skipped": True}),
    ]  # fmt: skip
    # compose_deploy's transaction: the deploy fails, the module restores the bookmark, the result carries both phases
    for host, failed_at, end in (("fleet-1", 10, 16), ("fleet-2", 9, 15)):
        steps.append((host, "Deploy the release and prove it", "stellaops.deploy.compose_deploy", "/c/roles/compose_upgrade/tasks/main.yml:100", 4, end,
                      "failed", {"msg": "health check authority answered 404 Rolled back: ...",
                                 "job": job(host, [("pending", 4), ("rolling_back", failed_at), ("rolled_back", end)]),
                                 "phases": [{"phase": "deploy", "start": stamp(4), "end": stamp(failed_at), "status": "failed"},
                                            {"phase": "rollback", "start": stamp(failed_at), "end": stamp(end), "status": "ok"}]}))  # fmt: skip
    for host, task, action, path, start, end, status, result in steps:
        recorder.record(host=host, task=task, role=role_of(path), action=action, status=status, start=at(start), end=at(end), result=result)
    stats = {host: {"ok": 5, "changed": 2, "failures": failures, "unreachable": 0, "rescued": 1} for host in ("fleet-1", "fleet-2")}
    return recorder.report(at(20), stats)


def test_a_rolled_back_upgrade_reports_releases_protection_and_rollback_from_the_journal() -> None:
    report = upgrade_that_rolled_back()
    assert report["outcome"] == "rolled back" and report["failed_hosts"] == []
    assert [host["outcome"] for host in report["hosts"]] == ["rolled back", "rolled back"]
    assert report["release_before"] == ["2025.11.0-edge"] and report["release_after"] == ["2025.11.0-edge"]
    # First rolling_back (fleet-2 at 9 s) to last rolled_back (fleet-1 at 16 s).
    assert report["rollback_seconds"] == 7.0
    assert [host["rollback_seconds"] for host in report["hosts"]] == [6.0, 6.0]
    assert report["backups"][0]["set_id"] == "20261202T010000Z"
    assert report["evidence"]["baseline"]["root"] == "ab" * 32
    fleet1 = report["hosts"][0]["timeline"]
    assert [span["phase"] for span in fleet1] == ["backup", "deploy", "rollback"]
    assert fleet1[0]["seconds"] == 4.0 and fleet1[1]["status"] == "failed" and fleet1[2]["tasks"] == 1
    assert (fleet1[1]["seconds"], fleet1[2]["seconds"], fleet1[2]["status"]) == (6.0, 6.0, "ok")
    assert {f["host"] for f in report["failures"]} == {"fleet-1", "fleet-2"}
    json.dumps(report)


def test_renderings_carry_the_same_facts() -> None:
    report = upgrade_that_rolled_back()
    markdown = render_markdown(report)
    assert "| fleet-1 | rolled back | 2025.11.0-edge | 2025.11.0-edge | 6.0 |" in markdown
    assert "Rollback duration: 7.0 s" in markdown
    page = render_html(report)
    assert page.count('class="bar rollback"') == 2 and page.count('class="bar backup"') == 1
    assert PHASE_COLOURS["rollback"] in page
    lines = summary_lines(report, {"html": "/r/x.html", "md": "/r/x.md", "json": "/r/x.json"})
    assert lines[0].startswith("DRILL ROLLED BACK: 2 host(s), 2025.11.0-edge -> 2025.11.0-edge") and "rollback 7.0 s" in lines[0]
    assert "background:#9a6700" in page and "Failed on" not in page and "Failed on" not in markdown
    assert "backup set 20261202T010000Z" in lines[1]
    assert len(lines) <= 6


def test_html_escapes_what_tasks_returned() -> None:
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    recorder.record(host="<b>h</b>", task="t", role="", action="stellaops.deploy.compose_deploy",
                    status="failed", start=at(0), end=at(1), result={"msg": "<script>alert(1)</script>"})  # fmt: skip
    page = render_html(recorder.report(at(2), {"<b>h</b>": {"failures": 1}}))
    assert "<script>" not in page and "&lt;script&gt;" in page and "&lt;b&gt;h&lt;/b&gt;" in page


def test_no_log_results_give_only_their_status() -> None:
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    recorder.record(host="h", task="t", role="", action="stellaops.deploy.backup", status="failed", start=at(0), end=at(1),
                    result={"_ansible_no_log": True, "msg": "password=hunter2", "set_id": "s"})  # fmt: skip
    report = recorder.report(at(2), {"h": {"failures": 1}})
    assert "hunter2" not in json.dumps(report) and report["backups"] == [] and report["outcome"] == "failed"


def test_a_rollback_job_counts_from_its_start_to_its_completion() -> None:
    rollback = job("h", [("pending", 0), ("completed", 12.5)], rollback_of="20261202T000000.000000Z-00000000")
    plain = job("h", [("pending", 0), ("completed", 30)])
    assert rollback_seconds([rollback, plain]) == 12.5
    assert rollback_seconds([plain]) is None


def test_a_promotion_reports_its_commit_and_files() -> None:
    recorder = RunRecorder("promotion", "/c/playbooks/promote.yml", T0)
    recorder.record(host="localhost", task="Mirror the digests, check alignment, commit and tag", role="",
                    action="stellaops.deploy.channel_promote", status="changed", start=at(0), end=at(2),
                    result={"changed": True, "release_id": "2025.10.0-stable", "files": ["deploy/compose/docker-compose.prod.yaml"],
                            "commit": "0123456789abcdef", "tag": "2025.10.0-stable"})  # fmt: skip
    report = recorder.report(at(3), {"localhost": {"ok": 1, "changed": 1, "failures": 0}})
    assert report["outcome"] == "succeeded" and report["hosts"] == []
    lines = summary_lines(report, {"json": "/r/p.json"})
    assert lines[0] == "PROMOTION SUCCEEDED: 3.0 s"
    assert lines[1] == "  promotion 2025.10.0-stable: 1 file(s), commit 0123456789ab, tag 2025.10.0-stable"
    assert "deploy/compose/docker-compose.prod.yaml" in render_markdown(report) and "0123456789abcdef" in render_html(report)


@pytest.mark.parametrize("check_mode", [False, True])
def test_a_promotion_of_a_release_that_does_not_exist_failed(check_mode: bool) -> None:
    recorder = RunRecorder("promotion", "/c/playbooks/promote.yml", T0, check_mode=check_mode)
    recorder.record(host="localhost", task="Validate the release manifest", role="",
                    action="stellaops.deploy.release_manifest", status="failed", start=at(0), end=at(1),
                    result={"msg": "no release 2099.1.0 in channel stable"})  # fmt: skip
    report = recorder.report(at(1.5), {"localhost": {"ok": 1, "failures": 1}})
    assert report["outcome"] == "failed" and report["failed_hosts"] == ["localhost"]
    lines = summary_lines(report, {"json": "/r/p.json"})
    assert lines[0] == "PROMOTION FAILED on 1 of 1 target: 1.5 s"
    assert lines[1] == "  failed on localhost at Validate the release manifest: no release 2099.1.0 in channel stable"
    assert render_markdown(report).startswith("# Promotion report: failed\n")


def test_a_setting_refused_while_ansible_templates_the_task_is_reported_by_its_sentence() -> None:
    sentence = "stellaops_compose has no setting 'projectdir'; it takes project_name, project_dir, docker_host, environment."
    wrapped = (
        "Task failed: Finalization of task args for 'stellaops.deploy.compose_info' failed: Error while resolving value for"
        f" 'docker_host': The filter plugin 'stellaops.deploy.compose_target' failed: {sentence}"
    )
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    recorder.record(host="fleet-1", task="Read what the host runs", role="stellaops.deploy.preflight",
                    action="stellaops.deploy.compose_info", status="failed", start=at(0), end=at(1), result={"msg": wrapped})  # fmt: skip
    report = recorder.report(at(1.5), {"fleet-1": {"ok": 1, "failures": 1}})
    assert report["outcome"] == "failed"
    assert summary_lines(report, {})[1] == f"  failed on fleet-1 at Read what the host runs: {sentence}"


def test_a_check_run_without_failure_is_checked() -> None:
    recorder = RunRecorder("promotion", "/c/playbooks/promote.yml", T0, check_mode=True)
    recorder.record(host="localhost", task="Mirror the digests, check alignment, commit and tag", role="",
                    action="stellaops.deploy.channel_promote", status="changed", start=at(0), end=at(2),
                    result={"changed": True, "release_id": "2025.10.0-stable", "files": ["deploy/compose/docker-compose.prod.yaml"]})  # fmt: skip
    report = recorder.report(at(3), {"localhost": {"ok": 1, "changed": 1, "failures": 0}})
    assert report["outcome"] == "checked"
    assert summary_lines(report, {})[0] == "PROMOTION CHECKED: 3.0 s"


TARGETS = [f"target-{index}" for index in range(1, 7)]
LOCK = ("Take the environment lock", "stellaops.deploy.deploy_lock", "/c/roles/compose_rollback/tasks/main.yml:2")


def rollback_of_six(failing: str = "", nothing_on: tuple[str, ...] = ()) -> dict:
    """rollback.yml on six targets: each returns from 2025.11.0-stable to 2025.10.0-stable (a rollback job that completes),
    except the last, which fails (``failing``: failed or unreachable), and ``nothing_on``, which have nothing to roll back."""
    recorder = RunRecorder("rollback", "/c/playbooks/rollback.yml", T0)
    stats = {}
    for index, host in enumerate(TARGETS):
        task, action, path = LOCK
        if failing and host == TARGETS[-1]:
            result = (
                {"msg": "Failed to connect to the host via ssh", "unreachable": True} if failing == "unreachable" else {"msg": "The lock is held by rollback-1"}
            )
            recorder.record(host=host, task=task, role="stellaops.deploy.compose_rollback", action=action, status=failing,
                            start=at(0), end=at(1), result=result)  # fmt: skip
            stats[host] = {"ok": 0, "failures": int(failing == "failed"), "unreachable": int(failing == "unreachable")}
            continue
        recorder.record(host=host, task=task, role="stellaops.deploy.compose_rollback", action=action, status="ok",
                        start=at(0), end=at(1), result={})  # fmt: skip
        stats[host] = {"ok": 4, "changed": 0 if host in nothing_on else 2, "failures": 0, "unreachable": 0}
        if host in nothing_on:
            continue
        rollback = job(host, [("pending", 1), ("deploying", 1.5), ("completed", 4 + index / 10)], release_id="2025.10.0-stable",
                       previous="2025.11.0-stable", rollback_of="20261201T000000.000000Z-00000000")  # fmt: skip
        rollback["id"] = f"job-{host}"
        recorder.record(host=host, task="Mark the rollback completed", role="stellaops.deploy.compose_rollback",
                        action="stellaops.deploy.deployment_journal", status="changed",
                        start=at(4), end=at(4 + index / 10), result={"job": rollback})  # fmt: skip
    return recorder.report(at(5), stats)


@pytest.mark.parametrize("failing", ["failed", "unreachable"])
def test_a_rollback_that_failed_on_one_of_six_targets_failed(failing: str) -> None:
    report = rollback_of_six(failing)
    assert report["outcome"] == "failed" and report["failed_hosts"] == ["target-6"]
    assert [host["outcome"] for host in report["hosts"]] == ["succeeded"] * 5 + ["failed"]
    lines = summary_lines(report, {"md": "/r/x.md"})
    assert lines[0] == "ROLLBACK FAILED on 1 of 6 targets: 2025.11.0-stable -> 2025.10.0-stable, 5.0 s, rollback 3.4 s"
    assert lines[1] == "  running now: 2025.10.0-stable on target-1, target-2, target-3, target-4, target-5; unknown on target-6"
    assert lines[2].startswith("  failed on target-6 at Take the environment lock: ")
    markdown = render_markdown(report)
    assert markdown.startswith("# Rollback report: failed\n") and "- Failed on 1 of 6 targets: target-6\n" in markdown
    assert "| target-6 | failed | — | — |" in markdown and "| target-1 | succeeded | 2025.11.0-stable | 2025.10.0-stable |" in markdown
    page = render_html(report)
    assert '<span id="outcome" class="outcome" style="background:#cf222e">FAILED</span>' in page
    assert '<td id="failed-on">1 of 6 targets: target-6</td>' in page


def test_an_upgrade_whose_hosts_rolled_back_failed() -> None:
    report = upgrade_that_rolled_back("upgrade", failures=1)
    # Each host is back on the earlier release (rolled back); the upgrade did not happen, so the run failed.
    assert [host["outcome"] for host in report["hosts"]] == ["rolled back", "rolled back"]
    assert report["outcome"] == "failed" and report["failed_hosts"] == ["fleet-1", "fleet-2"]
    lines = summary_lines(report, {})
    assert lines[0] == "UPGRADE FAILED on 2 of 2 targets: 2025.11.0-edge -> 2025.11.0-edge, 20.0 s, rollback 7.0 s"
    assert lines[1] == "  running now: 2025.11.0-edge on fleet-1, fleet-2"


def test_a_failed_job_that_the_playbook_rescued_is_a_failed_host() -> None:
    recorder = RunRecorder("drill", "/c/playbooks/drill.yml", T0)
    recorder.record(host="fleet-1", task="Journal the job as failed", role="",
                    action="stellaops.deploy.deployment_journal", status="changed",
                    start=at(0), end=at(1), result={"job": job("fleet-1", [("pending", 0), ("failed", 1)])})  # fmt: skip
    report = recorder.report(at(2), {"fleet-1": {"ok": 3, "failures": 0, "rescued": 1}})
    assert report["outcome"] == "failed" and report["hosts"][0]["outcome"] == "failed" and report["failed_hosts"] == ["fleet-1"]


def test_a_rollback_on_every_target_succeeded_and_a_target_with_nothing_to_roll_back_has_no_change() -> None:
    report = rollback_of_six(nothing_on=("target-3",))
    assert report["outcome"] == "succeeded" and report["failed_hosts"] == []
    assert [host["outcome"] for host in report["hosts"]] == ["succeeded", "succeeded", "no change", "succeeded", "succeeded", "succeeded"]
    assert summary_lines(report, {})[0].startswith("ROLLBACK SUCCEEDED: 6 host(s), 2025.11.0-stable -> 2025.10.0-stable")
    assert 'style="background:#1a7f37">SUCCEEDED<' in render_html(report)
    nothing = rollback_of_six(nothing_on=tuple(TARGETS))
    assert nothing["outcome"] == "no change" and {host["outcome"] for host in nothing["hosts"]} == {"no change"}


@pytest.mark.parametrize(
    "report",
    [rollback_of_six("failed"), rollback_of_six("unreachable"), upgrade_that_rolled_back("upgrade", failures=1)],
    ids=["failed", "unreachable", "rolled back"],
)
def test_a_partial_result_is_never_green(report: dict) -> None:
    page = render_html(report)
    assert report["outcome"] == "failed" and "#1a7f37" not in page

    def green(colour: str) -> bool:
        hue, _lightness, saturation = colorsys.rgb_to_hls(*(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)))
        return 80 / 360 <= hue <= 160 / 360 and saturation > 0.25

    # The timeline's bars (a failed deploy among them) are drawn in no green either.
    assert not [phase for phase, colour in PHASE_COLOURS.items() if green(colour)]


def test_protection_that_the_operator_turned_off_is_repeated_in_every_rendering() -> None:
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    off = ["no backup before the upgrade (compose_upgrade_backup: false)"]
    recorder.record(
        host="fleet-1", task="Decide the pre-flight and stop before any change when a check failed", role="stellaops.deploy.preflight",
        action="stellaops.deploy.preflight_verdict", status="ok", start=at(0), end=at(1),
        result={"protection_off": off, "record": {"release_id": "2025.10.0-stable", "protection_off": off}},
    )  # fmt: skip
    report = recorder.report(at(2), {"fleet-1": {"ok": 1, "changed": 0, "failures": 0, "unreachable": 0}})
    assert report["protection_off"] == off
    assert "  turned off: no backup before the upgrade (compose_upgrade_backup: false)" in summary_lines(report, {})
    assert "- Turned off: no backup before the upgrade (compose_upgrade_backup: false)" in render_markdown(report)
    assert '<td id="turned-off">no backup before the upgrade (compose_upgrade_backup: false)</td>' in render_html(report)

    # Nothing turned off: no such line.
    plain = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0).report(at(1), {})
    assert plain["protection_off"] == [] and not any("turned off" in line for line in summary_lines(plain, {}))


def test_a_failed_run_once_check_fails_every_host_of_the_run() -> None:
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    for host in ("fleet-1", "fleet-2", "helm-prod"):
        recorder.record(host=host, task="Note what this host's checks found", role="stellaops.deploy.preflight",
                        action="ansible.builtin.set_fact", status="ok", start=at(0), end=at(1), result={})  # fmt: skip
    # Ansible counts a failed run_once task on the first host only; any_errors_fatal stops the others.
    recorder.record(host="fleet-1", task="Decide the pre-flight and stop before any change when a check failed", role="stellaops.deploy.preflight",
                    action="stellaops.deploy.preflight_verdict", status="failed", start=at(1), end=at(2),
                    result={"msg": "Pre-flight for 2025.10.0-stable failed 1 check(s); nothing was changed: approval: ..."}, run_once=True)  # fmt: skip
    stats = {"fleet-1": {"ok": 1, "failures": 1}, "fleet-2": {"ok": 1, "failures": 0}, "helm-prod": {"ok": 1, "failures": 0}}
    report = recorder.report(at(3), stats)
    assert report["failed_hosts"] == ["fleet-1", "fleet-2", "helm-prod"]
    assert summary_lines(report, {})[0] == "UPGRADE FAILED on 3 of 3 targets: 3.0 s"


def test_hosts_that_a_fleet_rollback_returned_rolled_back() -> None:
    """A failed second batch: fleet-2 rolled back by itself; fleet-1, upgraded in the first batch, was returned by the fleet rollback
    (a completed job that undoes the upgrade's job)."""
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    jobs = {
        "fleet-1": job("fleet-1", [("pending", 1), ("completed", 3), ], release_id="2025.11.0-edge", previous="2025.11.1-edge",
                       rollback_of="20261202T010000.000000Z-11111111"),
        "fleet-2": job("fleet-2", [("pending", 4), ("rolling_back", 6), ("rolled_back", 8)]),
    }  # fmt: skip
    for host, entry in jobs.items():
        recorder.record(host=host, task="Mark the job", role="stellaops.deploy.compose_upgrade",
                        action="stellaops.deploy.deployment_journal", status="changed", start=at(8), end=at(8), result={"job": entry})  # fmt: skip
    report = recorder.report(at(9), {"fleet-1": {"ok": 9, "failures": 0}, "fleet-2": {"ok": 9, "failures": 1}})
    assert [host["outcome"] for host in report["hosts"]] == ["rolled back", "rolled back"]
    assert report["outcome"] == "failed" and report["failed_hosts"] == ["fleet-2"]


def test_two_runs_that_start_in_the_same_second_keep_both_reports(tmp_path) -> None:
    first = claim_report_stem(str(tmp_path / "reports"), "20261206T100000Z-drill")
    second = claim_report_stem(str(tmp_path / "reports"), "20261206T100000Z-drill")
    assert (first, second) == (str(tmp_path / "reports" / "20261206T100000Z-drill"), str(tmp_path / "reports" / "20261206T100000Z-drill-2"))
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["20261206T100000Z-drill-2.json", "20261206T100000Z-drill.json"]


def test_migrations_applied_on_a_fleet_that_runs_the_release_already_are_a_change() -> None:
    """A rerun with a newly approved category B migration deploys nothing but changes the database: succeeded, not no change."""
    recorder = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0)
    recorder.record(host="fleet-1", task="Apply the approved category B migrations with the platform's migration command",
                    role="stellaops.deploy.compose_upgrade", action="stellaops.deploy.compose_migrations", status="changed",
                    start=at(0), end=at(2), result={"changed": True, "pending": ["20251101000000"], "deployment_id": "2025.11.0-stable+1"})  # fmt: skip
    report = recorder.report(at(3), {"fleet-1": {"ok": 1, "changed": 1, "failures": 0}})
    assert report["outcome"] == "succeeded"
    assert report["migrations"] == [{"host": "fleet-1", "ids": ["20251101000000"], "deployment_id": "2025.11.0-stable+1"}]
    assert summary_lines(report, {})[1] == "  migrations applied 20251101000000"

    checked = RunRecorder("upgrade", "/c/playbooks/upgrade.yml", T0, check_mode=True)
    checked.record(host="fleet-1", task="Apply the approved category B migrations with the platform's migration command",
                   role="stellaops.deploy.compose_upgrade", action="stellaops.deploy.compose_migrations", status="changed",
                   start=at(0), end=at(2), result={"changed": True, "pending": ["20251101000000"]})  # fmt: skip
    assert checked.report(at(3), {"fleet-1": {"ok": 1, "changed": 1}})["migrations"] == []
