# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence stores (local directory, S3-compatible bucket), partitions and parallel streamed hashing.

A store lists its bundles as :class:`Bundle` entries (key relative to the store
root, size, identity) and hashes one bundle by streaming it in 1 MiB pieces.
:func:`hash_bundles` reads many bundles at once on a thread pool (SHA-256 and
file or socket reads release the GIL), keeping only a bounded number of batches
in flight, so memory depends on the number of keys, never on bundle sizes.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Protocol

from ..core.errors import StellaOpsError
from ..core.s3 import S3Location, check_bucket, iter_objects, make_client, stream_sha256, translate_error
from ..core.safe_load import CHUNK_SIZE, display_name, file_sha256

DEFAULT_WORKERS = 8
ROOT_PARTITION = "."


@dataclass(frozen=True)
class Bundle:
    """One listed bundle: key relative to the store root, size, and an identity that changes with its content."""

    key: str
    size: int
    identity: str


@dataclass(frozen=True)
class HashResult:
    """A hashed bundle, or the error that kept it from being read (``sha256`` empty then)."""

    key: str
    size: int
    identity: str
    sha256: str
    error: str = ""


class EvidenceStore(Protocol):
    def identity(self) -> dict[str, str]: ...

    def describe(self) -> str: ...

    def check(self) -> None: ...

    def list(self) -> Iterator[Bundle]: ...

    def sha256(self, key: str) -> tuple[str, int]: ...


def partition_of(key: str, depth: int) -> str:
    """Partition of ``key``: its first ``depth`` directory segments (never the file name), ``.`` at the top."""
    if depth <= 0:
        return ROOT_PARTITION
    parts = key.split("/")[:-1]
    return "/".join(parts[:depth]) or ROOT_PARTITION


