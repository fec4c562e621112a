# SPDX-License-Identifier: GPL-3.0-or-later
"""release_manifest and channel_alignment through ansible-playbook, against the sandbox's releases.

The sandbox registry (127.0.0.1:5000) holds the images its manifests pin; the module's normalized
digests are fetched back from that registry. One scenario set runs through the modules and through
both command-line tools and the three must agree; the same playbook in check mode gives the same results.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
MANIFEST_ACCEPT = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def write_playbook(path: Path, tasks: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump([{"name": "Release manifests", "hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    return path


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(TOOLS / name), *args], capture_output=True, text=True, check=False, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def test_module_reads_the_sandbox_releases_and_the_registry_has_their_digests(
    sandbox: dict[str, Any], tmp_path: Path, playbook_runner: Callable[..., Any]
) -> None:
    run_playbook = playbook_runner
    releases_dir = sandbox["releases_dir"]
    playbook = write_playbook(
        tmp_path / "read.yml",
        [
            {
                "name": "newest stable",
                "stellaops.deploy.release_manifest": {"directory": releases_dir, "channel": "stable", "strict": True},
            },
            {
                "name": "older stable",
                "stellaops.deploy.release_manifest": {"directory": releases_dir, "channel": "stable", "version": "2025.09.0"},
            },
            {
                "name": "missing version",
                "stellaops.deploy.release_manifest": {"directory": releases_dir, "channel": "stable", "version": "1999.1.0"},
                "ignore_errors": True,
            },
        ],
    )
    for check in (False, True):
        result = run_playbook(playbook, check=check)
        assert result.rc == 0, result.stdout[-2000:] + result.stderr
        newest = result.result("newest stable")
        assert newest["changed"] is False
        release = newest["release"]
        assert release["release_id"] == "2025.10.0-stable"
        assert release["path"] == f"{releases_dir}/2025.10.0-stable.yaml"
        assert newest["digests"] == sandbox["releases"]["2025.10.0"]["digests"]
        assert result.result("older stable")["release"]["version"] == "2025.09.0"
        missing = result.result("missing version")
        assert missing["failed"] is True
        assert missing["msg"] == (f"{releases_dir}: no release manifest for version '1999.1.0' on channel 'stable'; available: 2025.09.0, 2025.10.0.")
    for component in release["components"]:
        repository = component["repository"].split("/", 1)[1]
        request = urllib.request.Request(
            f"http://{sandbox['registry']}/v2/{repository}/manifests/{component['digest']}",
            method="HEAD",
            headers={"Accept": MANIFEST_ACCEPT},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the sandbox registry on 127.0.0.1
            assert response.status == 200
            assert response.headers["Docker-Content-Digest"] == component["digest"]


def sandbox_targets(sandbox: dict[str, Any], tmp_path: Path) -> dict[str, Path]:
    """A compose file and Helm values on the sandbox's 2025.10.0 digests, plus a drifted copy of each."""
    current = sandbox["releases"]["2025.10.0"]["digests"]
    older = sandbox["releases"]["2025.09.0"]["digests"]
    prefix = sandbox["repository_prefix"]
    components = sandbox["components"]
    compose = {"services": {c: {"image": f"{prefix}/{c}@{current[c]}"} for c in components}}
    compose["services"]["nats"] = {"image": "docker.io/library/nats:2.10.22-alpine"}
    values: dict[str, Any] = {c: {"image": {"repository": f"{prefix}/{c}", "digest": current[c]}} for c in components}
    drift_compose = json.loads(json.dumps(compose))
    drift_compose["services"]["signer"]["image"] = f"{prefix}/signer@{older['signer']}"
    drift_compose["services"]["notify"]["image"] = f"{prefix}/notify:2025.10.0"
    del drift_compose["services"]["scheduler"]
    drift_values = json.loads(json.dumps(values))
    drift_values["authority"]["image"] = f"{prefix}/authority@{older['authority']}"
    drift_values["redis"] = {"image": {"repository": "docker.io/library/redis", "tag": "7.4"}}
    paths = {}
    for name, data in {"compose": compose, "values": values, "drift-compose": drift_compose, "drift-values": drift_values}.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(yaml.safe_dump(data))
    return paths


