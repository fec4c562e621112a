# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-contained HTML page of a run report: the outcome, a timeline drawn per host, releases,
backup sets, evidence roots and failures (no scripts, no external resources).

The timeline is an inline SVG: one row per host, one segment per phase stretch, each phase in a
fixed colour (``PHASE_COLOURS``) on a shared time axis. Every value is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Mapping, Optional

from .run_report import PHASES, failed_on, parse_time

PHASE_COLOURS: dict[str, str] = {
    "pre-flight": "#7b3fe4",
    "backup": "#1f6fd1",
    # Not green: green is the colour of a run that succeeded, and a deploy bar may hold the failure.
    "deploy": "#8c564b",
    "verification": "#e0a800",
    "smoke": "#00a3a3",
    "rollback": "#d62828",
}
# The empty track of each host's row; no other element of the page has this colour.
TRACK_COLOUR = "#e4e9ee"
# Green only for a run that succeeded: a failure on any target is red, an automatic rollback amber.
_OUTCOME_COLOURS = {"succeeded": "#1a7f37", "failed": "#cf222e", "rolled back": "#9a6700", "checked": "#57606a", "no change": "#57606a"}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1b1f23}
h1{margin-bottom:.2em}.outcome{display:inline-block;padding:.3em .8em;border-radius:4px;color:#fff;font-weight:bold}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
th{background:#f6f8fa}code{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:1em;height:1em;margin-right:.3em;vertical-align:middle}
"""
_LABEL_WIDTH = 160
_CHART_WIDTH = 900
_ROW_HEIGHT = 34
_BAR_HEIGHT = 22


def _e(value: Any) -> str:
    return escape("—" if value is None or value == "" else str(value), quote=True)


def _seconds_between(start: Optional[str], end: Optional[str]) -> float:
    first, last = parse_time(start), parse_time(end)
    if first is None or last is None:
        return 0.0
    return max((last - first).total_seconds(), 0.0)


def timeline_svg(report: Mapping[str, Any]) -> str:
    """One row per host, one segment per phase stretch, positioned on the run's time axis."""
    hosts = [host for host in report["hosts"] if host["timeline"]]
    total = max(_seconds_between(report["started_at"], report["ended_at"]), 0.001)
    height = _ROW_HEIGHT * max(len(hosts), 1) + 30
    scale = _CHART_WIDTH / total
    parts = [f'<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{_LABEL_WIDTH + _CHART_WIDTH + 10}" height="{height}" role="img">']
    for row, host in enumerate(hosts):
        y = row * _ROW_HEIGHT + 6
        parts.append(f'<text x="0" y="{y + 16}" font-size="13">{_e(host["name"])}</text>')
        parts.append(f'<rect x="{_LABEL_WIDTH}" y="{y}" width="{_CHART_WIDTH}" height="{_BAR_HEIGHT}" fill="{TRACK_COLOUR}"/>')
        for segment in host["timeline"]:
            x = _LABEL_WIDTH + _seconds_between(report["started_at"], segment["start"]) * scale
            # A segment stays visible however short its phase was.
            width = max(segment["seconds"] * scale, 4.0)
            title = f"{host['name']} {segment['phase']}: {segment['seconds']:.1f} s, {segment['tasks']} task(s), {segment['status']}"
            stroke = ' stroke="#000" stroke-width="2"' if segment["status"] == "failed" else ""
            parts.append(
                f'<rect class="bar {_e(segment["phase"])}" data-host="{_e(host["name"])}" x="{x:.1f}" y="{y}" width="{width:.1f}" '
                f'height="{_BAR_HEIGHT}" fill="{PHASE_COLOURS[segment["phase"]]}"{stroke}><title>{_e(title)}</title></rect>'
            )
    axis_y = _ROW_HEIGHT * max(len(hosts), 1) + 20
    parts.append(f'<text x="{_LABEL_WIDTH}" y="{axis_y}" font-size="12">0 s</text>')
    parts.append(f'<text x="{_LABEL_WIDTH + _CHART_WIDTH}" y="{axis_y}" font-size="12" text-anchor="end">{total:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page."""
    outcome = str(report["outcome"])
    colour = _OUTCOME_COLOURS[outcome]
    legend = "".join(f'<span><i style="background:{PHASE_COLOURS[phase]}"></i>{_e(phase)}</span>' for phase in PHASES)
    rollback = "—" if report["rollback_seconds"] is None else f"{report['rollback_seconds']:.1f} s"
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(report['kind'].capitalize())} report: {_e(outcome)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(report['kind'].capitalize())} report</h1>",
        f'<p><span id="outcome" class="outcome" style="background:{colour}">{_e(outcome.upper())}</span></p>',
        '<table id="summary">',
        f"<tr><th>Playbook</th><td><code>{_e(report['playbook'])}</code>{' (check mode)' if report['check_mode'] else ''}</td></tr>",
        *(
            [f'<tr><th>Failed on</th><td id="failed-on">{_e(failed_on(report))}: {_e(", ".join(report["failed_hosts"]))}</td></tr>']
            if report["failed_hosts"]
            else []
        ),
        f"<tr><th>Started (UTC)</th><td>{_e(report['started_at'])}</td></tr>",
        f"<tr><th>Duration</th><td>{report['seconds']:.1f} s</td></tr>",
        f"<tr><th>Release before</th><td>{_e(', '.join(report['release_before']))}</td></tr>",
        f"<tr><th>Release after</th><td>{_e(', '.join(report['release_after']))}</td></tr>",
        f'<tr><th>Rollback duration</th><td id="rollback-duration">{_e(rollback)}</td></tr>',
        *([f'<tr><th>Turned off</th><td id="turned-off">{_e("; ".join(report["protection_off"]))}</td></tr>'] if report.get("protection_off") else []),
        "</table>",
        "<h2>Timeline</h2>",
        f'<p class="legend">{legend}</p>',
        timeline_svg(report),
        '<h2>Hosts</h2><table id="hosts"><tr><th>Host</th><th>Outcome</th><th>Release before</th><th>Release after</th>'
        "<th>Rollback</th><th>Journal jobs</th></tr>",
    ]
    for host in report["hosts"]:
        host_rollback = None if host["rollback_seconds"] is None else f"{host['rollback_seconds']:.1f} s"
        parts.append(
            f"<tr><td>{_e(host['name'])}</td><td>{_e(host['outcome'])}</td><td>{_e(host['release_before'])}</td>"
            f"<td>{_e(host['release_after'])}</td><td>{_e(host_rollback)}</td><td><code>{_e(', '.join(host['jobs']))}</code></td></tr>"
        )
    parts.append("</table>")
    promotion = report.get("promotion") or {}
    if promotion:
        parts.append(
            f'<h2>Promotion</h2><table id="promotion"><tr><th>Release</th><td>{_e(promotion["release_id"])}</td></tr>'
            f"<tr><th>Commit</th><td><code>{_e(promotion['commit'])}</code></td></tr><tr><th>Tag</th><td>{_e(promotion['tag'])}</td></tr>"
            + "".join(f"<tr><th>File</th><td><code>{_e(name)}</code></td></tr>" for name in promotion["files"])
            + "</table>"
        )
    parts.append('<h2>Backup sets and evidence roots</h2><table id="protection">')
    for backup in report["backups"]:
        parts.append(
            f"<tr><th>Backup set</th><td><code>{_e(backup['set_id'])}</code> ({_e(backup['status'])}"
            f"{', reused' if backup['reused'] else ''}) <code>{_e(backup['set_path'])}</code></td></tr>"
        )
    baseline = report["evidence"].get("baseline")
    if baseline:
        parts.append(f"<tr><th>Evidence root</th><td><code>{_e(baseline['root'])}</code> ({_e(baseline['count'])} bundles)</td></tr>")
        parts += [f"<tr><th>Partition {_e(name)}</th><td><code>{_e(root)}</code></td></tr>" for name, root in sorted(baseline["partitions"].items())]
    continuity = report["evidence"].get("continuity")
    if continuity:
        parts.append(f"<tr><th>Evidence continuity</th><td>{_e(continuity['status'])} (roots match: {_e(continuity['roots_match'])})</td></tr>")
    if not (report["backups"] or baseline or continuity):
        parts.append("<tr><td>None taken in this run.</td></tr>")
    parts.append("</table>")
    if report["failures"]:
        parts.append('<h2>Failures</h2><table id="failures"><tr><th>Host</th><th>Task</th><th>Message</th></tr>')
        parts += [f"<tr><td>{_e(f['host'])}</td><td>{_e(f['task'])}</td><td>{_e(f['message'])}</td></tr>" for f in report["failures"]]
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
