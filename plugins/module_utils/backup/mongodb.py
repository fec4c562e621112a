# SPDX-License-Identifier: GPL-3.0-or-later
"""MongoDB artifacts of a backup set: ``mongodump --archive --gzip`` or a pymongo dump.

The pymongo dump is a gzip-compressed tar archive::

    dump.json                       format, databases, collections, counts, checksums
    <db>/<collection>.bson          the raw BSON documents, concatenated (byte-exact)
    <db>/<collection>.metadata.json collection options and indexes (MongoDB extended JSON)

A collection's checksum is the sha256 of its documents' sorted sha256 digests, so
it does not depend on the order in which the server returns them. ``pymongo`` is
imported on use; the module works on hosts that only have ``mongodump``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import tempfile
from typing import Any, Iterable, Iterator, Optional

from ..core.errors import StellaOpsError
from ..core.runner import ModuleLike, ToolRunner, tool_dirs

KIND = "mongodb"
DUMP_FORMAT = "stellaops.deploy/mongodb-dump"
SKIP_DATABASES = frozenset({"admin", "local", "config"})
_BATCH = 1000


def _bson() -> Any:
    try:
        import bson  # noqa: PLC0415 - optional dependency, imported on use
    except ImportError as err:
        raise StellaOpsError("The Python package 'pymongo' is required for a MongoDB backup without mongodump.") from err
    return bson


def connect(uri: str, username: Optional[str] = None, password: Optional[str] = None, timeout_ms: int = 5000) -> Any:
    """A pymongo client; the password is passed apart from the URI so it never lands in a message."""
    try:
        from pymongo import MongoClient  # noqa: PLC0415
    except ImportError as err:
        raise StellaOpsError("The Python package 'pymongo' is required for a MongoDB backup without mongodump.") from err
    kwargs: dict[str, Any] = {"serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms}
    if username:
        kwargs["username"] = username
    if password:
        kwargs["password"] = password
    kwargs["document_class"] = _bson().raw_bson.RawBSONDocument
    return MongoClient(uri, **kwargs)


def _checksum(digests: list[bytes]) -> str:
    outer = hashlib.sha256()
    for item in sorted(digests):
        outer.update(item)
    return outer.hexdigest()


def mongo_error(err: BaseException, where: str) -> StellaOpsError:
    if isinstance(err, StellaOpsError):
        return err
    name = type(err).__name__
    text = str(err).split(", Timeout:", maxsplit=1)[0].split(" (configured timeouts", maxsplit=1)[0]
    if name == "ServerSelectionTimeoutError":
        return StellaOpsError(f"Cannot reach the MongoDB server at {where}: {text}.")
    if name == "OperationFailure" and getattr(err, "code", None) in (13, 18):
        return StellaOpsError(f"The MongoDB server at {where} refused the credentials or the permission: {text}.")
    return StellaOpsError(f"MongoDB request to {where} failed ({name}): {text}.")


def list_targets(client: Any, databases: Optional[Iterable[str]] = None) -> list[tuple[str, str]]:
    """(database, collection) pairs to dump: every user database unless ``databases`` is given; views excluded."""
    names = list(databases) if databases else [d for d in client.list_database_names() if d not in SKIP_DATABASES]
    targets = []
    for db_name in sorted(names):
        for info in client[db_name].list_collections():
            name, ctype = str(info["name"]), str(info.get("type", "collection"))
            if ctype == "collection" and not name.startswith("system."):
                targets.append((db_name, name))
    return sorted(targets)


def _plain(doc: Any) -> dict[str, Any]:
    """A plain dict from a raw BSON document or a SON."""
    raw = getattr(doc, "raw", None)
    return dict(_bson().decode(raw)) if raw is not None else dict(doc)


def _collection_options(client: Any, db_name: str, coll_name: str) -> dict[str, Any]:
    for info in client[db_name].list_collections(filter={"name": coll_name}):
        return dict(_plain(info).get("options", {}))
    return {}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def dump(client: Any, path: str, databases: Optional[Iterable[str]] = None) -> dict[str, Any]:
    """Write a pymongo dump to ``path``; return the summary stored in ``dump.json`` and in the manifest."""
    bson = _bson()
    summary: dict[str, Any] = {"format": DUMP_FORMAT, "collections": {}}
    with gzip.open(path, "wb", compresslevel=6) as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        for db_name, coll_name in list_targets(client, databases):
            coll = client[db_name][coll_name]
            digests: list[bytes] = []
            with tempfile.TemporaryFile() as spool:
                for doc in coll.find({}, sort=[("_id", 1)]):
                    raw = doc.raw
                    spool.write(raw)
                    digests.append(hashlib.sha256(raw).digest())
                size = spool.tell()
                spool.seek(0)
                info = tarfile.TarInfo(f"{db_name}/{coll_name}.bson")
                info.size = size
                info.mode = 0o600
                tar.addfile(info, spool)
            indexes = [_plain(ix) for ix in coll.list_indexes()]
            metadata = {"options": _collection_options(client, db_name, coll_name), "indexes": indexes}
            _add_bytes(tar, f"{db_name}/{coll_name}.metadata.json",
                       bson.json_util.dumps(metadata, json_options=bson.json_util.CANONICAL_JSON_OPTIONS).encode())
            summary["collections"][f"{db_name}.{coll_name}"] = {
                "count": len(digests),
                "checksum": _checksum(digests),
                "indexes": sorted(str(ix["name"]) for ix in indexes),
            }
        _add_bytes(tar, "dump.json", json.dumps(summary, indent=2, sort_keys=True).encode())
    return summary


def read_dump(path: str) -> Iterator[tuple[str, str, dict[str, Any], list[bytes]]]:
    """(database, collection, metadata, raw documents) for each collection of a pymongo dump."""
    bson = _bson()
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            for name in sorted(members):
                if not name.endswith(".bson"):
                    continue
                db_name, _slash, file_name = name.partition("/")
                coll_name = file_name[: -len(".bson")]
                data = _extract(tar, members[name])
                meta_member = members.get(f"{db_name}/{coll_name}.metadata.json")
                metadata = bson.json_util.loads(_extract(tar, meta_member).decode()) if meta_member else {}
                yield db_name, coll_name, metadata, list(_split_bson(data))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise StellaOpsError(f"Cannot read the MongoDB dump {path}: {err}; expected a gzip tar written by the backup.") from err


def read_summary(path: str) -> dict[str, Any]:
    try:
        with tarfile.open(path, mode="r:gz") as tar:
            return dict(json.loads(_extract(tar, tar.getmember("dump.json"))))
    except (KeyError, ValueError, tarfile.TarError, OSError, EOFError) as err:
        raise StellaOpsError(f"Cannot read dump.json from the MongoDB dump {path}: {err}.") from err


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    if handle is None:
        raise StellaOpsError(f"MongoDB dump member {member.name} is not a file.")
    return handle.read()


def _split_bson(data: bytes) -> Iterator[bytes]:
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise StellaOpsError("A BSON file in the MongoDB dump is truncated.")
        length = int.from_bytes(data[offset:offset + 4], "little")
        if length < 5 or offset + length > len(data):
            raise StellaOpsError("A BSON file in the MongoDB dump is truncated.")
        yield data[offset:offset + length]
        offset += length


def verify_dump(path: str, expected: dict[str, Any]) -> list[str]:
    """Re-read the dump and compare each collection's count and checksum with ``expected`` (the summary)."""
    problems = []
    seen = set()
    for db_name, coll_name, _meta, docs in read_dump(path):
        key = f"{db_name}.{coll_name}"
        seen.add(key)
        want = expected.get("collections", {}).get(key)
        got_sum = _checksum([hashlib.sha256(d).digest() for d in docs])
        if want is None:
            problems.append(f"collection {key} is not in dump.json")
        elif want["count"] != len(docs) or want["checksum"] != got_sum:
            problems.append(f"collection {key} has {len(docs)} documents/{got_sum[:12]}, "
                            f"expected {want['count']}/{want['checksum'][:12]}")
    for key in sorted(set(expected.get("collections", {})) - seen):
        problems.append(f"collection {key} is missing from the dump")
    return problems


