# SPDX-License-Identifier: GPL-3.0-or-later
"""Re-check a backup set from its manifest: presence, size, sha256 and the archives' own readability.

Used before a restore (and by ``backup_verify``) so a set is proven, not assumed.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.postgres import PgRestore
from ..core.runner import ModuleLike
from .mongodb import check_gzip as mongo_check_gzip
from .mongodb import verify_dump as mongo_verify_dump
from .objects import check_bucket_copy as objects_check_bucket_copy
from .objects import check_local_copy as objects_check_local_copy
from .objects import read_listing as objects_read_listing
from .options import location_from_identity
from .postgres import verify_archive as pg_verify_archive
from .sets import STATUS_COMPLETE, SetInfo, iter_artifact_problems, latest_restore_point, list_sets, load_manifest


def resolve_set(set_path: Optional[str], backup_dir: Optional[str], set_id: Optional[str],
                kinds: Sequence[str] = (), artifact: Optional[str] = None, label: Optional[str] = None) -> str:
    """The set directory named by ``set_path``, or ``set_id`` in ``backup_dir``, or the newest restore point there.

    With ``kinds`` (and ``artifact``), the newest restore point holding an artifact of each kind: a newer
    set of other sources does not hide the last backup of the one to restore. With ``label``, the newest
    of that label (the backup an upgrade took before it changed anything).
    """
    if set_path:
        return set_path
    if not backup_dir:
        raise StellaOpsError("Name a backup set: set_path, or backup_dir (with set_id, or the newest complete set).")
    if set_id:
        for info in list_sets(backup_dir):
            if info.id == set_id:
                return info.path
        raise StellaOpsError(f"backup_dir {backup_dir} has no set {set_id!r}.")
    latest: Optional[SetInfo] = latest_restore_point(backup_dir, kinds, artifact, label)
    if latest is None:
        holding = f" holding {' and '.join(kinds)}{' artifact ' + repr(artifact) if artifact else ''}" if kinds else ""
        if label is not None:  # a backup taken now would hold the database as it is, not as it was before that upgrade
            raise StellaOpsError(f"backup_dir {backup_dir} has no complete backup set labelled {label!r}{holding}; nothing was restored.")
        raise StellaOpsError(f"backup_dir {backup_dir} has no complete backup set{holding}; take a backup first.")
    return latest.path


def verify_set(
    set_path: str,
    module: ModuleLike,
    *,
    bin_dir: Optional[str] = None,
    list_archives: bool = True,
    s3_credentials: Optional[dict[str, Any]] = None,
    kinds: Optional[list[str]] = None,
) -> dict[str, Any]:
    """Check every artifact of the set; returns status, per-artifact results and a list of problems."""
    manifest = load_manifest(set_path)
    problems: list[str] = []
    status = str(manifest.get("status"))
    if status != STATUS_COMPLETE or os.path.basename(set_path).endswith((".partial", ".failed")):
        problems.append(f"set status is {status!r}{' (' + str(manifest.get('error')) + ')' if manifest.get('error') else ''}, "
                        "not 'complete'")
    bad_files = dict(iter_artifact_problems(set_path, manifest))
    checked = []
    pg_restore: Optional[PgRestore] = None
    selected = [a for a in manifest["artifacts"] if not kinds or a["kind"] in kinds]
    if not selected:
        problems.append("the set holds no artifact, so there is nothing to restore")
    absent = sorted(set(kinds or ()) - {a["kind"] for a in selected})
    if selected and absent:
        problems.append(f"the set holds no {' and no '.join(absent)} artifact")
    for artifact in selected:
        name, kind = artifact["name"], artifact["kind"]
        checks: list[str] = []
        if artifact["verification"].get("status") != "passed":
            problems.append(f"artifact {name} did not pass verification when it was taken")
        if name in bad_files:
            problems.append(f"artifact {name} {bad_files[name]}")
            checked.append({"name": name, "kind": kind, "ok": False, "checks": checks})
            continue
        checks.append("present, size and sha256 equal the manifest")
        path = os.path.join(set_path, name)
        try:
            if kind == "postgresql" and list_archives:
                pg_restore = pg_restore or PgRestore(module, bin_dir)
                checks.append(pg_verify_archive(pg_restore, path)["summary"])
            elif kind == "mongodb" and list_archives:
                if name.endswith(".archive.gz"):
                    mongo_check_gzip(path)
                    checks.append("gzip archive read to the end")
                else:
                    found = mongo_verify_dump(path, {"collections": artifact["details"].get("collections", {})})
                    problems += [f"artifact {name}: {p}" for p in found]
                    checks.append("dump re-read, counts and checksums compared with the manifest")
            elif kind == "object_storage":
                listing = objects_read_listing(path)
                destination = listing.get("destination", {})
                if destination.get("type") == "local":
                    found = objects_check_local_copy(listing, os.path.join(set_path, str(destination.get("path"))))
                    problems += [f"artifact {name}: {p}" for p in found[:20]]
                    checks.append(f"{len(listing['objects'])} local object copies compared by sha256")
                elif s3_credentials is not None:
                    location = location_from_identity(destination, s3_credentials)
                    found = objects_check_bucket_copy(listing, location)
                    problems += [f"artifact {name}: {p}" for p in found[:20]]
                    checks.append(f"{len(listing['objects'])} bucket object copies compared by sha256")
        except StellaOpsError as err:
            problems.append(f"artifact {name}: {err}")
        checked.append({"name": name, "kind": kind, "ok": not any(p.startswith(f"artifact {name}") for p in problems),
                        "checks": checks})
    return {
        "set_path": set_path,
        "set_id": str(manifest.get("id")),
        "status": status,
        "verified": not problems,
        "problems": problems,
        "artifacts": checked,
    }
