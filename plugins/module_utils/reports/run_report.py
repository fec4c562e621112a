# SPDX-License-Identifier: GPL-3.0-or-later
"""Run reports: what an upgrade, rollback, promotion or drill did, host by host.

Pure: the callback plugin ``stellaops.deploy.run_report`` feeds ``RunRecorder`` the task
results of a run as they arrive (start and end time, host, role, task file, module and its
result), and ``RunRecorder.report()`` builds one JSON-ready document from them:

- the timeline: each host's tasks grouped into phases (pre-flight, backup, deploy,
  verification, smoke, rollback), merged into one segment per stretch of the same phase;
- the journal jobs as the ``deployment_journal`` module last returned them (their status
  history gives the release before and after and the rollback duration);
- the backup sets (``backup``), the evidence roots (``evidence_baseline``,
  ``evidence_verify``), the release resolved (``release_manifest``) and what failed;
- the outcome of the run and of each host: ``succeeded``, ``failed``, ``rolled back``,
  ``no change``, or ``checked`` in check mode; a run in which any host failed is ``failed``,
  whatever the others did.

Nothing is guessed: a value that no task result carried is left out (or null).
``render_markdown`` and ``render_html`` (in ``_run_report_html``) present the document.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.redact import printable

REPORT_FORMAT = "stellaops-run-report/1"
PHASES: tuple[str, ...] = ("pre-flight", "backup", "deploy", "verification", "smoke", "rollback")
# Roles (last part of their name) whose every task belongs to one phase.
_ROLE_PHASES = {
    "preflight": "pre-flight",
    "profile_validation": "pre-flight",
    "backup": "backup",
    "smoke_test": "smoke",
    "compose_rollback": "rollback",
    "helm_rollback": "rollback",
    "database_restore": "rollback",
}
_UPGRADE_ROLES = frozenset({"compose_upgrade", "helm_upgrade"})
# Modules that name their phase wherever they run (last part of the module name).
_ACTION_PHASES = {
    "channel_alignment": "pre-flight",
    "preflight_verdict": "pre-flight",
    "backup": "backup",
    "backup_verify": "backup",
    "evidence_baseline": "backup",
    "evidence_verify": "verification",
    "smoke_test": "smoke",
    "backup_restore": "rollback",
    "helm_rollback": "rollback",
    "compose_deploy": "deploy",
    "helm_release": "deploy",
    "deployment_journal": "deploy",
    "deploy_lock": "deploy",
}
_MESSAGE_LIMIT = 600
# How ansible-core wraps an error raised while it templates a task's arguments (a filter's sentence, for one):
# the report says the cause, which the wrapper would push past the message limit.
_TEMPLATING_WRAPPER = re.compile(
    r"^Task failed: (?:Finalization of task args for '[^']*' failed: )?(?:Error while resolving value for '[^']*': )?"
    r"(?:The filter plugin '[^']*' failed: )?"
)
# Host names shown per release on the console (the reports list every host).
_NAMES_SHOWN = 5
_UTC = timezone.utc  # noqa: UP017 - same spelling as the other helpers


def short_name(name: str) -> str:
    """``stellaops.deploy.backup`` -> ``backup``."""
    return (name or "").rsplit(".", 1)[-1]


def phase_of(role: str, action: str) -> Optional[str]:
    """The timeline phase of a task without ``phases`` in its result, or None when it is not part of the timeline.

    A role that is one phase (pre-flight, backup, smoke, rollback) decides; then the module (smoke tests
    and evidence verification inside an upgrade are their own phases); any other task of an upgrade role
    is the deploy. A compose_deploy transaction says its phases itself (a return to a kept deployment,
    a fleet rollback among them, is a rollback).
    """
    role_name = short_name(role)
    if role_name in _ROLE_PHASES:
        return _ROLE_PHASES[role_name]
    phase = _ACTION_PHASES.get(short_name(action))
    if phase is None and role_name in _UPGRADE_ROLES:
        return "deploy"
    return phase


def format_time(moment: datetime) -> str:
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def result_phases(result: Mapping[str, Any]) -> list[tuple[str, datetime, datetime, str]]:
    """The ``phases`` a result reports (phase, start, end in the host's clock, ok or failed); empty when it reports
    none or any entry is not one of PHASES with two times."""
    found = []
    for entry in result.get("phases") or []:
        if not isinstance(entry, Mapping) or entry.get("phase") not in PHASES:
            return []
        start, end = parse_time(entry.get("start")), parse_time(entry.get("end"))
        if start is None or end is None:
            return []
        found.append((str(entry["phase"]), start, end, "failed" if entry.get("status") == "failed" else "ok"))
    return found


def parse_time(text: Optional[str]) -> Optional[datetime]:
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=_UTC)
    except ValueError:
        return None


def _history_time(job: Mapping[str, Any], status: str, last: bool = False) -> Optional[datetime]:
    times = [parse_time(entry.get("at")) for entry in job.get("history") or [] if entry.get("status") == status]
    found = [moment for moment in times if moment is not None]
    if not found:
        return None
    return found[-1] if last else found[0]


def rollback_window(job: Mapping[str, Any]) -> Optional[tuple[datetime, datetime]]:
    """When a journal job's rollback ran: from ``rolling_back`` to ``rolled_back``, or, for a job that
    is itself a rollback (``rollback_of``), from its start to its completion; None when it had none."""
    if job.get("rollback_of") and job.get("status") == "completed":
        start, end = parse_time(job.get("started_at")), parse_time(job.get("ended_at"))
    else:
        start, end = _history_time(job, "rolling_back"), _history_time(job, "rolled_back", last=True)
    if start is None or end is None:
        return None
    return start, end


def rollback_seconds(jobs: Sequence[Mapping[str, Any]]) -> Optional[float]:
    """Wall-clock time of the rollbacks among ``jobs``: first rollback start to last rollback end."""
    windows = [window for window in (rollback_window(job) for job in jobs) if window is not None]
    if not windows:
        return None
    return round((max(end for _start, end in windows) - min(start for start, _end in windows)).total_seconds(), 3)


def running_after(jobs: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """The release a host runs after its jobs (oldest first), from the last job that ended cleanly."""
    for job in reversed(jobs):
        if job.get("status") == "completed":
            return job.get("release_id")
        if job.get("status") == "rolled_back":
            return job.get("previous_release_id")
    return None


def _host_outcome(last_job: Optional[str], failed: bool, check_mode: bool) -> str:
    """The outcome of a host, from the status of its last journal job and whether it failed."""
    if last_job == "rolled_back":
        # The automatic rollback of a failed change brought the earlier release back.
        return "rolled back"
    if failed:
        return "failed"
    if check_mode:
        return "checked"
    return "no change" if last_job is None else "succeeded"


def _run_outcome(host_outcomes: Sequence[str], failed: bool, check_mode: bool, wrote: bool) -> str:
    """The outcome of the run: any failed host fails it, then check mode, an automatic rollback, a change."""
    if failed:
        return "failed"
    if check_mode:
        return "checked"
    if "rolled back" in host_outcomes:
        return "rolled back"
    if "succeeded" in host_outcomes or wrote:
        return "succeeded"
    return "no change"


def _message(result: Mapping[str, Any]) -> str:
    if result.get("_ansible_no_log"):
        return "(output hidden: no_log)"
    text = printable(str(result.get("msg") or result.get("reason") or result.get("stderr") or "failed")).strip()
    text = _TEMPLATING_WRAPPER.sub("", text) or text
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


class RunRecorder:
    """Collects a run's task results and turns them into a report."""

    def __init__(self, kind: str, playbook: str, started: datetime, check_mode: bool = False) -> None:
        self.kind = kind
        self.playbook = playbook
        self.started = started
        self.check_mode = check_mode
        self.events: list[dict[str, Any]] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.backups: dict[str, dict[str, Any]] = {}
        # Migrations applied by the platform's migration command (compose_migrations), in order.
        self.migrations: list[dict[str, Any]] = []
        self.evidence: dict[str, Any] = {}
        self.releases: list[dict[str, Any]] = []
        self.planned: dict[str, dict[str, Any]] = {}
        self.failures: list[dict[str, Any]] = []
        self.hosts: list[str] = []
        self.promotion: dict[str, Any] = {}
        self.protection_off: list[str] = []
        self.stopped_every_host = False

    def record(
        self,
        *,
        host: str,
        task: str,
        role: str,
        action: str,
        status: str,
        start: datetime,
        end: datetime,
        result: Mapping[str, Any],
        ignored: bool = False,
        run_once: bool = False,
    ) -> None:
        """One task result of one host (``status``: ok, changed, failed, skipped or unreachable).

        A ``run_once`` task that fails (pre-flight's verdict, the choice of targets) fails every host of the
        run, though Ansible counts the failure on the first host only.
        """
        if host not in self.hosts:
            self.hosts.append(host)
        task = printable(task)
        phase = phase_of(role, action)
        steps = result_phases(result)
        if status != "skipped" and steps:
            # A module that ran several phases in one process (compose_deploy's transaction) says which, and when.
            for step, step_start, step_end, step_status in steps:
                self.events.append({"host": host, "task": task, "phase": step, "status": step_status, "start": step_start, "end": step_end, "ignored": ignored})
        elif status != "skipped" and phase is not None:
            self.events.append({"host": host, "task": task, "phase": phase, "status": status, "start": start, "end": end, "ignored": ignored})
        if status in {"failed", "unreachable"} and not ignored:
            self.failures.append({"host": host, "task": task, "phase": phase, "message": _message(result)})
            self.stopped_every_host = self.stopped_every_host or (run_once and status == "failed")
        if not result.get("_ansible_no_log"):
            for item in result.get("results") or [result]:
                if isinstance(item, Mapping) and not item.get("skipped"):
                    self._collect(host, short_name(action), item)

    def _collect(self, host: str, action: str, result: Mapping[str, Any]) -> None:
        if action in ("deployment_journal", "compose_deploy", "helm_release") and isinstance(result.get("job"), Mapping) and result["job"].get("id"):
            if not result.get("_ansible_check_mode") and not self.check_mode:
                self.jobs[str(result["job"]["id"])] = dict(result["job"])
        elif action == "backup" and result.get("set_id"):
            self.backups[str(result["set_id"])] = {
                "set_id": result["set_id"],
                "set_path": result.get("set_path"),
                "status": result.get("status"),
                "reused": bool(result.get("reused")),
                "taken_for": host,
            }
        elif action == "evidence_baseline" and isinstance(result.get("total"), Mapping):
            self.evidence["baseline"] = {
                "path": result.get("path"),
                "checksum": result.get("checksum"),
                "root": result["total"].get("root"),
                "count": result["total"].get("count"),
                "partitions": {name: part.get("root") for name, part in (result.get("partitions") or {}).items() if isinstance(part, Mapping)},
            }
        elif action == "evidence_verify" and result.get("status"):
            roots = result.get("roots") or {}
            self.evidence["continuity"] = {
                "status": result.get("status"),
                "roots_match": result.get("roots_match"),
                "root": (roots.get("total") or {}).get("recomputed_root"),
                "report_html": result.get("report_html"),
            }
        elif action == "release_manifest" and isinstance(result.get("release"), Mapping):
            release = result["release"]
            entry = {"release_id": release.get("release_id"), "version": release.get("version"), "channel": release.get("channel")}
            if entry not in self.releases:
                self.releases.append(entry)
        elif action == "channel_promote" and result.get("release_id"):
            self.promotion = {
                "release_id": result.get("release_id"),
                "files": list(result.get("files") or []),
                "commit": result.get("commit") or None,
                "tag": result.get("tag") or None,
            }
        elif action == "compose_migrations" and result.get("pending") and result.get("changed") and not result.get("failed"):
            if not result.get("_ansible_check_mode") and not self.check_mode:
                self.migrations.append({"host": host, "ids": list(result["pending"]), "deployment_id": result.get("deployment_id")})
        elif action == "preflight_verdict" and isinstance(result.get("protection_off"), list):
            # Pre-flight's verdict names the protection that the operator turned off (backup, evidence gate).
            self.protection_off = [str(what) for what in result["protection_off"]]
        if action == "compose_deploy" and isinstance(result.get("before"), Mapping) and host not in self.planned:
            # The first plan of a host: what ran before this run changed anything.
            self.planned[host] = {"release_before": result["before"].get("release_id")}

    def _timeline(self, host: str) -> list[dict[str, Any]]:
        bars: list[dict[str, Any]] = []
        for event in sorted((e for e in self.events if e["host"] == host), key=lambda e: e["start"]):
            last = bars[-1] if bars else None
            if last is not None and last["phase"] == event["phase"]:
                last["end"] = max(last["end"], event["end"])
                last["tasks"] += 1
                if event["status"] in {"failed", "unreachable"}:
                    last["status"] = "failed"
                continue
            bars.append({"phase": event["phase"], "start": event["start"], "end": event["end"], "tasks": 1,
                         "status": "failed" if event["status"] in {"failed", "unreachable"} else "ok"})  # fmt: skip
        for segment in bars:
            segment["seconds"] = round((segment["end"] - segment["start"]).total_seconds(), 3)
            segment["start"], segment["end"] = format_time(segment["start"]), format_time(segment["end"])
        return bars

    def report(self, ended: datetime, stats: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
        """The whole run as one JSON-ready document."""
        jobs = sorted(self.jobs.values(), key=lambda job: (str(job.get("started_at") or ""), str(job.get("id"))))
        hosts: list[dict[str, Any]] = []
        # The hosts the run worked on: a timeline segment, a journal job or a failure (not the controller that only resolved).
        busy = {e["host"] for e in self.events} | {str(job.get("host")) for job in jobs} | {f["host"] for f in self.failures}
        names = [name for name in self.hosts if name in busy]
        failed_hosts: list[str] = []
        for name in names:
            host_jobs = [job for job in jobs if job.get("host") == name]
            counts = dict(stats.get(name, {}))
            last_job = host_jobs[-1].get("status") if host_jobs else None
            # Failed: the recap counts a failed task (not ignored, not rescued) or the host was unreachable, or its
            # last job neither completed nor rolled back (a failure that the playbook rescued, as a drill does).
            failed = (
                self.stopped_every_host
                or bool(counts.get("failures") or counts.get("unreachable"))
                or last_job not in (None, "completed", "rolled_back")
            )
            # A completed job that undid an earlier one, in an upgrade: the fleet rollback after a failed batch.
            undone = self.kind != "rollback" and last_job == "completed" and bool(host_jobs[-1].get("rollback_of"))
            if failed:
                failed_hosts.append(name)
            before = host_jobs[0].get("previous_release_id") if host_jobs else self.planned.get(name, {}).get("release_before")
            after = running_after(host_jobs) if host_jobs else (None if failed else before)
            hosts.append({
                "name": name,
                "outcome": _host_outcome("rolled_back" if undone else last_job, failed, self.check_mode),
                "release_before": before,
                "release_after": after,
                "rollback_seconds": rollback_seconds(host_jobs),
                "jobs": [job.get("id") for job in host_jobs],
                "stats": counts,
                "timeline": self._timeline(name),
            })  # fmt: skip
        wrote = bool(self.promotion and (self.promotion["files"] or self.promotion["commit"])) or bool(self.migrations)
        outcome = _run_outcome([host["outcome"] for host in hosts], bool(failed_hosts), self.check_mode, wrote)
        return {
            "format": REPORT_FORMAT,
            "kind": self.kind,
            "playbook": self.playbook,
            "started_at": format_time(self.started),
            "ended_at": format_time(ended),
            "seconds": round((ended - self.started).total_seconds(), 3),
            "check_mode": self.check_mode,
            "outcome": outcome,
            "failed_hosts": failed_hosts,
            "releases": self.releases,
            "release_before": sorted({str(h["release_before"]) for h in hosts if h["release_before"]}),
            "release_after": sorted({str(h["release_after"]) for h in hosts if h["release_after"]}),
            "rollback_seconds": rollback_seconds(jobs),
            "hosts": hosts,
            "jobs": jobs,
            "backups": list(self.backups.values()),
            "migrations": self.migrations,
            "evidence": self.evidence,
            "failures": self.failures,
            "promotion": self.promotion,
            "protection_off": self.protection_off,
            "phases": list(PHASES),
        }


def _cell(value: Any) -> str:
    """A Markdown table cell: one line, no control character, no HTML, no column break."""
    text = "—" if value is None or value in ("", []) else printable(str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|").replace("\n", " ")


def _seconds(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f} s"


def failed_on(report: Mapping[str, Any]) -> str:
    """``1 of 6 targets``: how many of the hosts the run worked on failed."""
    total = len(report["hosts"])
    return f"{len(report['failed_hosts'])} of {total} target{'' if total == 1 else 's'}"


def _running_now(hosts: Sequence[Mapping[str, Any]]) -> str:
    """``2025.10.0-stable on h1, h2; unknown on h3``: the release after the run, host by host, grouped by release."""
    groups: dict[str, list[str]] = {}
    for host in hosts:
        groups.setdefault(str(host["release_after"] or "unknown"), []).append(str(host["name"]))
    parts = []
    for release, names in groups.items():
        more = f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else ""
        parts.append(f"{release} on {', '.join(names[:_NAMES_SHOWN])}{more}")
    return "; ".join(parts)


def summary_lines(report: Mapping[str, Any], paths: Mapping[str, str]) -> list[str]:
    """The few lines that end the run on the console; a failed run names how many targets failed and what each runs now."""
    before = ", ".join(report["release_before"]) or "—"
    after = ", ".join(report["release_after"]) or "—"
    failed = report["outcome"] == "failed"
    facts = [f"{len(report['hosts'])} host(s)"] if report["hosts"] and not failed else []
    if report["release_before"] or report["release_after"]:
        facts.append(f"{before} -> {after}")
    facts.append(f"{report['seconds']:.1f} s")
    if report["rollback_seconds"] is not None:
        facts.append(f"rollback {report['rollback_seconds']:.1f} s")
    head = f"{report['kind'].upper()} {report['outcome'].upper()}" + (f" on {failed_on(report)}" if failed else "")
    lines = [f"{head}: " + ", ".join(facts)]
    if failed and (report["release_before"] or report["release_after"]):
        lines.append("  running now: " + _running_now(report["hosts"]))
    protection = []
    promotion = report.get("promotion") or {}
    if promotion:
        protection.append(
            f"promotion {promotion['release_id']}: {len(promotion['files'])} file(s)"
            + (f", commit {str(promotion['commit'])[:12]}" if promotion["commit"] else "")
            + (f", tag {promotion['tag']}" if promotion["tag"] else "")
        )
    if report["backups"]:
        protection.append("backup set " + ", ".join(b["set_id"] for b in report["backups"]))
    if report.get("migrations"):
        protection.append("migrations applied " + ", ".join(i for applied in report["migrations"] for i in applied["ids"]))
    if report["evidence"].get("baseline"):
        protection.append(f"evidence root {str(report['evidence']['baseline']['root'])[:16]}")
    if report["evidence"].get("continuity"):
        protection.append(f"continuity {report['evidence']['continuity']['status']}")
    if protection:
        lines.append("  " + "; ".join(protection))
    if report.get("protection_off"):
        lines.append("  turned off: " + "; ".join(report["protection_off"]))
    for failure in report["failures"][:3]:
        lines.append(f"  failed on {failure['host']} at {failure['task']}: {failure['message'][:200]}")
    lines.append("  report: " + " ".join(paths[kind] for kind in ("html", "md", "json") if kind in paths))
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: the outcome, one row per host, protection, timeline and failures."""
    out = [
        f"# {report['kind'].capitalize()} report: {report['outcome']}",
        "",
        f"- Playbook: `{report['playbook']}`" + (" (check mode)" if report["check_mode"] else ""),
        *([f"- Failed on {failed_on(report)}: {_cell(', '.join(report['failed_hosts']))}"] if report["failed_hosts"] else []),
        f"- Started {report['started_at']}, ended {report['ended_at']} ({report['seconds']:.1f} s)",
        f"- Release before: {_cell(', '.join(report['release_before']))}; after: {_cell(', '.join(report['release_after']))}",
        f"- Rollback duration: {_seconds(report['rollback_seconds'])}",
        *([f"- Turned off: {_cell('; '.join(report['protection_off']))}"] if report.get("protection_off") else []),
        "",
        "## Hosts",
        "",
        "| Host | Outcome | Release before | Release after | Rollback (s) | Journal jobs |",
        "|---|---|---|---|---|---|",
    ]
    for host in report["hosts"]:
        out.append(
            f"| {_cell(host['name'])} | {_cell(host['outcome'])} | {_cell(host['release_before'])} | {_cell(host['release_after'])} "
            f"| {_cell(host['rollback_seconds'])} | {_cell(', '.join(host['jobs']))} |"
        )
    promotion = report.get("promotion") or {}
    if promotion:
        out += ["", "## Promotion", "", f"- Release `{promotion['release_id']}`, commit {_cell(promotion['commit'])}, tag {_cell(promotion['tag'])}"]
        out += [f"- `{name}`" for name in promotion["files"]]
    out += ["", "## Backup sets and evidence", ""]
    for backup in report["backups"]:
        out.append(f"- Backup set `{backup['set_id']}` ({backup['status']}{', reused' if backup['reused'] else ''}): `{backup['set_path']}`")
    baseline = report["evidence"].get("baseline")
    if baseline:
        out.append(f"- Evidence baseline root `{baseline['root']}` ({baseline['count']} bundles), `{baseline['path']}`")
        out += [f"  - partition `{name}`: `{root}`" for name, root in sorted(baseline["partitions"].items())]
    continuity = report["evidence"].get("continuity")
    if continuity:
        out.append(f"- Evidence continuity: {continuity['status']} (roots match: {continuity['roots_match']})")
    if not (report["backups"] or baseline or continuity):
        out.append("- None taken in this run.")
    out += ["", "## Timeline", "", "| Host | Phase | Start (UTC) | Seconds | Tasks | Status |", "|---|---|---|---|---|---|"]
    for host in report["hosts"]:
        for part in host["timeline"]:
            out.append(f"| {_cell(host['name'])} | {part['phase']} | {part['start']} | {part['seconds']:.1f} | {part['tasks']} | {part['status']} |")
    if report["failures"]:
        out += ["", "## Failures", ""]
        out += [f"- {_cell(f['host'])}, {_cell(f['task'])}: {_cell(f['message'])}" for f in report["failures"]]
    return "\n".join(out) + "\n"


def claim_report_stem(directory: str, name: str) -> str:
    """``directory/name`` (``-2``, ``-3``... added when taken) with its ``.json`` created, so that two runs
    that start in the same second never write over each other's report."""
    try:
        os.makedirs(directory, exist_ok=True)
        for number in range(1, 1000):
            stem = os.path.join(directory, name if number == 1 else f"{name}-{number}")
            try:
                os.close(os.open(f"{stem}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
            except FileExistsError:
                continue
            return stem
    except OSError as err:
        raise StellaOpsError(f"Cannot write a report into {directory}: {err.strerror}.") from err
    raise StellaOpsError(f"Cannot write a report into {directory}: {name} and 998 numbered names after it are taken.")
