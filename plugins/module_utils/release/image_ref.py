# SPDX-License-Identifier: GPL-3.0-or-later
"""Container image references: ``[registry[:port]/]path[:tag][@sha256:<64 hex>]``.

The repository is everything before ``@`` and before the ``:tag`` (a ``:`` that
follows the last ``/``), so ``127.0.0.1:5000/stellaops/authority:1.0`` has the
repository ``127.0.0.1:5000/stellaops/authority`` and the tag ``1.0``.

Two spellings name the same repository when they normalise to the same name, as Docker
resolves them (:func:`normalize_repository`): ``postgres``, ``library/postgres``,
``docker.io/library/postgres`` and ``index.docker.io/library/postgres`` are one repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from ..core.errors import StellaOpsError

_SPACE_RE = re.compile(r"\s")
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?))*(?::[0-9]{1,5})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
# Used by the JSON Schema: any well-formed reference, and a reference pinned by digest.
IMAGE_PATTERN = r"^[^\s@:/][^\s@]*(@sha256:[0-9a-f]{64})?$"
PINNED_IMAGE_PATTERN = r"^[^\s@:/][^\s@]*@sha256:[0-9a-f]{64}$"
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_DEFAULT_PORTS = frozenset({"443", "80"})


@dataclass(frozen=True)
class ImageRef:
    """One parsed image reference."""

    repository: str
    tag: Optional[str]
    digest: Optional[str]

    @property
    def pinned(self) -> bool:
        """True when the reference names a content digest."""
        return self.digest is not None

    def pinned_ref(self) -> str:
        """``repository@digest``; only meaningful for a pinned reference."""
        if self.digest is None:
            raise StellaOpsError(f"Image {self.repository} is not pinned by digest; expected repository@sha256:<64 hex>.")
        return f"{self.repository}@{self.digest}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def parse_image_ref(ref: str, where: str = "") -> ImageRef:
    """Parse ``ref``; ``where`` (``file: field``) starts the error sentence."""
    if not isinstance(ref, str):
        raise StellaOpsError(f"{_prefix(where)}expected an image reference string, got {type(ref).__name__} {ref!r}.")
    if not ref or _SPACE_RE.search(ref):
        raise StellaOpsError(f"{_prefix(where)}image reference {ref!r} is empty or contains whitespace.")
    name, at, digest = ref.partition("@")
    if at:
        if not DIGEST_RE.fullmatch(digest):
            raise StellaOpsError(
                f"{_prefix(where)}image reference {ref!r} has a malformed digest {digest!r}; expected sha256: followed by 64 lowercase hex digits."
            )
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag: Optional[str] = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG_RE.fullmatch(tag):
            raise StellaOpsError(
                f"{_prefix(where)}image reference {ref!r} has a malformed tag {tag!r}; expected letters, digits, '_', '.' or '-' (at most 128)."
            )
    if not REPOSITORY_RE.fullmatch(name):
        raise StellaOpsError(f"{_prefix(where)}image reference {ref!r} has a malformed repository {name!r}; expected [registry[:port]/]lowercase/path.")
    return ImageRef(repository=name, tag=tag, digest=digest if at else None)


def normalize_repository(repository: str) -> str:
    """The full name Docker resolves ``repository`` to: registry host (lower case, no default port) and path.

    As in Docker's reference parser, the first segment is a registry only when it holds ``.`` or ``:``,
    is ``localhost`` or has upper-case letters; otherwise the image is on Docker Hub, whose one-segment
    names live under ``library/``. Ports 443 and 80 are the defaults of HTTPS and HTTP and are dropped.
    """
    first, slash, rest = repository.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        host, colon, port = first.lower().partition(":")
        registry, path = (host if port in _DEFAULT_PORTS else host + colon + port), rest
    else:
        registry, path = DOCKER_HUB, repository
    if registry in _DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return f"{registry}/{path}"


def repo_matches(repository: str, names: Iterable[str]) -> bool:
    """True when a name equals the whole repository or its trailing path (``nats``, ``library/nats``)."""
    for raw in names:
        name = raw.strip("/")
        if name and (repository == name or repository.endswith("/" + name)):
            return True
    return False
