# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading input that may be hostile: regular files only, bounded size, bounded YAML and JSON.

Every file the collection reads (manifests, templates, alignment targets, locks, journal jobs,
evidence bundles) is opened through ``open_regular``: the path must name a regular file, checked
before and after opening, and the open never blocks, so a FIFO or a device (``/dev/zero``) is
refused at once instead of hanging or filling memory. ``follow_symlinks=False`` also refuses a
symbolic link, for the state files the collection writes itself.

``parse_yaml`` first walks the YAML event stream (libyaml's parser when present, which is fast and
does not recurse) and refuses a document nested deeper than ``max_depth`` or that would expand to
more than ``max_nodes`` nodes through aliases, and, with ``aliases=False``, any anchor or alias at
all. Only then does it build the document, so neither a small file of nested aliases nor a deeply
nested one can exhaust memory, the stack or the C parser. ``parse_json`` bounds depth the same way.

The file functions need only the standard library (host modules use them); the YAML functions
need PyYAML, which only controller-side code calls. Every error is a ``StellaOpsError`` with one
sentence; ``details['kind']`` is ``'unreadable'`` when the file could not be read (with
``details['missing']`` when it does not exist) and ``'invalid'`` when its content is refused.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from typing import Any, Callable, Optional

from .errors import StellaOpsError

try:
    import yaml

    HAS_YAML = True
    YAML_IMPORT_ERROR: Optional[ImportError] = None
except ImportError as exc:  # pragma: no cover - PyYAML is a controller requirement
    HAS_YAML = False
    YAML_IMPORT_ERROR = exc

MAX_BYTES = 16 << 20
MAX_DEPTH = 64
MAX_NODES = 250_000
CHUNK_SIZE = 1 << 20

_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
)


def invalid(message: str) -> StellaOpsError:
    return StellaOpsError(message, kind="invalid")


def unreadable(message: str, **details: object) -> StellaOpsError:
    return StellaOpsError(message, kind="unreadable", **details)


