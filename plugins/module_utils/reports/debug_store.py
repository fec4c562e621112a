# SPDX-License-Identifier: GPL-3.0-or-later
"""The offline kit's debug store: the release's ``.build-id/**`` mirrored into the kit, with
``metadata/debug-store.json`` listing the size and sha256 of every file, verifiable later.

Layout (runbook, "Smoke the Offline Kit debug store"):

- release: ``<release_dir>/debug/.build-id/<xx>/<rest>.debug`` (as the release pipeline writes it);
- kit: ``<kit_dir>/debug/.build-id/...`` and ``<kit_dir>/metadata/debug-store.json``.

``plan_mirror`` compares the two trees file by file (size, then sha256) and says what to copy
and what to remove; ``apply_mirror`` does it; ``verify_kit`` recomputes every file of the kit
against the metadata and lists every difference, not only the first.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Optional

from ..core.atomic import write_text
from ..core.errors import StellaOpsError
from ..core.safe_load import file_sha256, read_json, read_text

METADATA_FORMAT = "stellaops-debug-store/1"
STORE_DIR = os.path.join("debug", ".build-id")
METADATA_PATH = os.path.join("metadata", "debug-store.json")


def _sha256(path: str) -> str:
    """The store holds regular files only: a link or a FIFO in it is refused, never followed or opened."""
    return file_sha256(path, "debug store file", follow_symlinks=False)[0]


def _require_inside(base: str, path: str) -> None:
    """``path`` and every directory between ``base`` and it are real directories, not links out of ``base``:
    a kit whose ``debug`` or ``.build-id`` links elsewhere would have files outside it read, replaced and removed."""
    current = os.path.abspath(base)
    for part in os.path.relpath(os.path.abspath(path), current).split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise StellaOpsError(f"debug store: {current} is a symbolic link; the debug store is a tree of real directories inside {base}.")


def list_store(root: str, base: str) -> dict[str, str]:
    """Relative path (``.build-id/ab/cdef.debug``, ``/`` separators) -> absolute path of every regular file under ``root``
    (which lies inside ``base``); a link anywhere in the tree is refused."""
    found: dict[str, str] = {}
    _require_inside(base, root)
    if not os.path.isdir(root):
        return found
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in dirs:
            if os.path.islink(os.path.join(directory, name)):
                raise StellaOpsError(f"debug store: {os.path.join(directory, name)} is a symbolic link; the store holds only regular files.")
        for name in sorted(files):
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                raise StellaOpsError(f"debug store: {path} is not a regular file; the store holds only regular files.")
            relative = os.path.relpath(path, os.path.dirname(root)).replace(os.sep, "/")
            found[relative] = path
    return found


def describe(files: dict[str, str]) -> list[dict[str, Any]]:
    """Path, size and sha256 of each file, sorted by path."""
    return [{"path": relative, "size": os.path.getsize(path), "sha256": _sha256(path)} for relative, path in sorted(files.items())]


def metadata_document(entries: list[dict[str, Any]], release_id: Optional[str]) -> dict[str, Any]:
    return {
        "format": METADATA_FORMAT,
        "release_id": release_id or None,
        "file_count": len(entries),
        "total_size": sum(int(entry["size"]) for entry in entries),
        "files": entries,
    }


def plan_mirror(release_dir: str, kit_dir: str, release_id: Optional[str]) -> dict[str, Any]:
    """What mirroring the release's debug store into the kit copies, removes and writes."""
    source_root = os.path.join(release_dir, STORE_DIR)
    source = list_store(source_root, release_dir)
    if not source:
        raise StellaOpsError(f"debug store: {source_root} holds no file; the release's debug store is {STORE_DIR}/** under release_dir.")
    target = list_store(os.path.join(kit_dir, STORE_DIR), kit_dir)
    entries = describe(source)
    copy = []
    for entry in entries:
        present = target.get(entry["path"])
        if present is None or os.path.getsize(present) != entry["size"] or _sha256(present) != entry["sha256"]:
            copy.append(entry["path"])
    remove = sorted(set(target) - set(source))
    metadata = metadata_document(entries, release_id)
    metadata_text = json.dumps(metadata, indent=2, sort_keys=True) + "\n"
    metadata_path = os.path.join(kit_dir, METADATA_PATH)
    _require_inside(kit_dir, os.path.dirname(metadata_path))
    try:
        current: Optional[str] = read_text(metadata_path, "debug store metadata")
    except StellaOpsError as err:
        if not err.details.get("missing"):
            raise
        current = None
    return {
        "copy": copy,
        "remove": remove,
        "metadata": metadata,
        "metadata_text": metadata_text,
        "metadata_path": metadata_path,
        "metadata_changed": current != metadata_text,
        "sources": source,
    }


