# SPDX-License-Identifier: GPL-3.0-or-later
"""Backup sets: a timestamped directory holding artifacts and a backup manifest.

Layout under ``backup_dir``::

    20251122T041700Z.partial/   while the run is under way (manifest status "running")
    20251122T041700Z/           a complete set: every artifact written, hashed and verified
    20251122T041700Z.failed/    a failed set, kept for diagnosis, never a restore point

Artifacts are written under a hidden temporary name (``.NAME.partial``) and renamed
only after the tool succeeded, so no partial file ever carries a final name; the
manifest is written with an atomic rename and its ``status`` is authoritative.

A *source* is what one artifact was taken of (a database, a bucket, a namespace's kind),
named by the artifact's kind and file name. Retention counts restore points per source, so
a run that backs up only object storage never removes the last PostgreSQL restore point.
A manifest's sha256s detect damage and accidents; whoever can rewrite the manifest can
rewrite them too (docs/backups.md).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shutil
import socket
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

from ..core.atomic import write_json
from ..core.errors import StellaOpsError
from ..core.safe_load import file_sha256, read_json

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "stellaops.deploy/backup-manifest"
MANIFEST_VERSION = 1
STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"
_SET_RE = re.compile(r"^(\d{8}T\d{6}(?:\d{6})?Z)(\.partial|\.failed)?$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_set_id(now: Optional[_dt.datetime] = None) -> str:
    moment = now or _dt.datetime.now(_dt.UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ")


def safe_name(text: str) -> str:
    """A file-name fragment from ``text`` (database names, buckets, namespaces)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "unnamed"
    return cleaned[:80]


def _remove(path: str) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


@dataclass
class Artifact:
    """One file of a set and how it was made and checked."""

    name: str
    kind: str
    source: dict[str, Any]
    tool: str
    tool_version: str
    started: str = ""
    finished: str = ""
    size: int = 0
    sha256: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=lambda: {"status": "pending", "checks": []})

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "source": self.source,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "started": self.started,
            "finished": self.finished,
            "size": self.size,
            "sha256": self.sha256,
            "details": self.details,
            "verification": self.verification,
        }


class BackupSet:
    """A set under construction: create it, add artifacts, then ``complete`` or ``fail`` it."""

    def __init__(self, backup_dir: str, set_id: str, label: str = "") -> None:
        self.backup_dir = backup_dir
        self.id = set_id
        self.label = label
        self.path = os.path.join(backup_dir, f"{set_id}.partial")
        self.started = utc_now()
        self.artifacts: list[Artifact] = []
        self.status = STATUS_RUNNING
        self.error: Optional[str] = None

    @classmethod
    def create(cls, backup_dir: str, label: str = "", set_id: Optional[str] = None) -> BackupSet:
        try:
            os.makedirs(backup_dir, mode=0o700, exist_ok=True)
        except OSError as err:
            raise StellaOpsError(f"Cannot create backup_dir {backup_dir}: {err.strerror or err}.") from err
        sid = set_id or new_set_id()
        while any(os.path.exists(os.path.join(backup_dir, f"{sid}{suffix}")) for suffix in ("", ".partial", ".failed")):
            sid = _bump(sid)
        bset = cls(backup_dir, sid, label)
        try:
            os.mkdir(bset.path, 0o700)
        except OSError as err:
            raise StellaOpsError(f"Cannot create backup set {bset.path}: {err.strerror or err}.") from err
        bset.save()
        return bset

    def temp_path(self, name: str) -> str:
        """Where an artifact is written before it is complete (hidden, never taken for the artifact)."""
        if not _NAME_RE.match(name):
            raise StellaOpsError(f"Artifact name {name!r} is not a plain file name.")
        return os.path.join(self.path, f".{name}.partial")

    def final_path(self, name: str) -> str:
        return os.path.join(self.path, name)

    def commit_artifact(self, artifact: Artifact) -> str:
        """Rename the artifact's temporary file (or directory) to its name, record its size and sha256."""
        tmp, final = self.temp_path(artifact.name), self.final_path(artifact.name)
        os.replace(tmp, final)
        if os.path.isfile(final):
            os.chmod(final, 0o600)
            artifact.size = os.path.getsize(final)
            artifact.sha256 = file_sha256(final, "backup artifact")[0]
        self.artifacts.append(artifact)
        self.save()
        return final

    def discard(self, name: str) -> None:
        _remove(self.temp_path(name))

    def manifest(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "id": self.id,
            "label": self.label,
            "host": socket.gethostname(),
            "status": self.status,
            "started": self.started,
            "finished": "" if self.status == STATUS_RUNNING else utc_now(),
            "error": self.error,
            "artifacts": [a.as_dict() for a in self.artifacts],
        }

    def save(self) -> None:
        write_json(os.path.join(self.path, MANIFEST_NAME), self.manifest())

    def complete(self) -> str:
        """Mark the set complete (only when it holds artifacts and every one passed verification) and give it its final name."""
        if not self.artifacts:
            return self.fail("the set holds no artifact")
        failed = [a.name for a in self.artifacts if a.verification.get("status") != "passed"]
        if failed:
            return self.fail(f"verification did not pass for {', '.join(failed)}")
        self.status = STATUS_COMPLETE
        self.save()
        final = os.path.join(self.backup_dir, self.id)
        os.replace(self.path, final)
        self.path = final
        return final

    def fail(self, error: str) -> str:
        """Mark the set failed, remove temporary files, rename it ``ID.failed``; never raises for a full disk."""
        self.status = STATUS_FAILED
        self.error = error
        for entry in os.listdir(self.path) if os.path.isdir(self.path) else []:
            if entry.endswith(".partial") or entry.endswith(".tmp"):
                _remove(os.path.join(self.path, entry))
        try:
            self.save()
        except StellaOpsError:
            pass  # no room for the manifest: the ".failed" name still says it
        final = os.path.join(self.backup_dir, f"{self.id}.failed")
        if os.path.isdir(self.path):
            os.replace(self.path, final)
            self.path = final
        return final


