# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: run_report
type: notification
short_description: Write a JSON, Markdown and HTML report of every upgrade, rollback, promotion and drill
description:
  - Records each task result of a run (host, role, task file, module, start and end time) and, when the
    playbook ends, writes three files on the controller, C(<UTC start>-<kind>.json), C(.md) and C(.html),
    then ends the console output with a few lines that say the same.
  - The outcome of the run is one of V(succeeded), V(failed), V(rolled back), V(no change), or V(checked) in check mode.
    A run in which any target failed (a failed task that was neither ignored nor rescued, an unreachable host, a journal
    job that neither completed nor rolled back) is V(failed), and its summary says on how many of the targets and what
    each target runs now.
  - The report holds the outcome, the release before and after on each host, the backup sets and evidence
    roots the run took, the rollback duration, the failures, and a timeline per host whose bars are the
    phases pre-flight, backup, deploy, verification, smoke and rollback.
  - Releases and rollback durations come from the deployment journal jobs that the run's
    M(stellaops.deploy.deployment_journal) tasks returned (their status history), backup sets from
    M(stellaops.deploy.backup), evidence roots from M(stellaops.deploy.evidence_baseline) and
    M(stellaops.deploy.evidence_verify). A value that no task returned is left empty.
  - Only the playbooks named in O(playbooks) are reported (by file name without C(.yml)).
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
requirements:
  - Enable it in C(ansible.cfg) (C(callbacks_enabled = stellaops.deploy.run_report)) or with E(ANSIBLE_CALLBACKS_ENABLED).
options:
  report_dir:
    description:
      - Directory on the controller for the reports; created when missing.
      - The extra variable C(stellaops_report_dir) takes precedence.
      - Default is C(reports) beside the playbook's directory.
    type: path
    env:
      - name: STELLAOPS_REPORT_DIR
    ini:
      - section: stellaops_run_report
        key: report_dir
  playbooks:
    description: Playbooks (file names without C(.yml)) whose runs are reported, with the report kind of each.
    type: dict
    default: {upgrade: upgrade, rollback: rollback, promote: promotion, drill: drill}
    env:
      - name: STELLAOPS_REPORT_PLAYBOOKS
    ini:
      - section: stellaops_run_report
        key: playbooks
"""

import json
import os
from datetime import datetime, timezone
from typing import Any, Optional

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_text
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report import RunRecorder, claim_report_stem, render_markdown, summary_lines
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report_html import render_html

_UTC = timezone.utc  # noqa: UP017
_OUTCOME_COLOURS = {"succeeded": C.COLOR_OK, "failed": C.COLOR_ERROR, "rolled back": C.COLOR_CHANGED}


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "stellaops.deploy.run_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._recorder: Optional[RunRecorder] = None
        self._playbook_dir = ""
        self._extra_vars: dict[str, Any] = {}
        self._starts: dict[tuple[str, str], datetime] = {}

    def v2_playbook_on_start(self, playbook: Any) -> None:
        path = os.path.abspath(playbook._file_name)
        name = os.path.splitext(os.path.basename(path))[0]
        kind = (self.get_option("playbooks") or {}).get(name)
        self._playbook_dir = os.path.dirname(path)
        if kind:
            check_mode = bool(context.CLIARGS.get("check", False))
            self._recorder = RunRecorder(str(kind), path, datetime.now(_UTC), check_mode=check_mode)

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._extra_vars = dict(play.get_variable_manager().extra_vars)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._starts[(host.get_name(), task._uuid)] = datetime.now(_UTC)

    def _record(self, result: Any, status: str, ignored: bool = False) -> None:
        if self._recorder is None:
            return
        task = result._task
        host = result._host.get_name()
        end = datetime.now(_UTC)
        role = task._role.get_name() if task._role else ""
        self._recorder.record(
            host=host,
            task=task.get_name(),
            role=role,
            action=getattr(task, "resolved_action", None) or task.action,
            status=status,
            start=self._starts.pop((host, task._uuid), end),
            end=end,
            result=result._result,
            ignored=ignored,
            run_once=bool(task.run_once),
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        if self._recorder is None:
            return
        ended = datetime.now(_UTC)
        counts = {host: stats.summarize(host) for host in sorted(stats.processed)}
        report = self._recorder.report(ended, counts)
        directory = self._extra_vars.get("stellaops_report_dir") or self.get_option("report_dir") or os.path.join(self._playbook_dir, "..", "reports")
        directory = os.path.abspath(os.path.expanduser(str(directory)))
        try:
            stem = claim_report_stem(directory, f"{self._recorder.started.strftime('%Y%m%dT%H%M%SZ')}-{report['kind']}")
            paths = {"json": f"{stem}.json", "md": f"{stem}.md", "html": f"{stem}.html"}
            write_text(paths["json"], json.dumps(report, indent=2, sort_keys=True) + "\n")
            write_text(paths["md"], render_markdown(report))
            write_text(paths["html"], render_html(report))
        except StellaOpsError as err:
            self._display.warning(f"stellaops.deploy.run_report: {err}")
            return
        # A JSON stdout callback's document must stay the last thing on stdout (tools parse it).
        if "json" in str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK")):
            return
        self._display.display("")
        lines = summary_lines(report, paths)
        # The outcome line in the colours of task results (ok, failed, changed): green only when the run succeeded.
        self._display.display(lines[0], color=_OUTCOME_COLOURS.get(report["outcome"]))
        for line in lines[1:]:
            self._display.display(line)