def apply_mirror(plan: dict[str, Any], kit_dir: str) -> None:
    """Copy, remove and write the metadata as planned (each copy through a temporary file and a rename)."""
    for relative in plan["copy"]:
        target = os.path.join(kit_dir, "debug", *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temporary = target + ".tmp"
        shutil.copyfile(plan["sources"][relative], temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    for relative in plan["remove"]:
        os.unlink(os.path.join(kit_dir, "debug", *relative.split("/")))
    if plan["metadata_changed"]:
        write_text(plan["metadata_path"], plan["metadata_text"])


def verify_kit(kit_dir: str) -> dict[str, Any]:
    """Every file of the kit's debug store against ``metadata/debug-store.json``: all problems listed."""
    metadata_path = os.path.join(kit_dir, METADATA_PATH)
    _require_inside(kit_dir, os.path.dirname(metadata_path))
    try:
        metadata = read_json(metadata_path, "debug store metadata")
    except StellaOpsError as err:
        if err.details.get("missing"):
            raise StellaOpsError(f"debug store: {metadata_path} is missing; mirror the release's debug store into the kit first.") from err
        raise
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT or not isinstance(metadata.get("files"), list):
        raise StellaOpsError(f"debug store: {metadata_path} field format must be {METADATA_FORMAT!r} with a list of files.")
    # The metadata is not taken at its word: a store of no file proves nothing, and its counts must be its files'.
    if not metadata["files"]:
        raise StellaOpsError(f"debug store: {metadata_path} lists no file; a debug store holds at least one.")
    if metadata.get("file_count") != len(metadata["files"]):
        raise StellaOpsError(f"debug store: {metadata_path} field file_count is {metadata.get('file_count')!r}, but it lists {len(metadata['files'])} files.")
    present = list_store(os.path.join(kit_dir, STORE_DIR), kit_dir)
    problems: list[dict[str, Any]] = []
    listed = set()
    for entry in metadata["files"]:
        if not isinstance(entry, dict) or not {"path", "size", "sha256"} <= set(entry):
            raise StellaOpsError(f"debug store: {metadata_path} field files must hold path, size and sha256 for each file.")
        relative = str(entry["path"])
        listed.add(relative)
        path = present.get(relative)
        if path is None:
            problems.append({"path": relative, "problem": "missing"})
        elif os.path.getsize(path) != entry["size"]:
            problems.append({"path": relative, "problem": "size", "expected": entry["size"], "found": os.path.getsize(path)})
        elif (found := _sha256(path)) != entry["sha256"]:
            problems.append({"path": relative, "problem": "sha256", "expected": entry["sha256"], "found": found})
    problems += [{"path": relative, "problem": "not listed"} for relative in sorted(set(present) - listed)]
    return {
        "verified": not problems,
        "problems": problems,
        "file_count": len(metadata["files"]),
        "total_size": metadata.get("total_size"),
        "release_id": metadata.get("release_id"),
        "metadata_path": metadata_path,
    }


def problems_sentence(kit_dir: str, problems: list[dict[str, Any]]) -> str:
    shown = ", ".join(f"{p['path']} ({p['problem']})" for p in problems[:10])
    more = f" and {len(problems) - 10} more" if len(problems) > 10 else ""
    return f"The debug store of the offline kit {kit_dir} does not verify against {METADATA_PATH}: {shown}{more}."
