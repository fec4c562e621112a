# SPDX-License-Identifier: GPL-3.0-or-later
"""One backup run: plan the artifacts, take them into a new set, complete or fail it, apply retention.

``plan`` is what check mode reports and what a real run executes, so both share
one code path. Any failure marks the set failed (renamed ``ID.failed``, temporary
files removed) before the error is raised again.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable, Optional

from ..core.errors import StellaOpsError
from ..core.redact import redact
from ..core.runner import ModuleLike
from .kubernetes import KIND as K8S_KIND
from .kubernetes import export_namespace as k8s_export_namespace
from .kubernetes import read_private_json as k8s_read_private_json
from .kubernetes import summary as k8s_summary
from .kubernetes import write_private_json as k8s_write_private_json
from .mongodb import KIND as MONGO_KIND
from .mongodb import Mongodump, mongo_error
from .mongodb import check_gzip as mongo_check_gzip
from .mongodb import collection_sums as mongo_collection_sums
from .mongodb import compare_sums as mongo_compare_sums
from .mongodb import connect as mongo_connect
from .mongodb import dump as mongo_dump
from .mongodb import find_mongodump as mongo_find_mongodump
from .mongodb import verify_dump as mongo_verify_dump
from .objects import KIND as OBJECTS_KIND
from .objects import mirror as objects_mirror
from .objects import write_listing as objects_write_listing
from .options import pg_connection, s3_location
from .postgres import PgTools
from .postgres import backup as pg_backup
from .postgres import plan as pg_plan
from .sets import Artifact, BackupSet, SetInfo, list_sets, safe_name, utc_now


def plan(params: dict[str, Any], module: ModuleLike) -> list[dict[str, Any]]:
    """The artifacts a run would take, in order; no secret in the result."""
    planned = []
    for item in params.get("postgres") or []:
        planned.append(pg_plan(pg_connection(item), _verify_restore(params, item)))
    for item in params.get("mongodb") or []:
        method = mongo_method(item, module)
        planned.append({
            "kind": MONGO_KIND,
            "name": mongo_artifact_name(item, method),
            "source": {"uri": redact(item["uri"]), "databases": item.get("databases") or "all"},
            "tool": "mongodump --archive --gzip" if method == "mongodump" else "pymongo",
            "verification": ["gzip stream read to the end"] if method == "mongodump" else ["dump re-read, counts and checksums"],
        })
    for item in params.get("object_storage") or []:
        src = s3_location(item)
        planned.append({
            "kind": OBJECTS_KIND,
            "name": f"object-storage-{safe_name(src.bucket)}{'-' + safe_name(src.prefix) if src.prefix else ''}.json",
            "source": src.identity(),
            "tool": "S3 API",
            "destination": item.get("destination") or "local",
            "verification": ["sha256 of every copied object read back"],
        })
    for item in params.get("kubernetes") or []:
        for kind in item.get("kinds") or ["ConfigMap", "Secret"]:
            planned.append({
                "kind": K8S_KIND,
                "name": f"kubernetes-{safe_name(item['namespace'])}-{kind.lower()}s.json",
                "source": {"namespace": item["namespace"], "kind": kind, "context": item.get("context") or ""},
                "tool": "kubernetes API",
                "verification": ["file re-read, object count"],
            })
    names = [p["name"] for p in planned]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise StellaOpsError(f"Two backup sources would write the same artifact {duplicates[0]!r}; give them different names.")
    return planned


def mongo_method(item: dict[str, Any], module: ModuleLike) -> str:
    method = str(item.get("method") or "auto")
    if method == "auto":
        return "mongodump" if mongo_find_mongodump(module) else "pymongo"
    return method


def mongo_artifact_name(item: dict[str, Any], method: str) -> str:
    suffix = "archive.gz" if method == "mongodump" else "tar.gz"
    return f"mongodb-{safe_name(str(item.get('name') or 'mongodb'))}.{suffix}"


def _verify_restore(params: dict[str, Any], item: dict[str, Any]) -> bool:
    own = item.get("verify_restore")
    return bool(params.get("verify_restore")) if own is None else bool(own)


def recent_restore_point(backup_dir: str, planned: list[dict[str, Any]], within: int, now: float) -> Optional[SetInfo]:
    """The newest complete set taken less than ``within`` seconds ago with the same artifacts, if any."""
    if within <= 0:
        return None
    complete = [s for s in list_sets(backup_dir) if s.is_restore_point and s.manifest]
    if not complete:
        return None
    newest = complete[-1]
    manifest = newest.manifest or {}
    age = now - os.path.getmtime(os.path.join(newest.path, "manifest.json"))
    names = sorted(str(a.get("name")) for a in manifest.get("artifacts", []))
    return newest if age < within and names == sorted(p["name"] for p in planned) else None


class BackupRun:
    """Takes the planned artifacts into a new set; ``kube_api`` builds a CoreV1Api for a kubernetes item."""

    def __init__(self, params: dict[str, Any], module: ModuleLike,
                 kube_api: Optional[Callable[[dict[str, Any]], Any]] = None) -> None:
        self.params = params
        self.module = module
        self.kube_api = kube_api
        self.pg_tools: Optional[PgTools] = None

    def tools(self) -> PgTools:
        if self.pg_tools is None:
            self.pg_tools = PgTools(self.module, self.params.get("postgres_bin_dir"))
        return self.pg_tools

    def run(self, bset: BackupSet) -> None:
        try:
            for item in self.params.get("postgres") or []:
                pg_backup(bset, pg_connection(item), self.tools(), verify_restore=_verify_restore(self.params, item),
                          maintenance_db=str(item.get("maintenance_db") or "postgres"),
                          restore_jobs=int(self.params.get("restore_jobs") or 1))
            for item in self.params.get("mongodb") or []:
                self.mongodb(bset, item)
            for item in self.params.get("object_storage") or []:
                self.object_storage(bset, item)
            for item in self.params.get("kubernetes") or []:
                self.kubernetes(bset, item)
        except OSError as err:
            message = f"Backup failed: cannot write to {bset.path}: {err.strerror or err}"
            path = bset.fail(message)
            raise StellaOpsError(f"{message}. Backup set {path} is marked failed; it is not a restore point.") from err
        except StellaOpsError as err:
            path = bset.fail(str(err))
            raise StellaOpsError(f"{str(err).rstrip('.')}. Backup set {path} is marked failed; it is not a restore point.",
                                 **err.details) from err

    def mongodb(self, bset: BackupSet, item: dict[str, Any]) -> None:
        method = mongo_method(item, self.module)
        name = mongo_artifact_name(item, method)
        tmp = bset.temp_path(name)
        where = redact(str(item["uri"]))
        artifact = Artifact(name=name, kind=MONGO_KIND, source={"uri": where, "databases": item.get("databases") or "all"},
                            tool=method, tool_version="", started=utc_now())
        try:
            if method == "mongodump":
                runner = Mongodump(self.module)
                artifact.tool_version = runner.version
                runner.dump(str(item["uri"]), tmp, item.get("password"))
                raw = mongo_check_gzip(tmp)
                artifact.verification = {"status": "passed", "checks": [f"gzip archive read to the end ({raw} bytes)"]}
            else:
                import pymongo  # noqa: PLC0415 - only for its version; connect() reports a missing package

                artifact.tool_version = pymongo.version
                client = mongo_connect(str(item["uri"]), item.get("username"), item.get("password"))
                try:
                    summary = mongo_dump(client, tmp, item.get("databases") or None)
                    problems = mongo_verify_dump(tmp, summary)
                    targets = [tuple(k.split(".", 1)) for k in summary["collections"]]
                    live = mongo_collection_sums(client, [(t[0], t[1]) for t in targets])
                    problems += mongo_compare_sums(summary["collections"], live)
                finally:
                    client.close()
                if problems:
                    raise StellaOpsError(f"MongoDB dump of {where} does not match the server: {'; '.join(problems[:5])}.")
                artifact.details = {"collections": summary["collections"]}
                artifact.verification = {"status": "passed", "checks": [
                    f"dump re-read: {len(summary['collections'])} collections, counts and checksums equal the server"]}
            artifact.finished = utc_now()
        except StellaOpsError:
            bset.discard(name)
            raise
        except Exception as err:  # noqa: BLE001 - pymongo errors become one sentence
            bset.discard(name)
            if isinstance(err, OSError):
                raise
            raise mongo_error(err, where) from err
        bset.commit_artifact(artifact)

    def object_storage(self, bset: BackupSet, item: dict[str, Any]) -> None:
        src = s3_location(item)
        name = plan({"object_storage": [item]}, self.module)[0]["name"]
        artifact = Artifact(name=name, kind=OBJECTS_KIND, source=src.identity(), tool="S3 API",
                            tool_version=_boto_version(), started=utc_now())
        copy_dir = name[: -len(".json")] + ".objects"
        tmp_dir = bset.temp_path(copy_dir)
        try:
            if (item.get("destination") or "local") == "local":
                os.mkdir(tmp_dir, 0o700)
                result = objects_mirror(src, local_dir=tmp_dir)
                destination: dict[str, Any] = {"type": "local", "path": copy_dir}
            else:
                dest_bucket = item.get("destination_bucket")
                if not dest_bucket:
                    raise StellaOpsError(f"object_storage item for bucket {src.bucket!r} needs destination_bucket "
                                         "when destination is 'bucket'.")
                prefix = item.get("destination_prefix")
                prefix = f"{src.bucket}/{bset.id}/" if prefix is None else prefix
                dest = s3_location(item, bucket=str(dest_bucket), prefix=str(prefix))
                result = objects_mirror(src, dest=dest, spool_dir=bset.path)
                destination = dest.identity()
            objects_write_listing(bset.temp_path(name), src, destination, result)
            artifact.finished = utc_now()
            artifact.details = {"objects": len(result.objects), "bytes": result.total_size, "destination": destination}
            artifact.verification = {"status": "passed", "checks": [
                f"{len(result.objects)} objects copied and read back, every sha256 equal to the source"]}
        except BaseException:
            bset.discard(name)
            if os.path.isdir(tmp_dir):
                shutil.rmtree(tmp_dir)
            raise
        if os.path.isdir(tmp_dir):
            os.replace(tmp_dir, bset.final_path(copy_dir))
        bset.commit_artifact(artifact)

    def kubernetes(self, bset: BackupSet, item: dict[str, Any]) -> None:
        if self.kube_api is None:
            raise StellaOpsError("Kubernetes configuration backup needs the 'kubernetes' Python package on the host.")
        api = self.kube_api(item)
        namespace = str(item["namespace"])
        for kind in item.get("kinds") or ["ConfigMap", "Secret"]:
            started = utc_now()
            exported = k8s_export_namespace(api, namespace, [kind])
            name = f"kubernetes-{safe_name(namespace)}-{kind.lower()}s.json"
            k8s_write_private_json(bset.temp_path(name), exported[kind])
            summary = k8s_summary(exported)[kind]
            artifact = Artifact(name=name, kind=K8S_KIND, source={"namespace": namespace, "kind": kind},
                                tool="kubernetes API", tool_version=_kube_version(), started=started,
                                finished=utc_now(), details=summary)
            reread = k8s_read_private_json(bset.temp_path(name))
            status = "passed" if len(reread) == summary["count"] else "failed"
            artifact.verification = {"status": status, "checks": [f"file re-read: {len(reread)} {kind} objects"]}
            bset.commit_artifact(artifact)


def _boto_version() -> str:
    try:
        import boto3  # noqa: PLC0415

        return str(boto3.__version__)
    except ImportError:
        return "unknown"


def _kube_version() -> str:
    try:
        import kubernetes  # noqa: PLC0415

        return str(kubernetes.__version__)
    except ImportError:
        return "unknown"