def collection_sums(client: Any, targets: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """Count and checksum of live collections, to compare with a dump."""
    sums = {}
    for db_name, coll_name in targets:
        digests = [hashlib.sha256(doc.raw).digest() for doc in client[db_name][coll_name].find({})]
        sums[f"{db_name}.{coll_name}"] = {"count": len(digests), "checksum": _checksum(digests)}
    return sums


def compare_sums(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    problems = []
    for key in sorted(expected):
        want, got = expected[key], actual.get(key)
        if got is None:
            problems.append(f"collection {key} is missing")
        elif want["count"] != got["count"]:
            problems.append(f"collection {key} has {got['count']} documents, expected {want['count']}")
        elif want["checksum"] != got["checksum"]:
            problems.append(f"collection {key} has checksum {got['checksum'][:12]}, expected {want['checksum'][:12]}")
    return problems


def restore(client: Any, path: str, *, drop: bool = True) -> dict[str, Any]:
    """Load a pymongo dump (the mirror of ``dump``) and prove every collection identical to the dump."""
    bson = _bson()
    summary = read_summary(path)
    restored = []
    for db_name, coll_name, metadata, docs in read_dump(path):
        database = client[db_name]
        if drop:
            database.drop_collection(coll_name)
        options = metadata.get("options") or {}
        if coll_name not in database.list_collection_names():
            database.command(bson.son.SON([("create", coll_name), *options.items()]))
        coll = database[coll_name]
        for start in range(0, len(docs), _BATCH):
            coll.insert_many([bson.raw_bson.RawBSONDocument(d) for d in docs[start:start + _BATCH]], ordered=True)
        specs = []
        for index in metadata.get("indexes", []):
            if index.get("name") == "_id_":
                continue
            spec = {k: v for k, v in index.items() if k not in ("v", "ns")}
            specs.append(spec)
        if specs:
            database.command(bson.son.SON([("createIndexes", coll_name), ("indexes", specs)]))
        restored.append((db_name, coll_name))
    problems = compare_sums(summary["collections"], collection_sums(client, restored))
    if problems:
        raise StellaOpsError(f"MongoDB restore from {path} differs from the dump: {'; '.join(problems[:5])}.")
    return {"collections": len(restored), "documents": sum(v["count"] for v in summary["collections"].values())}


class Mongodump(ToolRunner):
    """``mongodump --archive --gzip``; the URI and password go in a 0600 ``--config`` file, never argv."""

    binary = "mongodump"

    def dump(self, uri: str, path: str, password: Optional[str] = None) -> None:
        config = write_tool_config(os.path.dirname(path), uri, password)
        try:
            rc, out, err = self.run(dump_args(path, config), check=False)
        finally:
            os.unlink(config)
        if rc != 0:
            lines = [line for line in (err or out).splitlines() if line.strip()]
            raise StellaOpsError(f"mongodump failed: {lines[-1] if lines else f'exit code {rc}'}", rc=rc)


class Mongorestore(ToolRunner):
    binary = "mongorestore"

    def restore(self, uri: str, path: str, password: Optional[str] = None) -> None:
        config = write_tool_config(os.path.dirname(path) or ".", uri, password)
        try:
            rc, out, err = self.run([f"--config={config}", f"--archive={path}", "--gzip", "--drop"], check=False)
        finally:
            os.unlink(config)
        if rc != 0:
            lines = [line for line in (err or out).splitlines() if line.strip()]
            raise StellaOpsError(f"mongorestore failed: {lines[-1] if lines else f'exit code {rc}'}", rc=rc)


def check_gzip(path: str) -> int:
    """Read a ``mongodump --archive --gzip`` file to its end; a truncated or corrupt file fails. Returns its raw size."""
    size = 0
    try:
        with gzip.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                size += len(chunk)
    except (OSError, EOFError) as err:
        raise StellaOpsError(f"The MongoDB archive {path} is not a complete gzip stream: {err}.") from err
    return size


def dump_args(path: str, config: str) -> list[str]:
    return [f"--config={config}", f"--archive={path}", "--gzip"]


def write_tool_config(directory: str, uri: str, password: Optional[str]) -> str:
    """A 0600 YAML config for the MongoDB database tools holding the URI and password."""
    fd, path = tempfile.mkstemp(prefix=".mongo-tools-", suffix=".yaml", dir=directory)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(f"uri: {json.dumps(uri)}\n")
        if password:
            handle.write(f"password: {json.dumps(password)}\n")
    os.chmod(path, 0o600)
    return path


def find_mongodump(module: ModuleLike) -> Optional[str]:
    return module.get_bin_path("mongodump", required=False, opt_dirs=tool_dirs())
