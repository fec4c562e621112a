# SPDX-License-Identifier: GPL-3.0-or-later
"""Reports, drills and AWX jobs on the sandbox fleet, over real SSH from the installed collection.

- ``upgrade.yml`` runs through ansible-runner (the library AWX runs jobs with) with the answers of the
  upgrade job template's survey (awx/stellaops.yml); its status, events and artifacts are read back,
  and the run report it wrote is compared with the hosts' journals.
- ``drill.yml`` upgrades, forces the sandbox's faulty release (its /health answers 404), lets the
  automatic rollback run, and appends its row to a rehearsal log; its HTML report is opened in
  headless Chromium (Debian's package) and the screenshot is read pixel by pixel: one timeline band
  per host, holding exactly the phase colours that the report lists for that host.

fleet-1 (the machine's engine) and fleet-2 (an engine of its own), ports 18191.. and 18291...
Each test brings the hosts where it needs them, so the tests do not depend on their order.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet import VENV_BIN, Fleet, project_fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
PATIENT_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "stellaops-patient-health.template.yml"
PROJECT = "it-reports"
PORT_OFFSET = 90
GOOD = "2025.11.0-edge"
FAULTY = "2025.11.1-edge"


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("reports"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, PORT_OFFSET)[:2],
        project=PROJECT,
        port_offset=PORT_OFFSET,
        extra_vars={
            # The machine is shared and loaded: a healthcheck and health checks that a healthy release meets there.
            "compose_upgrade_template": str(PATIENT_TEMPLATE),
        },
        compose={"wait_timeout": 240, "health_retries": 30, "health_interval": 2},
    )
    with project_fleet(fleet):
        yield fleet


def environment(fleet: Fleet) -> dict[str, str]:
    return {
        "ANSIBLE_CONFIG": str(fleet.workdir / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(fleet.collections),
        "ANSIBLE_CALLBACKS_ENABLED": "stellaops.deploy.run_report",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}{os.pathsep}{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "STELLAOPS_TOOLS_DIR": str(ROOT / ".tools" / "bin"),
    }


def survey_answers(template_name: str, answers: dict[str, str], workdir: Path) -> dict[str, str]:
    """The extra vars AWX gives a job from its survey: the template's questions, rendered by
    awx/configure.yml, answered with ``answers`` (by variable) or their defaults."""
    export = workdir / "awx-export.json"
    subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), str(ROOT / "awx" / "configure.yml"), "-e", f"stellaops_awx_export={export}"],
        cwd=ROOT, env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}, check=True, capture_output=True,
    )  # fmt: skip
    template = next(t for t in json.loads(export.read_text())["job_templates"] if t["name"] == template_name)
    assert template["survey_enabled"] and not template["allow_simultaneous"]
    questions = template["survey_spec"]["spec"]
    assert set(answers) <= {q["variable"] for q in questions}, "an answer to a question the survey does not ask"
    return {**template["extra_vars"], **{q["variable"]: answers.get(q["variable"], q["default"]) for q in questions}}


def newest_report(directory: Path, kind: str) -> dict[str, Any]:
    found = sorted(directory.glob(f"*-{kind}.json"))
    assert found, f"no {kind} report in {directory}: {sorted(p.name for p in directory.iterdir()) if directory.exists() else 'no directory'}"
    return json.loads(found[-1].read_text())


def test_upgrade_through_ansible_runner_with_the_survey_answers(fleet: Fleet, tmp_path: Path) -> None:
    import ansible_runner

    reports = tmp_path / "reports"
    answers = survey_answers("Stella Ops upgrade", {"channel": "edge", "release": "2025.11.0", "stellaops_serial": "1"}, tmp_path)
    answers["stellaops_report_dir"] = str(reports)
    fleet.clean()
    (tmp_path / "runner").mkdir()
    result = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        project_dir=str(ROOT),
        playbook="playbooks/upgrade.yml",
        inventory=str(fleet.inventory),
        extravars={**fleet.vars(), **answers},
        envvars=environment(fleet),
        quiet=True,
        timeout=900,
    )
    stdout = result.stdout.read()
    assert (result.status, result.rc) == ("successful", 0), stdout[-3000:]

    # Events as AWX stores them: the deploy ran on each host, one batch after the other (serial 1).
    events = list(result.events)

    def named(event: dict[str, Any], task: str) -> bool:
        return str(event["event_data"].get("task", "")).rsplit(" : ", maxsplit=1)[-1] == task

    deploys = [e for e in events if e["event"] == "runner_on_ok" and named(e, "Deploy the release and prove it")]
    assert [e["event_data"]["host"] for e in deploys] == ["fleet-1", "fleet-2"]
    starts = {e["event_data"]["host"]: e for e in events if e["event"] == "runner_on_start" and named(e, "Deploy the release and prove it")}
    assert deploys[0]["created"] <= starts["fleet-2"]["created"]
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    assert set(stats["changed"]) >= {"fleet-1", "fleet-2"} and not stats["failures"]
    artifacts = Path(result.config.artifact_dir)
    assert (artifacts / "rc").read_text().strip() == "0" and len(list((artifacts / "job_events").glob("*.json"))) == len(events)

    # The run report agrees with the journals on the hosts, and the run ends with its summary.
    report = newest_report(reports, "upgrade")
    assert (report["outcome"], report["release_after"], report["rollback_seconds"]) == ("succeeded", [GOOD], None)
    for host in fleet.hosts:
        journal = [job for job in host.journal(fleet.project_dir) if job["started_at"] >= report["started_at"]]
        entry = next(h for h in report["hosts"] if h["name"] == host.name)
        assert entry["jobs"] == [job["id"] for job in journal] and journal[-1]["status"] == "completed"
        assert {"deploy", "verification"} <= {part["phase"] for part in entry["timeline"]}
    # The environment is backed up once per run, by the host of the first batch.
    assert [h["name"] for h in report["hosts"] if "backup" in {part["phase"] for part in h["timeline"]}] == ["fleet-1"]
    assert report["backups"] and report["evidence"]["baseline"]["root"] and report["evidence"]["continuity"]["status"] == "passed"
    assert f"UPGRADE SUCCEEDED: 2 host(s), — -> {GOOD}" in stdout
    assert fleet.versions() == {"fleet-1": "2025.11.0", "fleet-2": "2025.11.0"}


def screenshot_bands(page: Path, png: Path) -> list[dict[str, int]]:
    """Open the page in headless Chromium, and per timeline band (a host's row) count the pixels of each phase colour."""
    from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report_html import PHASE_COLOURS, TRACK_COLOUR
    from PIL import Image

    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--force-device-scale-factor=1",
         "--force-color-profile=srgb", "--window-size=1280,2000", f"--screenshot={png}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    image = Image.open(png).convert("RGB")
    pixels = image.load()

    def rgb(colour: str) -> tuple[int, int, int]:
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)

    def near(found: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 6 for a, b in zip(found, want, strict=True))

    # A band's rows are wide runs of the track and phase colours (the legend's swatches are too small to count).
    band_colours = [rgb(TRACK_COLOUR), *(rgb(colour) for colour in PHASE_COLOURS.values())]
    rows = [
        y for y in range(image.height)
        if sum(any(near(pixels[x, y], colour) for colour in band_colours) for x in range(0, image.width, 4)) > 40
    ]
    bands: list[list[int]] = []
    for y in rows:
        if bands and y == bands[-1][-1] + 1:
            bands[-1].append(y)
        else:
            bands.append([y])
    counts = []
    for band in bands:
        tally = dict.fromkeys(PHASE_COLOURS, 0)
        for y in band:
            for x in range(image.width):
                for phase, colour in PHASE_COLOURS.items():
                    if near(pixels[x, y], rgb(colour)):
                        tally[phase] += 1
        counts.append(tally)
    return counts


