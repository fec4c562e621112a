# SPDX-License-Identifier: GPL-3.0-or-later
"""The command-line tools: runbook interface, exit codes 0/1/2, JSON output, no tracebacks."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ROOT / "tools"
RELEASES = ROOT / "deploy" / "releases"
EDGE = str(RELEASES / "2025.10.0-edge.yaml")
STABLE = str(RELEASES / "2025.09.2-stable.yaml")
DEV = [str(ROOT / "deploy" / "helm" / "stellaops" / "values-dev.yaml"), str(ROOT / "deploy" / "compose" / "docker-compose.dev.yaml")]


def tool(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(TOOLS / name), *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def targets(paths: list[str]) -> list[str]:
    return [arg for path in paths for arg in ("--target", path)]


def test_runbook_invocation_is_aligned() -> None:
    proc = tool("check-channel-alignment", "--release", EDGE, *targets(DEV), "--ignore-repo", "nats")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "Release 2025.10.0-edge is aligned with 2 target(s)."


def test_misaligned_exits_1_and_lists_each_finding() -> None:
    proc = tool("check-channel-alignment", "--release", STABLE, *targets(DEV), "--ignore-repo", "nats")
    assert proc.returncode == 1
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2 * 10 + 1
    assert all(line.startswith("BLOCK ") and ": digest_mismatch: " in line for line in lines[:-1])


def test_strict_turns_notes_into_failures(tmp_path: Path) -> None:
    loose = tool("check-channel-alignment", "--release", EDGE, *targets(DEV))
    strict = tool("check-channel-alignment", "--release", EDGE, *targets(DEV), "--strict", "--json")
    assert loose.returncode == 0 and loose.stdout.count("note  ") == 2
    assert strict.returncode == 1
    data = json.loads(strict.stdout)
    assert data["aligned"] is False and data["summary"]["unknown_repository"] == 2
    assert {m["service"] for m in data["mismatches"]} == {"nats", "nats.image"}


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--release", "missing.yaml", "--target", DEV[0]], 2, "missing.yaml: release manifest not found."),
        (["--release", EDGE, "--target", "missing.yaml"], 2, "missing.yaml: alignment target not found."),
        (["--release", EDGE], 2, "the following arguments are required: --target"),
        (["--release", EDGE, "--target", DEV[0], "--channel", "stable"], 1, "release.channel is 'edge'; expected 'stable'."),
    ],
)
def test_alignment_bad_invocation_and_input(args: list[str], code: int, fragment: str) -> None:
    proc = tool("check-channel-alignment", *args)
    assert proc.returncode == code
    assert fragment in proc.stderr


def test_alignment_json_error_keeps_exit_code(tmp_path: Path) -> None:
    bad = tmp_path / "2025.10.0-edge.yaml"
    bad.write_text("release:\n  version: '2025.10.0'\n  channel: edge\n  components: [\n")
    proc = tool("check-channel-alignment", "--json", "--release", str(bad), "--target", DEV[0])
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert data["aligned"] is False and data["exit_code"] == 1
    assert data["error"].startswith(f"{bad}: YAML syntax error at line 5, column 1:")


def test_validate_good_and_bad_files(tmp_path: Path) -> None:
    ok = tool("validate-release-manifest", *sorted(str(p) for p in RELEASES.glob("*.yaml")), "--strict")
    assert ok.returncode == 0, ok.stderr
    assert len(ok.stdout.strip().splitlines()) == 4
    bad = tmp_path / "2025.10.0-stable.yaml"
    bad.write_text(f"release:\n  version: '2025.10.0'\n  channel: stable\n  components:\n    - name: a\n      image: x/a@sha256:{'0' * 63}\n")
    invalid = tool("validate-release-manifest", EDGE, str(bad))
    assert invalid.returncode == 1
    assert invalid.stderr.strip() == (
        f"validate-release-manifest: {bad}: release.components[0].image: image reference 'x/a@sha256:{'0' * 63}' "
        f"has a malformed digest 'sha256:{'0' * 63}'; expected sha256: followed by 64 lowercase hex digits."
    )
    unreadable = tool("validate-release-manifest", str(bad), str(tmp_path / "none.yaml"), "--json")
    assert unreadable.returncode == 2
    data = json.loads(unreadable.stdout)
    assert [m["exit_code"] for m in data["manifests"]] == [1, 2] and data["valid"] is False
    assert tool("validate-release-manifest").returncode == 2


def test_validate_json_carries_the_normalized_release() -> None:
    proc = tool("validate-release-manifest", EDGE, "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and data["valid"] is True
    release = data["manifests"][0]["release"]
    assert release["release_id"] == "2025.10.0-edge" and len(release["components"]) == 7


def test_tools_run_from_another_directory(tmp_path: Path) -> None:
    proc = tool("validate-release-manifest", EDGE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr


def test_export_schema_matches_published_files(tmp_path: Path) -> None:
    for strict, name in ((False, "release-manifest.schema.json"), (True, "release-manifest.strict.schema.json")):
        args = ["--strict"] if strict else []
        published = ROOT / "docs" / "schemas" / name
        assert tool("export-release-schema", *args, "--check", str(published)).returncode == 0
        assert json.loads(tool("export-release-schema", *args).stdout) == json.loads(published.read_text())
    stale = tmp_path / "old.json"
    stale.write_text("{}\n")
    assert tool("export-release-schema", "--check", str(stale)).returncode == 1
    out = tmp_path / "schema.json"
    assert tool("export-release-schema", "-o", str(out)).returncode == 0
    assert out.read_text() == (ROOT / "docs" / "schemas" / "release-manifest.schema.json").read_text()


# --------------------------------------------------------------------------- hostile files (issue 10)

ALIAS_BOMB = "".join(
    f"  {chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join([repr('lol')] * 9 if i == 0 else ['*' + chr(ord('a') + i - 1)] * 9)}]\n" for i in range(9)
)


def bounded_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A tool run with at most 1 GiB of address space and 60 s: an input that exhausts either fails the test only."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    proc = subprocess.run([sys.executable, str(TOOLS / name), *args], capture_output=True, text=True, check=False, timeout=60, preexec_fn=limit)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [
        (f"x:\n{ALIAS_BOMB}release:\n  version: *i\n  channel: edge\n  components: [{{name: a, image: x/a:1}}]\n", 1, "YAML an anchor &a at line 2"),
        ("release:\n  version: '2025.10.0'\n  channel: edge\n  components:\n  - " + "[" * 100_000 + "]" * 100_000 + "\n", 1, "YAML is nested more than 64"),
        ("release:\n  version: \"2025.10.0\\n\"\n  channel: edge\n  components: [{name: a, image: x/a:1}]\n", 1, "release.version is '2025.10.0\\n'"),
        ("release:\n  version: '2025.9.0'\n  channel: edge\n  components: [{name: a, image: x/a:1}]\n", 1, "but the file name says '2025.10.0'"),
    ],
    ids=["alias-bomb", "deep-nesting", "trailing-newline", "file-name-version"],
)
def test_validate_refuses_hostile_manifests_in_one_line(tmp_path: Path, content: str, code: int, fragment: str) -> None:
    path = tmp_path / "2025.10.0-edge.yaml"
    path.write_text(content)
    proc = bounded_tool("validate-release-manifest", str(path))
    assert proc.returncode == code, proc.stderr[-500:]
    assert proc.stderr.count("\n") == 1 and fragment in proc.stderr and proc.stderr.startswith(f"validate-release-manifest: {path}: ")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_validate_and_export_refuse_special_files_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "2025.10.0-edge.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    expected = "a FIFO" if kind == "fifo" else "a character device"
    proc = bounded_tool("validate-release-manifest", str(path))
    assert proc.returncode == 2 and proc.stderr == f"validate-release-manifest: {path}: release manifest is {expected}; expected a regular file.\n"
    proc = bounded_tool("export-release-schema", "--check", str(path))
    assert proc.returncode == 2 and proc.stderr == f"export-release-schema: {path}: schema file is {expected}; expected a regular file.\n"
