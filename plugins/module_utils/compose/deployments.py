# SPDX-License-Identifier: GPL-3.0-or-later
"""Deployments kept on a compose host: a release *and* its settings, each in a directory of its own.

``<project_dir>/deployments/<deployment_id>/`` holds the compose lock (``docker-compose.lock.yaml``),
the env file that fills its ``${VAR}`` values (``settings.env``, mode 0600, secrets included) and
``deployment.json`` (release id, version, channel, images, and Compose's config hash of every service
as it was brought up). A deployment id is ``<release_id>+<n>``: the same release with other settings
is a deployment of its own, so rolling back a settings change returns to the previous settings.
``current`` points at the deployment brought up last. The bookmark of a run is the kept deployment
whose recorded config hashes equal those of the running containers; nothing else counts.

Only the standard library is used: this runs on the compose host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from typing import Any, Mapping, Optional

from ..core.atomic import write_json
from ..core.errors import StellaOpsError

LOCK_FILE = "docker-compose.lock.yaml"
ENV_FILE = "settings.env"
META_FILE = "deployment.json"
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEPLOYMENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\+[0-9]+")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def check_kept_lock(text: str, recorded_sha256: Any, source: str) -> None:
    """Refuse a kept lock whose text is no longer the text that was kept (its sha256 is recorded beside it).

    The standard library suffices (a compose host has no PyYAML to recompute ``x-stella-lock.digest``).
    Like that digest it reveals an accident or a hand edit, not an attacker who rewrites the record too.
    A deployment kept before the sha256 was recorded has none and is not checked.
    """
    if recorded_sha256 is None:
        return
    if not isinstance(recorded_sha256, str) or sha256_text(text) != recorded_sha256:
        raise StellaOpsError(
            f"{source}: the compose lock no longer matches the sha256 recorded when it was kept (lock_sha256 in deployment.json); "
            "it was edited, so it is not brought up; deploy the release again from its manifest."
        )


def render_env(settings: Mapping[str, Any], secrets: Mapping[str, Any]) -> str:
    """The env file: ``KEY='value'`` lines sorted by key; single quotes keep ``$`` literal for Compose."""
    lines = ["# Settings of one deployment, read by docker compose; holds secrets (mode 0600)."]
    merged = {**dict(settings), **dict(secrets)}
    for key in sorted(merged):
        if not isinstance(key, str) or not _ENV_KEY_RE.fullmatch(key):
            raise StellaOpsError(f"settings: {key!r} is not a variable name (letters, digits and _, not starting with a digit).")
        value = merged[key]
        text = ("true" if value else "false") if isinstance(value, bool) else "" if value is None else str(value)
        if "'" in text or "\n" in text or "\r" in text:
            where = "secrets" if key in secrets else "settings"
            raise StellaOpsError(f"{where}: the value of {key} holds a quote or a line break, which an env file cannot carry.")
        lines.append(f"{key}='{text}'")
    return "\n".join(lines) + "\n"


def check_deployment_id(deployment_id: str) -> str:
    if not isinstance(deployment_id, str) or not _DEPLOYMENT_ID_RE.fullmatch(deployment_id):
        raise StellaOpsError(f"deployment_id {deployment_id!r} is not a deployment id (<release_id>+<number>).")
    return deployment_id


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


class DeploymentStore:
    """The deployments kept under ``<project_dir>/deployments``."""

    def __init__(self, project_dir: str) -> None:
        self.project_dir = project_dir
        self.root = os.path.join(project_dir, "deployments")
        self.current_link = os.path.join(project_dir, "current")

    def path(self, deployment_id: str) -> str:
        return os.path.join(self.root, check_deployment_id(deployment_id))

    def ids(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(name for name in os.listdir(self.root) if _DEPLOYMENT_ID_RE.fullmatch(name) and os.path.isdir(os.path.join(self.root, name)))

    def meta(self, deployment_id: str) -> dict[str, Any]:
        path = os.path.join(self.path(deployment_id), META_FILE)
        try:
            data = json.loads(_read(path))
        except FileNotFoundError:
            raise StellaOpsError(f"Deployment {deployment_id} is not kept on this host ({path} does not exist).") from None
        except (OSError, ValueError) as error:
            raise StellaOpsError(f"{path}: cannot read the deployment record: {error}.") from None
        if not isinstance(data, dict) or not isinstance(data.get("config_hashes"), dict):
            raise StellaOpsError(f"{path}: field config_hashes must be a mapping of service to Compose config hash.")
        return data

    def content(self, deployment_id: str) -> tuple[str, str]:
        """The lock and env file of a kept deployment."""
        directory = self.path(deployment_id)
        if not os.path.isdir(directory):
            raise StellaOpsError(f"Deployment {deployment_id} is not kept on this host ({directory} does not exist).")
        try:
            return _read(os.path.join(directory, LOCK_FILE)), _read(os.path.join(directory, ENV_FILE))
        except OSError as error:
            raise StellaOpsError(f"Deployment {deployment_id} under {directory} is incomplete: {error.strerror}: {error.filename}.") from None

    def find(self, release_id: str, lock: str, env: str) -> Optional[str]:
        """The kept deployment of ``release_id`` with exactly this lock and env file."""
        for deployment_id in self.ids():
            if deployment_id.rsplit("+", 1)[0] != release_id:
                continue
            try:
                if self.content(deployment_id) == (lock, env):
                    return deployment_id
            except StellaOpsError:
                continue
        return None

    def next_id(self, release_id: str) -> str:
        numbers = [int(d.rsplit("+", 1)[1]) for d in self.ids() if d.rsplit("+", 1)[0] == release_id]
        return check_deployment_id(f"{release_id}+{max(numbers, default=0) + 1}")

    def write(self, deployment_id: str, lock: str, env: str, meta: Mapping[str, Any]) -> None:
        """Write a new deployment directory whole: staged in a temporary directory, then renamed."""
        target = self.path(deployment_id)
        os.makedirs(self.root, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=self.root)
        try:
            for name, text, mode in ((LOCK_FILE, lock, 0o644), (ENV_FILE, env, 0o600), (META_FILE, json.dumps(meta, indent=2, sort_keys=True) + "\n", 0o644)):
                fd = os.open(os.path.join(staging, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
            os.chmod(staging, 0o755)  # noqa: S103 - a deployment directory is readable like the compose files in it; settings.env stays 0600
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def update_meta(self, deployment_id: str, meta: Mapping[str, Any]) -> None:
        write_json(os.path.join(self.path(deployment_id), META_FILE), meta)

    def current(self) -> Optional[str]:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        name = os.path.basename(target.rstrip("/"))
        return name if _DEPLOYMENT_ID_RE.fullmatch(name) else None

    def point_current(self, deployment_id: str) -> bool:
        """``current`` -> ``deployments/<id>``; False when it already points there."""
        if self.current() == deployment_id:
            return False
        tmp = self.current_link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(os.path.join("deployments", check_deployment_id(deployment_id)), tmp)
        os.replace(tmp, self.current_link)
        return True

    def bookmark(self, hashes: Mapping[str, Optional[str]]) -> Optional[str]:
        """The kept deployment whose recorded config hashes equal the running ones (``current`` first)."""
        if not hashes:
            return None
        current = self.current()
        for deployment_id in sorted(self.ids(), key=lambda d: d != current):
            try:
                if self.meta(deployment_id).get("config_hashes") == dict(hashes):
                    return deployment_id
            except StellaOpsError:
                continue
        return None

    def prune(self, keep: int, protect: tuple[Optional[str], ...]) -> list[str]:
        """Remove the oldest deployments beyond ``keep`` (by creation), never one in ``protect``."""
        def created(deployment_id: str) -> str:
            try:
                return str(self.meta(deployment_id).get("created_at", ""))
            except StellaOpsError:
                return ""

        ordered = sorted(self.ids(), key=created, reverse=True)
        removed = []
        for deployment_id in ordered[max(keep, 1):]:
            if deployment_id in protect:
                continue
            shutil.rmtree(self.path(deployment_id))
            removed.append(deployment_id)
        return removed