def test_drill_rolls_back_appends_its_row_and_draws_its_timeline(fleet: Fleet, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    log = tmp_path / "rehearsal-log.md"
    log.write_text(
        "# Drills\n\n| Date (UTC) | Channel | What was exercised | Outcome | Rollback duration | Follow-up |\n|---|---|---|---|---|---|\n"
        "| 2025-10-26 | edge | documentation dry-run | planned | — | next live drill |\n"
    )
    extra = {"channel": "edge", "release": "2025.11.0", "stellaops_report_dir": str(reports), "drill_rehearsal_log": str(log)}
    command = fleet._command("drill", check=False, diff=False, limit=None, extra=extra)
    command["env"] = {**command["env"], **environment(fleet), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    run = fleet.runner(**command, timeout=900)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]

    # The faulty release was started and rolled back on each host; the good release runs again.
    for host in fleet.hosts:
        faulty = [job for job in host.journal(fleet.project_dir) if job["release_id"] == FAULTY]
        assert faulty and faulty[-1]["status"] == "rolled_back", faulty
    assert fleet.versions() == {"fleet-1": "2025.11.0", "fleet-2": "2025.11.0"}

    report = newest_report(reports, "drill")
    assert report["outcome"] == "rolled back" and report["release_after"] == [GOOD] and report["rollback_seconds"] > 0
    for host in report["hosts"]:
        assert host["rollback_seconds"] > 0 and "rollback" in {span["phase"] for span in host["timeline"]}

    # The row, in the runbook's form, after the existing one, with the report's rollback duration.
    rows = [line for line in log.read_text().splitlines() if line.startswith("| ") and not line.startswith("| Date")]
    assert len(rows) == 2 and rows[0].startswith("| 2025-10-26")
    cells = [cell.strip() for cell in rows[1].strip("|").split(" | ")]
    assert cells[1:4] == ["edge", f"upgrade to {GOOD} on 2 host(s), forced failure with {FAULTY}, automatic rollback", "rolled back"]
    assert cells[4] == f"{report['rollback_seconds']:.1f} s" and cells[5] == "none"
    assert "DRILL ROLLED BACK: 2 host(s)" in run.stdout and "report: " in run.stdout

    # The HTML page as a person sees it: one band per host with exactly the phases the report lists.
    html = sorted(reports.glob("*-drill.html"))[-1]
    bands = screenshot_bands(html, tmp_path / "drill.png")
    assert len(bands) == len(report["hosts"]), bands
    for band, host in zip(bands, report["hosts"], strict=True):
        drawn = {phase for phase, count in band.items() if count > 0}
        assert drawn == {span["phase"] for span in host["timeline"]}, (host["name"], band)
        assert band["rollback"] >= 4 * 20  # at least a 4-pixel-wide bar, 22 pixels high
