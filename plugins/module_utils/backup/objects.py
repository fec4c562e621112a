# SPDX-License-Identifier: GPL-3.0-or-later
"""Object-storage artifacts of a backup set: a verified mirror of a bucket or prefix.

Every object is read once from the source (hashed while it streams), written to the
destination (a directory inside the backup set, or another bucket), and then read
back from the destination and hashed again; a size or sha256 difference fails the
backup. The artifact in the set is the listing (key, size, sha256 of every object),
so a restore, the reverse copy, proves each object identical to the listing.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import tempfile
from dataclasses import dataclass
from typing import Any, Optional

from ..core.errors import StellaOpsError
from ..core.s3 import S3Location, check_bucket, iter_objects, make_client, stream_sha256, translate_error
from ..core.safe_load import file_sha256, read_json

KIND = "object_storage"
LISTING_FORMAT = "stellaops.deploy/object-listing"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class MirrorResult:
    objects: list[dict[str, Any]]

    @property
    def total_size(self) -> int:
        return sum(int(o["size"]) for o in self.objects)


def relative_key(key: str, prefix: str) -> str:
    """``key`` without ``prefix``; refuses keys that would escape a local directory."""
    rel = key[len(prefix):] if prefix and key.startswith(prefix) else key
    rel = rel.lstrip("/")
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        raise StellaOpsError(f"Object key {key!r} cannot be stored as a file; expected keys without '.', '..' or '//' parts.")
    return rel


def _join_key(prefix: str, rel: str) -> str:
    return posixpath.join(prefix, rel) if prefix else rel


def _copy_to_file(client: Any, location: S3Location, key: str, path: str) -> tuple[str, int]:
    """Download one object into ``path`` (through a temporary name), hashing as it streams."""
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.partial"
    digest, size = hashlib.sha256(), 0
    try:
        body = client.get_object(Bucket=location.bucket, Key=key)["Body"]
        with open(tmp, "wb") as handle:
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                handle.write(chunk)
        os.replace(tmp, path)
    except OSError as err:
        _unlink(tmp)
        raise StellaOpsError(f"Cannot write object {key!r} to {path}: {err.strerror or err}.") from err
    except Exception as err:  # noqa: BLE001 - botocore errors become one sentence
        _unlink(tmp)
        raise translate_error(err, location, key) from err
    return digest.hexdigest(), size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _copy_to_bucket(src_client: Any, src: S3Location, key: str, dst_client: Any, dst: S3Location, dst_key: str,
                    spool_dir: Optional[str]) -> tuple[str, int]:
    with tempfile.TemporaryDirectory(dir=spool_dir) as tmpdir:
        path = os.path.join(tmpdir, "object")
        digest, size = _copy_to_file(src_client, src, key, path)
        try:
            with open(path, "rb") as handle:
                dst_client.put_object(Bucket=dst.bucket, Key=dst_key, Body=handle)
        except Exception as err:  # noqa: BLE001
            raise translate_error(err, dst, dst_key) from err
    return digest, size


def mirror(
    src: S3Location,
    *,
    local_dir: Optional[str] = None,
    dest: Optional[S3Location] = None,
    spool_dir: Optional[str] = None,
) -> MirrorResult:
    """Copy every object under ``src`` to ``local_dir`` or ``dest`` and verify each copy by its sha256."""
    if (local_dir is None) == (dest is None):
        raise StellaOpsError("An object-storage backup needs exactly one destination: a local directory or a bucket.")
    src_client = make_client(src)
    check_bucket(src_client, src)
    dst_client = make_client(dest) if dest is not None else None
    if dest is not None:
        check_bucket(dst_client, dest)
    objects = []
    try:
        listing = list(iter_objects(src_client, src.bucket, src.prefix))
    except Exception as err:  # noqa: BLE001
        raise translate_error(err, src) from err
    for info in listing:
        rel = relative_key(info.key, src.prefix)
        if local_dir is not None:
            path = os.path.join(local_dir, *rel.split("/"))
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            digest, size = _copy_to_file(src_client, src, info.key, path)
            check_digest, check_size = file_sha256(path, "backup artifact")
        elif dest is not None:
            dst_key = _join_key(dest.prefix, rel)
            digest, size = _copy_to_bucket(src_client, src, info.key, dst_client, dest, dst_key, spool_dir)
            try:
                check_digest, check_size = stream_sha256(dst_client, dest.bucket, dst_key)
            except Exception as err:  # noqa: BLE001
                raise translate_error(err, dest, dst_key) from err
        if size != info.size:
            raise StellaOpsError(f"Object {info.key!r} in {src.describe()} read {size} bytes, the listing says {info.size}.")
        if (check_digest, check_size) != (digest, size):
            raise StellaOpsError(f"The copy of object {info.key!r} does not match the source (sha256 or size differs).")
        objects.append({"key": rel, "size": size, "sha256": digest})
    return MirrorResult(objects)


def write_listing(path: str, src: S3Location, destination: dict[str, Any], result: MirrorResult) -> None:
    data = {
        "format": LISTING_FORMAT,
        "source": src.identity(),
        "destination": destination,
        "objects": result.objects,
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")


def read_listing(path: str) -> dict[str, Any]:
    data = read_json(path, "object listing")
    if not isinstance(data, dict) or data.get("format") != LISTING_FORMAT:
        raise StellaOpsError(f"{path} field 'format' is not {LISTING_FORMAT!r}; expected an object listing.")
    return data


def check_local_copy(listing: dict[str, Any], local_dir: str) -> list[str]:
    """Problems with the objects kept in a local directory (missing, size or sha256 differs)."""
    problems = []
    for obj in listing["objects"]:
        path = os.path.join(local_dir, *str(obj["key"]).split("/"))
        if not os.path.isfile(path):
            problems.append(f"object {obj['key']} is missing")
        elif os.path.getsize(path) != obj["size"] or file_sha256(path, "backup artifact")[0] != obj["sha256"]:
            problems.append(f"object {obj['key']} differs from the listing")
    return problems


def check_bucket_copy(listing: dict[str, Any], location: S3Location) -> list[str]:
    client = make_client(location)
    problems = []
    for obj in listing["objects"]:
        key = _join_key(location.prefix, str(obj["key"]))
        try:
            digest, size = stream_sha256(client, location.bucket, key)
        except Exception as err:  # noqa: BLE001
            problems.append(str(translate_error(err, location, key)))
            continue
        if (digest, size) != (obj["sha256"], obj["size"]):
            problems.append(f"object {key} differs from the listing")
    return problems


def restore(
    listing: dict[str, Any],
    target: S3Location,
    *,
    local_dir: Optional[str] = None,
    backup: Optional[S3Location] = None,
) -> dict[str, Any]:
    """Copy every listed object back into ``target`` from ``local_dir`` or ``backup``; verify each by sha256."""
    client = make_client(target)
    check_bucket(client, target)
    backup_client = make_client(backup) if backup is not None else None
    restored = 0
    for obj in listing["objects"]:
        rel = str(obj["key"])
        relative_key(rel, "")
        key = _join_key(target.prefix, rel)
        try:
            if local_dir is not None:
                with open(os.path.join(local_dir, *rel.split("/")), "rb") as handle:
                    client.put_object(Bucket=target.bucket, Key=key, Body=handle)
            elif backup is not None:
                with tempfile.TemporaryDirectory() as tmpdir:
                    path = os.path.join(tmpdir, "object")
                    _copy_to_file(backup_client, backup, _join_key(backup.prefix, rel), path)
                    with open(path, "rb") as handle:
                        client.put_object(Bucket=target.bucket, Key=key, Body=handle)
            digest, size = stream_sha256(client, target.bucket, key)
        except StellaOpsError:
            raise
        except OSError as err:
            raise StellaOpsError(f"Cannot read the backup copy of object {rel!r}: {err.strerror or err}.") from err
        except Exception as err:  # noqa: BLE001
            raise translate_error(err, target, key) from err
        if (digest, size) != (obj["sha256"], obj["size"]):
            raise StellaOpsError(f"Restored object {key!r} in {target.describe()} differs from the backup listing.")
        restored += 1
    return {"objects": restored, "target": target.identity()}