class DirectoryStore:
    """Bundles are the regular files under ``path``; keys use ``/``.

    A symbolic link counts as the file it names only while that file is inside the store: one that
    leaves the store, or names anything but a regular file, is listed as a bundle that cannot be read,
    so a baseline or a verification that meets it fails and says which key. Subdirectories reached
    through a link are not entered. A name that is not UTF-8 stops the listing with one sentence.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(os.path.expanduser(path))

    def identity(self) -> dict[str, str]:
        return {"type": "directory", "path": self.path}

    def describe(self) -> str:
        return f"directory {self.path}"

    def check(self) -> None:
        if not os.path.isdir(self.path):
            raise StellaOpsError(f"The evidence directory {self.path} does not exist or is not a directory; check store.path.")

    def list(self) -> Iterator[Bundle]:
        """Every file below the directory, depth first in name order (keys are sorted again by the callers)."""
        self.check()
        stack = [("", self.path)]
        while stack:
            prefix, directory = stack.pop()
            try:
                with os.scandir(directory) as listing:
                    entries = sorted(listing, key=lambda e: e.name, reverse=True)
            except OSError as exc:
                self._walk_error(exc)
            files = []
            for entry in entries:
                self._check_name(prefix + entry.name)
                if entry.is_dir(follow_symlinks=False):
                    stack.append((prefix + entry.name + "/", entry.path))
                else:
                    files.append(entry)
            for entry in reversed(files):
                key = prefix + entry.name
                try:
                    info = os.stat(self._inside(key))
                    yield Bundle(key, info.st_size, f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}")
                except (OSError, StellaOpsError):
                    yield Bundle(key, 0, "")  # sha256() names what is wrong with it

    def _check_name(self, key: str) -> None:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise StellaOpsError(
                f"The evidence directory {self.path} holds {display_name(key)!r}, a name that is not UTF-8; rename it (keys are UTF-8 text)."
            ) from None

    def _inside(self, key: str) -> str:
        """The real path of ``key``, which must stay inside the store after every link is followed."""
        path = os.path.join(self.path, *key.split("/"))
        real = os.path.realpath(path)
        if real != self.path and os.path.commonpath([real, self.path]) != self.path:
            raise StellaOpsError(f"{display_name(key)} leads to {display_name(real)}, outside the evidence directory; links must stay in the store.")
        return real

    @staticmethod
    def _walk_error(exc: OSError) -> None:
        raise StellaOpsError(f"Cannot list the evidence directory {exc.filename}: {exc.strerror}.")

    def sha256(self, key: str) -> tuple[str, int]:
        self._check_name(key)
        return file_sha256(self._inside(key), f"bundle {key}", follow_symlinks=False)


class S3Store:
    """Bundles are the objects under ``location.prefix`` (normalised to end in ``/``); keys are relative to it."""

    def __init__(self, location: S3Location, workers: int = DEFAULT_WORKERS, client: Any = None) -> None:
        prefix = location.prefix
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.location = S3Location(
            bucket=location.bucket,
            prefix=prefix,
            endpoint=location.endpoint,
            region=location.region,
            access_key=location.access_key,
            secret_key=location.secret_key,
        )
        self._client = client
        self._workers = workers

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = make_client(self.location, max_pool_connections=max(10, self._workers * 2))
        return self._client

    def identity(self) -> dict[str, str]:
        return self.location.identity()

    def describe(self) -> str:
        return self.location.describe()

    def check(self) -> None:
        check_bucket(self.client, self.location)

    def list(self) -> Iterator[Bundle]:
        cut = len(self.location.prefix)
        try:
            for info in iter_objects(self.client, self.location.bucket, self.location.prefix):
                if info.key.endswith("/") and info.size == 0:
                    continue  # a "directory" marker, not a bundle
                yield Bundle(info.key[cut:], info.size, f"{info.etag}:{info.size}")
        except StellaOpsError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated into one sentence
            raise translate_error(exc, self.location) from exc

    def sha256(self, key: str) -> tuple[str, int]:
        full = self.location.prefix + key
        try:
            return stream_sha256(self.client, self.location.bucket, full, CHUNK_SIZE)
        except Exception as exc:  # noqa: BLE001 - translated into one sentence
            raise translate_error(exc, self.location, full) from exc


def store_from_options(options: Mapping[str, Any], workers: int = DEFAULT_WORKERS) -> EvidenceStore:
    """Build a store from the ``store`` option dict: ``type`` directory (``path``) or s3 (``bucket`` ...)."""
    kind = options.get("type") or ("s3" if options.get("bucket") else "directory")
    if kind == "directory":
        if not options.get("path"):
            raise StellaOpsError("store.path is required when store.type is 'directory'; expected the evidence directory.")
        return DirectoryStore(str(options["path"]))
    if kind == "s3":
        if not options.get("bucket"):
            raise StellaOpsError("store.bucket is required when store.type is 's3'; expected a bucket name.")
        location = S3Location(
            bucket=str(options["bucket"]),
            prefix=str(options.get("prefix") or ""),
            endpoint=options.get("endpoint") or None,
            region=options.get("region") or None,
            access_key=options.get("access_key") or None,
            secret_key=options.get("secret_key") or None,
        )
        return S3Store(location, workers=workers)
    raise StellaOpsError(f"store.type is {kind!r}; expected 's3' or 'directory'.")


def _hash_batch(store: EvidenceStore, batch: list[Bundle]) -> list[HashResult]:
    results = []
    for bundle in batch:
        try:
            digest, size = store.sha256(bundle.key)
            results.append(HashResult(bundle.key, size, bundle.identity, digest))
        except StellaOpsError as err:
            results.append(HashResult(bundle.key, bundle.size, bundle.identity, "", str(err).rstrip(".")))
        except OSError as err:
            results.append(HashResult(bundle.key, bundle.size, bundle.identity, "", err.strerror or str(err)))
    return results


def _batches(bundles: Iterable[Bundle], max_count: int = 64, max_bytes: int = 16 << 20) -> Iterator[list[Bundle]]:
    batch: list[Bundle] = []
    size = 0
    for bundle in bundles:
        batch.append(bundle)
        size += bundle.size
        if len(batch) >= max_count or size >= max_bytes:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def hash_bundles(
    store: EvidenceStore,
    bundles: Iterable[Bundle],
    workers: int = DEFAULT_WORKERS,
    progress: Optional[Callable[[int], None]] = None,
) -> Iterator[HashResult]:
    """Hash ``bundles`` on ``workers`` threads, yielding results in input order; at most 4 batches per worker in flight."""
    workers = max(1, workers)
    if workers == 1:
        for batch in _batches(bundles):
            yield from _hash_batch(store, batch)
        return
    pending: deque[Future[list[HashResult]]] = deque()
    done = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="evidence-hash") as pool:
        for batch in _batches(bundles):
            pending.append(pool.submit(_hash_batch, store, batch))
            if len(pending) >= workers * 4:
                results = pending.popleft().result()
                done += len(results)
                if progress:
                    progress(done)
                yield from results
        while pending:
            yield from pending.popleft().result()


STORE_ARGUMENT_SPEC: dict[str, Any] = {
    "store": {
        "type": "dict",
        "required": True,
        "options": {
            "type": {"type": "str", "choices": ["s3", "directory"], "default": "s3"},
            "path": {"type": "path"},
            "endpoint": {"type": "str"},
            "bucket": {"type": "str"},
            "prefix": {"type": "str", "default": ""},
            "region": {"type": "str"},
            "access_key": {"type": "str", "no_log": True},
            "secret_key": {"type": "str", "no_log": True},
        },
    },
    "workers": {"type": "int", "default": DEFAULT_WORKERS},
}