def _bump(set_id: str) -> str:
    moment = _dt.datetime.strptime(set_id[:15], "%Y%m%dT%H%M%S") + _dt.timedelta(seconds=1)
    return moment.strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True)
class SetInfo:
    id: str
    path: str
    status: str
    manifest: Optional[dict[str, Any]]

    @property
    def is_restore_point(self) -> bool:
        """A complete set holding at least one artifact."""
        return self.status == STATUS_COMPLETE and bool(self.sources)

    @property
    def sources(self) -> frozenset[tuple[str, str]]:
        """``(kind, artifact name)`` of every artifact of the set that passed verification when it was taken."""
        return frozenset(
            (a["kind"], a["name"]) for a in (self.manifest or {}).get("artifacts", []) if a["verification"].get("status") == "passed"
        )

    def holds(self, kind: str, name: Optional[str] = None) -> bool:
        return any(k == kind and (name is None or n == name) for k, n in self.sources)


_ARTIFACT_FIELDS: tuple[tuple[str, type, str], ...] = (
    ("name", str, "a file name"),
    ("kind", str, "a string"),
    ("source", dict, "a mapping"),
    ("size", int, "a whole number of bytes"),
    ("sha256", str, "a string"),
    ("details", dict, "a mapping"),
    ("verification", dict, "a mapping with a status"),
)


def _check_manifest(data: Any, path: str) -> dict[str, Any]:
    """``data`` when every field a verification or restore reads has the type it expects; one sentence otherwise."""
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise StellaOpsError(f"{path} field 'format' is not {MANIFEST_FORMAT!r}; expected a backup manifest.")
    for key in ("id", "status"):
        if not isinstance(data.get(key), str):
            raise StellaOpsError(f"{path} field {key!r} is {data.get(key)!r}; expected a string.")
    artifacts = data.get("artifacts")
    if not isinstance(artifacts, list):
        raise StellaOpsError(f"{path} field 'artifacts' is missing; expected a list of artifacts.")
    for index, artifact in enumerate(artifacts):
        if not isinstance(artifact, dict):
            raise StellaOpsError(f"{path} field 'artifacts[{index}]' is {type(artifact).__name__}; expected a mapping.")
        for key, kind, expected in _ARTIFACT_FIELDS:
            value = artifact.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise StellaOpsError(f"{path} field 'artifacts[{index}].{key}' is {value!r}; expected {expected}.")
        if not isinstance(artifact["verification"].get("status"), str):
            raise StellaOpsError(f"{path} field 'artifacts[{index}].verification.status' is missing; expected a string.")
    return data


def load_manifest(set_path: str) -> dict[str, Any]:
    """The manifest of the set at ``set_path``; fails with a clear sentence when absent or malformed."""
    path = os.path.join(set_path, MANIFEST_NAME)
    try:
        data = read_json(path, "backup manifest")
    except StellaOpsError as err:
        if err.details.get("missing"):
            raise StellaOpsError(f"Backup set {set_path} has no {MANIFEST_NAME}; expected a backup set directory.") from None
        raise
    return _check_manifest(data, path)