def test_module_and_tools_agree(sandbox: dict[str, Any], tmp_path: Path, playbook_runner: Callable[..., Any]) -> None:
    run_playbook = playbook_runner
    release = f"{sandbox['releases_dir']}/2025.10.0-stable.yaml"
    targets = sandbox_targets(sandbox, tmp_path)
    scenarios = {
        "aligned": ([targets["compose"], targets["values"]], ["nats"], False),
        "aligned-strict-nats": ([targets["compose"], targets["values"]], [], True),
        "drift": ([targets["drift-compose"], targets["drift-values"]], ["nats"], False),
        "drift-strict": ([targets["drift-compose"], targets["drift-values"]], ["nats"], True),
    }
    tasks = [
        {
            "name": name,
            "stellaops.deploy.channel_alignment": {
                "release": release,
                "targets": [str(p) for p in paths],
                "ignore_repos": ignore,
                "strict": strict,
                "fail_on_mismatch": False,
            },
        }
        for name, (paths, ignore, strict) in scenarios.items()
    ]
    tasks.append(
        {
            "name": "drift fails the task",
            "stellaops.deploy.channel_alignment": {
                "release": release,
                "targets": [str(targets["drift-compose"])],
                "ignore_repos": ["nats"],
            },
            "ignore_errors": True,
        }
    )
    playbook = write_playbook(tmp_path / "align.yml", tasks)
    runs = [run_playbook(playbook), run_playbook(playbook, check=True)]
    expected_aligned = {"aligned": True, "aligned-strict-nats": False, "drift": False, "drift-strict": False}
    for result in runs:
        assert result.rc == 0, result.stdout[-2000:] + result.stderr
        for name, (paths, ignore, strict) in scenarios.items():
            module = result.result(name)
            assert module["changed"] is False and not module.get("failed")
            args = ["--release", release, "--json", *[a for p in paths for a in ("--target", str(p))]]
            args += [a for repo in ignore for a in ("--ignore-repo", repo)] + (["--strict"] if strict else [])
            proc = tool("check-channel-alignment", *args)
            cli = json.loads(proc.stdout)
            assert proc.returncode == (0 if expected_aligned[name] else 1), name
            assert module["aligned"] is cli["aligned"] is expected_aligned[name], name
            for key in ("mismatches", "summary", "blocking_reasons", "targets", "msg", "release_id"):
                assert module[key] == cli[key], (name, key)
        failing = result.result("drift fails the task")
        assert failing["failed"] is True and failing["aligned"] is False
        assert failing["msg"].startswith("Release 2025.10.0-stable is not aligned: 2 blocking finding(s) in 1 target(s)")

    drift = runs[0].result("drift")
    found = {(Path(m["target"]).name, m["service"] or m["component"], m["reason"], m["blocking"]) for m in drift["mismatches"]}
    assert found == {
        ("drift-compose.yaml", "signer", "digest_mismatch", True),
        ("drift-compose.yaml", "notify", "unpinned", True),
        ("drift-compose.yaml", "scheduler", "missing_in_target", False),
        ("drift-values.yaml", "authority.image", "digest_mismatch", True),
        ("drift-values.yaml", "redis.image", "unknown_repository", False),
    }
    assert all(m["blocking"] for m in runs[0].result("drift-strict")["mismatches"])

    validate = tool("validate-release-manifest", release, "--strict", "--json")
    module_release = run_playbook(
        write_playbook(tmp_path / "one.yml", [{"name": "one", "stellaops.deploy.release_manifest": {"path": release, "strict": True}}])
    ).result("one")["release"]
    assert validate.returncode == 0
    assert json.loads(validate.stdout)["manifests"][0]["release"] == module_release


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("release:\n  version: '2025.12.0'\n  channel: [stable\n", "YAML syntax error at line 4, column 1"),
        ("release:\n  version: '2025.12.0'\n  channel: nightly\n  components: [{name: a, image: x/a:1}]\n", "release.channel is 'nightly'; expected one of"),
    ],
)
def test_bad_manifest_fails_module_and_tools_with_the_same_sentence(tmp_path: Path, content: str, fragment: str, playbook_runner: Callable[..., Any]) -> None:
    run_playbook = playbook_runner
    path = tmp_path / "2025.12.0-stable.yaml"
    path.write_text(content)
    playbook = write_playbook(
        tmp_path / "bad.yml",
        [
            {"name": "read", "stellaops.deploy.release_manifest": {"path": str(path)}, "ignore_errors": True},
            # the action plugin checks its options as the module would
            {"name": "both", "stellaops.deploy.release_manifest": {"path": str(path), "directory": str(tmp_path)}, "ignore_errors": True},
            {
                "name": "align",
                "stellaops.deploy.channel_alignment": {"release": str(path), "targets": [str(ROOT / "deploy/compose/docker-compose.dev.yaml")]},
                "ignore_errors": True,
            },
        ],
    )
    result = run_playbook(playbook)
    validate = tool("validate-release-manifest", str(path))
    align = tool("check-channel-alignment", "--release", str(path), "--target", str(ROOT / "deploy/compose/docker-compose.dev.yaml"))
    message = result.result("read")["msg"]
    assert result.result("both")["msg"] == "parameters are mutually exclusive: path|directory"
    assert message.startswith(f"{path}: ") and fragment in message
    assert result.result("align")["msg"] == message
    assert validate.returncode == align.returncode == 1
    assert validate.stderr.strip() == f"validate-release-manifest: {message}"
    assert align.stderr.strip() == f"check-channel-alignment: {message}"