def _kind_of(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")


def _not_regular(path: str, what: str, mode: int) -> StellaOpsError:
    return unreadable(f"{path}: {what} is {_kind_of(mode)}; expected a regular file.")


def open_regular(path: str, what: str = "file", *, follow_symlinks: bool = True) -> int:
    """A read-only descriptor of the regular file ``path``; anything else is refused without blocking."""
    try:
        before = os.stat(path) if follow_symlinks else os.lstat(path)
    except FileNotFoundError:
        raise unreadable(f"{path}: {what} not found.", missing=True) from None
    except PermissionError:
        raise unreadable(f"{path}: {what} is not readable (permission denied).") from None
    except (OSError, ValueError) as err:
        raise unreadable(f"{path}: cannot read {what}: {_reason(err)}.") from None
    if not stat.S_ISREG(before.st_mode):
        raise _not_regular(path, what, before.st_mode)
    # O_NONBLOCK: should the path have become a FIFO since the stat, opening it still returns at once
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise unreadable(f"{path}: {what} not found.", missing=True) from None
    except PermissionError:
        raise unreadable(f"{path}: {what} is not readable (permission denied).") from None
    except OSError as err:
        if err.errno == errno.ELOOP and not follow_symlinks:
            raise unreadable(f"{path}: {what} is a symbolic link; expected a regular file.") from None
        raise unreadable(f"{path}: cannot read {what}: {_reason(err)}.") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        if not stat.S_ISREG(after.st_mode):
            raise _not_regular(path, what, after.st_mode)
        raise unreadable(f"{path}: {what} was replaced while it was being opened; try again.")
    return fd


def read_bytes(path: str, what: str = "file", *, max_bytes: int = MAX_BYTES, follow_symlinks: bool = True) -> bytes:
    """The content of the regular file ``path``, refused when larger than ``max_bytes``."""
    fd = open_regular(path, what, follow_symlinks=follow_symlinks)
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise invalid(f"{path}: {what} is larger than {_size_text(max_bytes)}; expected a smaller file.")
    except OSError as err:
        raise unreadable(f"{path}: cannot read {what}: {_reason(err)}.") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_text(path: str, what: str = "file", *, max_bytes: int = MAX_BYTES, follow_symlinks: bool = True) -> str:
    """The UTF-8 text of the regular file ``path``."""
    return decode_utf8(read_bytes(path, what, max_bytes=max_bytes, follow_symlinks=follow_symlinks), path, what)


def file_sha256(path: str, what: str = "file", *, follow_symlinks: bool = True) -> tuple[str, int]:
    """SHA-256 and size of the regular file ``path``, read in 1 MiB pieces (a FIFO or a device is refused, never
    hashed; so is a final link with ``follow_symlinks=False``)."""
    digest = hashlib.sha256()
    size = 0
    with open(open_regular(path, what, follow_symlinks=follow_symlinks), "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while True:
            read = handle.readinto(buffer)
            if not read:
                break
            digest.update(view[:read])
            size += read
    return digest.hexdigest(), size


def decode_utf8(data: bytes, path: str, what: str = "file") -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise invalid(f"{path}: {what} is not UTF-8 text (byte {err.start}).") from None


def _reason(err: BaseException) -> str:
    return (getattr(err, "strerror", None) or str(err) or type(err).__name__).rstrip(".")


def _size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size} bytes"


def display_name(name: str) -> str:
    """A file name as text that can always be printed: bytes that are not UTF-8 appear as \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


# --------------------------------------------------------------------------- JSON


def check_depth(data: Any, source: str, what: str = "document", max_depth: int = MAX_DEPTH) -> None:
    """Refuse plain data nested deeper than ``max_depth`` (an explicit stack, no recursion)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise invalid(f"{source}: {what} is nested more than {max_depth} levels deep.")
        stack.extend((child, depth + 1) for child in children)


def parse_json(
    text: str,
    source: str,
    what: str = "file",
    *,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Optional[Callable[[list[tuple[str, Any]]], Any]] = None,
) -> Any:
    """Parse JSON text; a syntax error names the line and column, deep nesting is refused."""
    try:
        data = json.loads(text, object_pairs_hook=object_pairs_hook)
    except RecursionError:
        raise invalid(f"{source}: {what} is nested more than {max_depth} levels deep.") from None
    except json.JSONDecodeError as err:
        raise invalid(f"{source}: {what} is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}).") from None
    except ValueError as err:
        raise invalid(f"{source}: {what} is not valid JSON ({_reason(err)}).") from None
    check_depth(data, source, what, max_depth)
    return data


def read_json(
    path: str,
    what: str = "file",
    *,
    max_bytes: int = MAX_BYTES,
    follow_symlinks: bool = True,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Optional[Callable[[list[tuple[str, Any]]], Any]] = None,
) -> Any:
    """Read and parse one JSON file (a regular file, UTF-8, bounded in size and depth)."""
    text = read_text(path, what, max_bytes=max_bytes, follow_symlinks=follow_symlinks)
    return parse_json(text, path, what, max_depth=max_depth, object_pairs_hook=object_pairs_hook)


# --------------------------------------------------------------------------- YAML


def require_yaml(purpose: str) -> None:
    if not HAS_YAML:
        raise unreadable(f"{purpose} needs the Python library PyYAML ({YAML_IMPORT_ERROR}); install it with 'pip install PyYAML'.")


def _where(mark: Any) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def check_yaml_shape(
    text: str, source: str, *, aliases: bool, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES, max_bytes: int = MAX_BYTES
) -> None:
    """Walk the event stream once and refuse anchors/aliases (unless ``aliases``), deep nesting and large expansions.

    An alias counts as many nodes, and as many bytes of scalar text, as the node it repeats, so
    ``max_nodes`` and ``max_bytes`` bound the document as any consumer that walks or writes it (a
    schema check, JSON output, a rendered lock file) would see it: 4,000 aliases of one 1 MiB
    scalar are few nodes and 4 GiB of text.
    """
    require_yaml("Reading YAML")
    parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    sizes: dict[str, int] = {}
    weights: dict[str, int] = {}
    open_nodes: list[tuple[Optional[str], int, int]] = []
    total = 0
    text_bytes = 0
    for event in yaml.parse(text, Loader=parser):
        if isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()
            weights.clear()
        if not isinstance(event, (yaml.NodeEvent, yaml.CollectionEndEvent)):
            continue
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None and not aliases:
            kind = "an alias *" if isinstance(event, yaml.AliasEvent) else "an anchor &"
            raise invalid(f"{source}: YAML {kind}{event.anchor}{_where(event.start_mark)} is not allowed here; write the value out in full.")
        if isinstance(event, yaml.AliasEvent):
            total += sizes.get(event.anchor, 1)
            text_bytes += weights.get(event.anchor, 0)
        elif isinstance(event, yaml.CollectionStartEvent):
            total += 1
            open_nodes.append((event.anchor, total, text_bytes))
            if len(open_nodes) > max_depth:
                raise invalid(f"{source}: YAML is nested more than {max_depth} levels deep{_where(event.start_mark)}.")
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, start_bytes = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = total - start + 1
                weights[anchor] = text_bytes - start_bytes
        else:
            total += 1
            text_bytes += len(event.value)
            if event.anchor is not None:
                sizes[event.anchor] = 1
                weights[event.anchor] = len(event.value)
        if text_bytes > max_bytes:
            where = _where(event.start_mark)
            raise invalid(
                f"{source}: YAML expands to more than {_size_text(max_bytes)} of text{where} (aliases repeat what they name); expected a smaller document."
            )
        if total > max_nodes:
            where = _where(event.start_mark)
            raise invalid(f"{source}: YAML expands to more than {max_nodes} values{where} (aliases repeat what they name); expected a smaller document.")


def parse_yaml(
    text: str,
    source: str,
    *,
    loader: Any = None,
    aliases: bool = False,
    max_depth: int = MAX_DEPTH,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Parse one YAML document with a safe ``loader`` after ``check_yaml_shape``; errors name the line and column."""
    require_yaml("Reading YAML")
    # Text from task arguments is a str subclass (Ansible's tagged str), which the C loader refuses.
    text = str(text)
    loader = loader or getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        check_yaml_shape(text, source, aliases=aliases, max_depth=max_depth, max_nodes=max_nodes)
        return yaml.load(text, Loader=loader)  # noqa: S506 - safe loaders only
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = (err.problem or err.context or "invalid YAML").rstrip(".")
        raise invalid(f"{source}: YAML syntax error{_where(mark)}: {problem}.") from None
    except (yaml.YAMLError, ValueError, TypeError, RecursionError, OverflowError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise invalid(f"{source}: cannot parse YAML: {first.rstrip('.')}.") from None
