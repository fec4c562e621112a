# SPDX-License-Identifier: GPL-3.0-or-later
"""Self-contained HTML page of an evidence continuity report (no scripts, no external resources).

Every value from the store or the baseline is escaped with ``html.escape``.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable, Mapping, Sequence

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1b1f23}
h1{margin-bottom:.2em}.status{display:inline-block;padding:.3em .8em;border-radius:4px;color:#fff;font-weight:bold}
.passed{background:#1a7f37}.failed{background:#cf222e}.incomplete{background:#9a6700}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:.25em .6em;text-align:left}
th{background:#f6f8fa}code{font-family:ui-monospace,monospace;font-size:.9em;word-break:break-all}
.no{color:#cf222e;font-weight:bold}.yes{color:#1a7f37}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _table(caption: str, table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Any]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>\n" for row in rows)
    if not body:
        return f'<h2 id="{table_id}">{_e(caption)}</h2>\n<p class="none">{_e(empty)}</p>\n'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f'<h2 id="{table_id}">{_e(caption)}</h2>\n<table id="{table_id}-table"><tr>{head}</tr>\n{body}</table>\n'


def _match(flag: bool) -> str:
    return '<span class="yes">yes</span>' if flag else '<span class="no">NO</span>'


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one HTML page that a person reads at a glance: status, counts, roots, every finding."""
    status = str(report["status"])
    counts = report["counts"]
    store = report["store"]
    if store.get("type") == "directory":
        where = store.get("path")
    else:
        where = f"s3://{store.get('bucket')}/{store.get('prefix') or ''} at {store.get('endpoint') or 'AWS'}"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Evidence continuity: {_e(status.upper())}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Evidence continuity report</h1>\n<p><span id=\"status\" class=\"status {_e(status)}\">{_e(status.upper())}</span></p>",
    ]
    if not report["complete"]:
        parts.append("<p class=\"no\">Some bundles could not be read: this report is INCOMPLETE and proves nothing about them.</p>")
    parts.append(
        "<table id=\"summary\">"
        f"<tr><th>Store</th><td><code>{_e(where)}</code></td></tr>"
        f"<tr><th>Baseline taken</th><td>{_e(report['baseline']['created'])}</td></tr>"
        f"<tr><th>Baseline checksum</th><td><code>{_e(report['baseline']['checksum'])}</code></td></tr>"
        f"<tr><th>Verified</th><td>{_e(report['verified'])}</td></tr>"
        f"<tr><th>Tool</th><td>{_e(report['tool']['name'])} {_e(report['tool']['version'])}</td></tr>"
        f"<tr><th>Roots match</th><td id=\"roots-match\">{_match(bool(report['roots_match']))}</td></tr>"
        "</table>"
    )
    parts.append(
        _table(
            "Counts",
            "counts",
            ["baseline", "current", "lost", "modified", "added", "unreadable"],
            [[_e(counts[k]) for k in ("baseline", "current", "lost", "modified", "added", "unreadable")]],
            "",
        )
    )
    total = report["roots"]["total"]
    root_rows = [["<b>all bundles</b>", _e(report["baseline"]["total"]["count"]), f"<code>{_e(total['baseline_root'])}</code>",
                  f"<code>{_e(total['recomputed_root'])}</code>", _match(bool(total["match"]))]]
    for name, item in sorted(report["roots"]["partitions"].items()):
        root_rows.append([f"<code>{_e(name)}</code>", _e(item["baseline_count"]), f"<code>{_e(item['baseline_root'])}</code>",
                          f"<code>{_e(item['recomputed_root'])}</code>", _match(bool(item["match"]))])
    parts.append(_table("Merkle roots (RFC 6962) of the baseline's bundles", "roots",
                        ["partition", "bundles", "baseline root", "recomputed now", "match"], root_rows, ""))
    parts.append(_table("Lost bundles", "lost", ["key", "partition", "baseline sha256", "size"],
                        ([f"<code>{_e(f['key'])}</code>", _e(f["partition"]), f"<code>{_e(f['sha256'])}</code>", _e(f["size"])]
                         for f in report["lost"]), "None."))
    parts.append(_table("Modified bundles", "modified", ["key", "partition", "baseline sha256", "current sha256", "size before", "size now"],
                        ([f"<code>{_e(f['key'])}</code>", _e(f["partition"]), f"<code>{_e(f['baseline_sha256'])}</code>",
                          f"<code>{_e(f['current_sha256'])}</code>", _e(f["baseline_size"]), _e(f["current_size"])]
                         for f in report["modified"]), "None."))
    parts.append(_table("Unreadable bundles", "unreadable", ["key", "error"],
                        ([f"<code>{_e(f['key'])}</code>", _e(f["error"])] for f in report["unreadable"]), "None."))
    parts.append(_table("Added bundles (allowed)", "added", ["key", "partition", "sha256", "size"],
                        ([f"<code>{_e(f['key'])}</code>", _e(f["partition"]), f"<code>{_e(f['sha256'])}</code>", _e(f["size"])]
                         for f in report["added"]), "None."))
    parts.append("</body></html>\n")
    return "\n".join(parts)