def list_sets(backup_dir: str) -> list[SetInfo]:
    """Every set under ``backup_dir``, oldest first; the status comes from the manifest and the directory name."""
    if not os.path.isdir(backup_dir):
        return []
    sets = []
    for entry in sorted(os.listdir(backup_dir)):
        match = _SET_RE.match(entry)
        path = os.path.join(backup_dir, entry)
        if not match or not os.path.isdir(path):
            continue
        try:
            manifest: Optional[dict[str, Any]] = load_manifest(path)
        except StellaOpsError:
            manifest = None
        suffix = match.group(2)
        if suffix == ".partial":
            status = STATUS_RUNNING
        elif suffix == ".failed" or manifest is None:
            status = STATUS_FAILED
        else:
            status = str(manifest.get("status"))
            if status != STATUS_COMPLETE:
                status = STATUS_FAILED
        sets.append(SetInfo(match.group(1), path, status, manifest))
    sets.sort(key=lambda s: s.id)
    return sets


def latest_restore_point(backup_dir: str, kinds: Sequence[str] = (), name: Optional[str] = None, label: Optional[str] = None) -> Optional[SetInfo]:
    """The newest complete set; with ``kinds`` (and ``name``), the newest one holding an artifact of each kind; with ``label``, of that label."""
    complete = [
        s for s in list_sets(backup_dir)
        if s.is_restore_point and all(s.holds(kind, name) for kind in kinds) and (label is None or (s.manifest or {}).get("label") == label)
    ]  # fmt: skip
    return complete[-1] if complete else None


def plan_retention(backup_dir: str, keep: int, new_sources: Optional[frozenset[tuple[str, str]]] = None) -> list[SetInfo]:
    """The sets of ``backup_dir`` that retention removes (see :func:`choose_doomed`)."""
    return choose_doomed(list_sets(backup_dir), keep, new_sources)


def choose_doomed(sets: list[SetInfo], keep: int, new_sources: Optional[frozenset[tuple[str, str]]] = None) -> list[SetInfo]:
    """Sets to delete: complete sets outside the newest ``keep`` restore points of every source they hold,
    and failed sets older than the newest complete set.

    A set stays while it is one of the newest ``keep`` of any of its sources, so the last restore point
    of a source is never removed, whatever other sources later runs back up. ``new_sources`` plans as if a
    set of those sources were completed now (check mode).
    """
    if keep < 1:
        raise StellaOpsError(f"Retention 'keep' is {keep}; expected at least 1 so one restore point remains.")
    complete = sorted((s for s in sets if s.is_restore_point), key=lambda s: s.id)
    seen: dict[tuple[str, str], int] = dict.fromkeys(new_sources or (), 1)  # restore points of each source, newest first
    doomed = []
    for info in reversed(complete):
        needed = False
        for source in info.sources:
            seen[source] = seen.get(source, 0) + 1
            needed = needed or seen[source] <= keep
        if not needed:
            doomed.append(info)
    if complete or new_sources:
        newest = "~" if new_sources else complete[-1].id  # "~" sorts after every set id
        doomed += [s for s in sets if s.status == STATUS_FAILED and s.id < newest]
    return sorted(doomed, key=lambda s: s.id)


def apply_retention(doomed: list[SetInfo]) -> list[str]:
    removed = []
    for info in doomed:
        _remove(info.path)
        removed.append(info.path)
    return removed


def iter_artifact_problems(set_path: str, manifest: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(artifact name, problem) for each artifact whose file is missing or whose size or sha256 differs."""
    for artifact in manifest["artifacts"]:
        name = artifact["name"]
        path = os.path.join(set_path, name)
        if not name or not _NAME_RE.match(name):
            yield name, "has no valid name in the manifest"
            continue
        if not os.path.exists(path):
            yield name, "is missing"
            continue
        if not os.path.isfile(path):
            # a directory is checked by its kind; anything else (a FIFO, a device) is never read
            if not os.path.isdir(path):
                yield name, "is not a regular file"
            continue
        size = os.path.getsize(path)
        if size != artifact.get("size"):
            yield name, f"has size {size}, the manifest says {artifact.get('size')}"
            continue
        digest = file_sha256(path, "backup artifact")[0]
        if digest != artifact.get("sha256"):
            yield name, f"has sha256 {digest}, the manifest says {artifact.get('sha256')}"
