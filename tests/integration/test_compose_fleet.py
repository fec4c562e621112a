# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose profile on the sandbox fleet: hosts over real SSH, the built and installed collection.

Each host is a container with its own filesystem reached over SSH on 127.0.0.1; fleet-2 and
fleet-3 drive Docker engines of their own. The playbooks run as ``stellaops.deploy.upgrade`` and
``stellaops.deploy.rollback`` from a collection built into a tarball and installed outside this
checkout. Every step is checked on the engines themselves (container ids, config hashes, images),
on the hosts' files (over SSH) and on what the services' health endpoints answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fleet import Fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The three fleet hosts with a project of this module's own (ports 181x1.., 182x1.., 183x1..)."""
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("fleet-lifecycle"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, port_offset=10),
        project="it-lifecycle",
        port_offset=10,
        extra_vars={"compose_upgrade_backup": False, "compose_upgrade_evidence_gate": False},
    )
    fleet.clean()
    fleet.write()
    yield fleet
    fleet.clean()


def test_check_apply_check_apply(fleet: Fleet) -> None:
    """Check mode predicts the real run exactly; a second run changes nothing."""
    checked = fleet.run("upgrade", check=True, channel="stable", release="2025.09.0")
    assert checked.rc == 0, checked.stdout[-3000:]
    for host in fleet.hosts:
        plan = checked.result("Plan the deployment with Compose", host.name)
        assert plan["changed"] is True
        assert sorted(plan["plan"]["create"]) == sorted(["attestor", "authority", "notify", "scanner-web", "scheduler", "signer"])
        assert host.containers(fleet.project) == {}, "check mode started containers"
        assert host.read_file(f"{fleet.project_dir}/current") is None

    applied = fleet.run("upgrade", channel="stable", release="2025.09.0")
    assert applied.rc == 0, applied.stdout[-3000:]
    assert fleet.versions() == {host.name: "2025.09.0" for host in fleet.hosts}
    before = {host.name: host.containers(fleet.project) for host in fleet.hosts}
    for host in fleet.hosts:
        deployed = applied.result("Deploy the release and prove it", host.name)
        assert deployed["changed"] is True and deployed["verified"] is True
        assert {s: c["config_hash"] for s, c in before[host.name].items()} == deployed["config_hashes"]

    again_check = fleet.run("upgrade", check=True, channel="stable", release="2025.09.0")
    again = fleet.run("upgrade", channel="stable", release="2025.09.0")
    assert again_check.rc == 0 and again.rc == 0
    for host in fleet.hosts:
        assert again_check.result("Plan the deployment with Compose", host.name)["plan"]["changes"] == []
        assert again.changed(host.name) == 0
        assert {s: c["id"] for s, c in host.containers(fleet.project).items()} == {s: c["id"] for s, c in before[host.name].items()}
