# SPDX-License-Identifier: GPL-3.0-or-later
"""The helm CLI (Helm 3 and Helm 4) through one runner, and the pure logic around its releases.

``HelmRunner`` finds ``helm`` once, probes its major version once and speaks to one release in one
namespace of one kubeconfig context. The differences between the majors stay here: Helm 4 renamed
``--atomic`` to ``--rollback-on-failure`` and lists releases of every status without ``--all``.

The pure part reads ``helm history -o json`` (the bookmark: the last *deployed* revision, and a
release stuck in ``pending-*``), lists the images of each workload in a rendered manifest, and makes
the unified diff of two manifests with every Secret value masked. Nothing here imports Ansible.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.runner import ModuleLike, ToolRunner
from ..core.safe_load import parse_yaml
from .client import check_kubeconfig

PENDING_PREFIX = "pending-"
# A revision that ran: "deployed" now, or "superseded" by a later one.
RAN_STATUSES = ("deployed", "superseded")
MASK = "********"
# The fields of a Secret that hold its values.
_SECRET_FIELDS = ("data", "stringData")
# helm history keeps at most --history-max revisions (10 by default); read them all. (--max 0 reads none.)
HISTORY_MAX = 100000
_DURATION_RE = re.compile(r"^(?:\d+h)?(?:\d+m)?(?:\d+s)?$")
_CHART_RE = re.compile(r"^(?P<name>.+?)-(?P<version>v?\d+\.\d+\.\d+\S*)$")
_SOURCE_RE = re.compile(r"^# Source: (.+)$")
_IMAGE_RE = re.compile(r"^\s*(?:-\s+)?image:\s*[\"']?([^\"'\s]+)[\"']?\s*$")
_WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ReplicaSet")


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class Revision:
    """One row of ``helm history``."""

    revision: int
    status: str
    chart: str
    app_version: str
    description: str
    updated: str

    @property
    def chart_version(self) -> str:
        match = _CHART_RE.match(self.chart)
        return match.group("version") if match else ""

    @property
    def pending(self) -> bool:
        return self.status.startswith(PENDING_PREFIX)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "status": self.status,
            "chart": self.chart,
            "chart_version": self.chart_version,
            "app_version": self.app_version,
            "description": self.description,
            "updated": self.updated,
        }


def parse_history(text: str) -> list[Revision]:
    """Rows of ``helm history -o json``, oldest first."""
    try:
        rows = json.loads(text or "[]")
    except ValueError as err:
        raise StellaOpsError(f"helm history printed output that is not JSON: {err}.") from None
    if not isinstance(rows, list):
        raise StellaOpsError("helm history printed JSON that is not a list of revisions.")
    found = []
    for row in rows:
        if not isinstance(row, dict) or "revision" not in row:
            raise StellaOpsError(f"helm history printed a row without a revision: {row!r}.")
        found.append(
            Revision(
                revision=int(row["revision"]),
                status=str(row.get("status") or ""),
                chart=str(row.get("chart") or ""),
                app_version=str(row.get("app_version") or ""),
                description=str(row.get("description") or ""),
                updated=str(row.get("updated") or ""),
            )
        )
    return sorted(found, key=lambda r: r.revision)


def last_deployed(history: Sequence[Revision]) -> Optional[Revision]:
    """The bookmark: the newest revision that ran (``deployed``, else ``superseded``), never a failed one."""
    for status in RAN_STATUSES:
        ran = [r for r in history if r.status == status]
        if ran:
            return ran[-1]
    return None


def stuck_pending(history: Sequence[Revision]) -> Optional[Revision]:
    """The newest revision when it is ``pending-*``: an install, upgrade or rollback that never finished."""
    return history[-1] if history and history[-1].pending else None


def find_revision(history: Sequence[Revision], number: int, release: str) -> Revision:
    for row in history:
        if row.revision == number:
            return row
    known = f"revisions {history[0].revision} to {history[-1].revision} exist" if history else "it has no revision"
    raise StellaOpsError(f"Release {release} has no revision {number} ({known}); nothing was changed.")


def pending_message(release: str, namespace: str, pending: Revision, target: Optional[Revision]) -> str:
    back = f"roll back to revision {target.revision}" if target else "recover it"
    return (
        f"Release {release} in namespace {namespace} is stuck in {pending.status} at revision {pending.revision} "
        f"({pending.description or 'a helm run that did not finish'}); make sure no helm process still works on it, "
        f"then set recover_pending=true (in playbooks/rollback.yml: -e helm_rollback_recover_pending=true) to {back}. Nothing was changed."
    )


# --------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class ManifestDocument:
    """One document of a rendered manifest: where it came from, its kind and name, its text."""

    source: str
    kind: str
    name: str
    text: str


def split_manifest(text: str) -> list[ManifestDocument]:
    """The documents of ``helm get manifest`` or a dry run, in order; empty documents dropped."""
    docs = []
    for chunk in re.split(r"^---[ \t]*$", text or "", flags=re.MULTILINE):
        lines = chunk.strip("\n").split("\n")
        body = [line for line in lines if line.strip() and not line.startswith("#")]
        if not body:
            continue
        source = next((m.group(1) for m in map(_SOURCE_RE.match, lines) if m), "")
        kind = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("kind:")), "")
        docs.append(ManifestDocument(source, kind, _metadata_name(lines), chunk.strip("\n")))
    return docs


def _metadata_name(lines: list[str]) -> str:
    in_metadata = False
    for line in lines:
        if line.startswith("metadata:"):
            in_metadata = True
        elif in_metadata and line and not line[0].isspace():
            return ""
        elif in_metadata and re.match(r"^  name:\s*", line):
            return line.split(":", 1)[1].strip().strip("'\"")
    return ""


def workload_images(text: str) -> dict[str, list[str]]:
    """``Kind/name`` of each workload in a manifest and the images of its containers, in order."""
    images: dict[str, list[str]] = {}
    for doc in split_manifest(text):
        if doc.kind not in _WORKLOAD_KINDS:
            continue
        found = [m.group(1) for m in map(_IMAGE_RE.match, doc.text.split("\n")) if m]
        images[f"{doc.kind}/{doc.name}"] = found
    return dict(sorted(images.items()))


def image_digests(images: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The digest of each workload's image (``Kind/name``, ``Kind/name#N`` for the Nth container after the first),
    as the deployment journal records digests."""
    digests = {}
    for workload, refs in images.items():
        for index, ref in enumerate(refs):
            if "@" in ref:
                digests[workload if index == 0 else f"{workload}#{index}"] = ref.rsplit("@", 1)[1]
    return digests


def _secret_data(doc: ManifestDocument) -> tuple[bool, Optional[dict[str, Any]]]:
    """(is a Secret, its data) whatever the YAML style (block or flow); a document that is not readable
    YAML counts as a Secret when its text names the kind, so that it is hidden whole."""
    try:
        data = parse_yaml(doc.text, f"manifest document {doc.source or doc.name or doc.kind}")
    except StellaOpsError:
        return "Secret" in doc.text, None
    if isinstance(data, dict) and data.get("kind") == "Secret":
        return True, data
    return False, None


def _secret_values(data: Mapping[str, Any]) -> dict[str, str]:
    """``field.key`` (or ``field`` when it is not a mapping) -> the value as JSON, for data and stringData."""
    values: dict[str, str] = {}
    for field in _SECRET_FIELDS:
        entries = data.get(field)
        if isinstance(entries, dict):
            values.update({f"{field}.{key}": json.dumps(value, sort_keys=True, default=str) for key, value in entries.items()})
        elif entries is not None:
            values[field] = json.dumps(entries, sort_keys=True, default=str)
    return values


def _plain_values(data: Mapping[str, Any]) -> list[str]:
    """Every value of a Secret's data and stringData as text, to make sure none is left in what is shown."""
    found: list[str] = []
    for field in _SECRET_FIELDS:
        entries = data.get(field)
        for value in entries.values() if isinstance(entries, dict) else [entries]:
            if value is not None:
                found.append(str(value).strip())
    return found


def _secret_name(data: Mapping[str, Any]) -> str:
    metadata = data.get("metadata")
    return str(metadata.get("name", "")) if isinstance(metadata, dict) else ""


def mask_secrets(text: str, other: Optional[str] = None) -> str:
    """``text`` with every Secret value replaced by a mask; with ``other`` (the other side of a
    diff) a value that differs from it is marked ``(changed)``, so that a diff shows which key
    changed and never what it holds. Secrets are read as YAML, so a flow-style Secret
    (``stringData: {password: ...}``) is masked as well as a block-style one."""
    theirs: dict[tuple[str, str], str] = {}
    for doc in split_manifest(other or ""):
        _is_secret, data = _secret_data(doc)
        if data is not None:
            theirs.update({(_secret_name(data), entry): value for entry, value in _secret_values(data).items()})
    out = []
    for doc in split_manifest(text):
        is_secret, data = _secret_data(doc)
        if not is_secret:
            out.append(doc.text)
            continue
        if data is None:
            out.append(f"# a Secret that is not readable as YAML: {MASK} (hidden whole)")
            continue
        name, mine = _secret_name(data), _secret_values(data)

        def mask(entry: str) -> str:
            changed = other is not None and theirs.get((name, entry)) != mine.get(entry)  # noqa: B023 - used at once
            return f"{MASK}{' (changed)' if changed else ''}"

        lines: list[str] = []
        seen: set[str] = set()
        skipping = False
        for line in doc.text.split("\n"):
            top = bool(line) and not line[0].isspace() and not line.startswith("#")
            field = line.split(":", 1)[0].strip().strip("'\"") if top else ""
            if top:
                seen.add(field)
                skipping = field in _SECRET_FIELDS
                if skipping:
                    entries = data.get(field)
                    if isinstance(entries, dict):
                        lines.append(f"{field}:")
                        lines.extend(f"  {key}: {mask(f'{field}.{key}')}" for key in entries)
                    else:
                        lines.append(f"{field}: {mask(field)}")
                    continue
            if not skipping:
                lines.append(line)
        # A layout other than one top-level field per line (a flow-style document) is hidden whole, and so is
        # a Secret whose value would still show anywhere.
        shown = "\n".join(lines)
        if not set(map(str, data)) <= seen or any(len(value) > 2 and value in shown for value in _plain_values(data)):
            lines = [f"# Secret {name}: {MASK} (hidden whole: its values are not laid out one per line)"]
        out.append("\n".join(lines))
    return "".join(f"---\n{doc}\n" for doc in out)


def masked_pair(before: str, after: str) -> tuple[str, str]:
    """Both sides of a manifest diff, Secret values masked; the after side marks the changed ones."""
    return mask_secrets(before), mask_secrets(after, before)


def _unified(masked_before: str, masked_after: str, before_name: str, after_name: str) -> str:
    return "".join(
        difflib.unified_diff(masked_before.splitlines(keepends=True), masked_after.splitlines(keepends=True), fromfile=before_name, tofile=after_name)
    )


def manifest_diff(before: str, after: str, before_name: str, after_name: str) -> str:
    """Unified diff of two manifests, Secret values masked on both sides."""
    return _unified(*masked_pair(before, after), before_name, after_name)


def compared(before: str, after: str, before_name: str, after_name: str) -> dict[str, Any]:
    """What a Helm module returns of a comparison: the unified diff and Ansible's diff, Secret values masked (once: every
    document is read as YAML to find the Secrets)."""
    masked_before, masked_after = masked_pair(before, after)
    return {
        "manifest_diff": _unified(masked_before, masked_after, before_name, after_name),
        "diff": {"before_header": before_name, "after_header": after_name, "before": masked_before, "after": masked_after},
    }


def normalized(text: str) -> str:
    """A manifest with its documents' surrounding blank lines removed, for comparison."""
    return "".join(f"---\n{doc.text}\n" for doc in split_manifest(text))


# --------------------------------------------------------------------------- options


def check_duration(value: Any, option: str) -> str:
    """A Go duration helm accepts (``15m``, ``600s``, ``1h30m``); a bare number counts as seconds."""
    text = str(value).strip()
    if text.isdigit():
        return f"{text}s"
    if not text or not _DURATION_RE.match(text):
        raise StellaOpsError(f"Option {option} is {value!r}; expected a duration such as 15m, 600s or 1h30m.")
    return text


_DURATION_PART = re.compile(r"(\d+)([hms])")
_SECONDS = {"h": 3600, "m": 60, "s": 1}


def duration_seconds(duration: str) -> float:
    """Seconds of a Go duration checked by :func:`check_duration` (``1h30m`` is 5400)."""
    return float(sum(int(number) * _SECONDS[unit] for number, unit in _DURATION_PART.findall(duration)))


def merge_values(*layers: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """Deep merge of values mappings, later layers winning (how helm merges several -f files)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in (layer or {}).items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = merge_values(merged[key], value)
            else:
                merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


# --------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class KubeTarget:
    """Where a release lives: kubeconfig file, context and namespace."""

    namespace: str
    context: Optional[str] = None
    kubeconfig: Optional[str] = None

    def describe(self) -> str:
        return f"namespace {self.namespace}" + (f" of context {self.context}" if self.context else "")


class HelmRunner(ToolRunner):
    """``helm`` against one namespace of one kubeconfig context."""

    binary = "helm"
    version_args = ("version", "--short")

    def __init__(self, module: ModuleLike, target: KubeTarget, executable: Optional[str] = None, timeout: Optional[float] = None) -> None:
        super().__init__(module, executable, timeout)
        self.target = target

    @property
    def major(self) -> int:
        try:
            return int(self.version.split(".")[0])
        except ValueError:
            raise StellaOpsError(f"Cannot read the version of {self.path} (helm version --short); expected Helm 3 or 4.") from None

    @property
    def env(self) -> dict[str, str]:
        environ = super().env
        if self.target.kubeconfig:
            environ["KUBECONFIG"] = self.target.kubeconfig
        return environ

    def _scope(self) -> list[str]:
        # one argument each (--flag=value): a value can never be read as a flag of its own
        args = [f"--namespace={self.target.namespace}"]
        if self.target.context:
            args += [f"--kube-context={self.target.context}"]
        return args

    def helm(
        self, args: Sequence[str], *, what: str, data: Optional[str] = None, check: bool = True, timeout: Optional[float] = None
    ) -> tuple[int, str, str]:
        """Run helm (a read-only query unless ``timeout`` says otherwise); an unreachable API server or a missing release becomes one sentence."""
        rc, out, err = self.run([*args, *self._scope()], check=False, data=data, what=what, timeout=self.query_timeout if timeout is None else timeout)
        if rc != 0 and check:
            raise StellaOpsError(self.explain(err or out, what), cmd=[self.path, *args], rc=rc, stderr=err)
        return rc, out, err

    def explain(self, output: str, what: str) -> str:
        if re.search(r'namespaces "[^"]*" not found', output or ""):
            return (
                f"Namespace {self.target.namespace} does not exist; create it, or let the first install create it "
                "(create_namespace: true, helm_upgrade_create_namespace=true in the roles)."
            )
        lines = [line.strip() for line in (output or "").strip().splitlines() if line.strip()]
        # helm's error is its last "Error:" line and the lines of detail under it (a hook's failure, for one)
        start = max((i for i, line in enumerate(lines) if line.startswith("Error:")), default=max(len(lines) - 1, 0))
        reason = " ".join(lines[start:]).removeprefix("Error: ").rstrip(".") or "no output"
        if "cluster unreachable" in reason or "connection refused" in reason or "no such host" in reason or "i/o timeout" in reason:
            return f"The Kubernetes API server of {self.target.describe()} is unreachable ({reason}); nothing was changed."
        return f"{what} failed: {reason}."

    def history(self, release: str) -> list[Revision]:
        """The release's revisions, oldest first; empty when helm does not know the release."""
        args = ["history", release, "--output", "json", "--max", str(HISTORY_MAX)]
        rc, out, err = self.helm(args, what=f"helm history {release}", check=False)
        if rc != 0:
            if re.search(r"release: not found", err or out or ""):
                return []
            raise StellaOpsError(self.explain(err or out, f"helm history {release}"), rc=rc, stderr=err)
        return parse_history(out)

    def releases(self) -> list[str]:
        """Names of the releases in the namespace, whatever their status."""
        args = ["list", "--output", "json", "--max", "0"] + (["--all"] if self.major < 4 else [])
        _rc, out, _err = self.helm(args, what="helm list")
        try:
            return sorted(str(r.get("name")) for r in json.loads(out or "[]"))
        except (ValueError, AttributeError):
            raise StellaOpsError("helm list printed output that is not a JSON list of releases.") from None

    def require_history(self, release: str) -> list[Revision]:
        history = self.history(release)
        if not history:
            others = self.releases()
            raise StellaOpsError(
                f"Release {release} does not exist in {self.target.describe()} "
                f"(releases there: {', '.join(others) if others else 'none'}); nothing was changed."
            )
        return history

    def manifest(self, release: str, revision: int) -> str:
        _rc, out, _err = self.helm(["get", "manifest", release, "--revision", str(revision)], what=f"helm get manifest {release}")
        return out

    def hooks(self, release: str, revision: int) -> str:
        _rc, out, _err = self.helm(["get", "hooks", release, "--revision", str(revision)], what=f"helm get hooks {release}")
        return out

    def platform_release(self, release: str, revision: int) -> Optional[dict[str, str]]:
        """The platform release a revision runs: the values' global.release (version, channel, release_id), None when they do not name one.

        Only that key is kept: the values also hold what secret_values set.
        """
        _rc, out, _err = self.helm(["get", "values", release, "--revision", str(revision), "--output", "json"], what=f"helm get values {release}")
        try:
            values = json.loads(out or "null")
        except ValueError as err:
            raise StellaOpsError(f"helm get values {release} printed output that is not JSON: {err}.") from None
        shared = values.get("global") if isinstance(values, dict) else None
        named = shared.get("release") if isinstance(shared, dict) else None
        if not isinstance(named, dict) or not isinstance(named.get("version"), str) or not named["version"]:
            return None
        version, channel = named["version"], named.get("channel") if isinstance(named.get("channel"), str) else ""
        return {"version": version, "channel": channel, "release_id": f"{version}-{channel}" if channel else version}

    def upgrade_args(
        self, release: str, chart: str, values_files: Sequence[str], *, install: bool, wait: bool, atomic: bool, timeout: str
    ) -> list[str]:
        args = ["upgrade", release, chart, "--output", "json", "--timeout", timeout]
        if install:
            args.append("--install")
        for path in values_files:
            args += ["--values", path]
        # Values given as data (digests, secrets) come last, on stdin, never on the command line.
        args += ["--values", "-"]
        if atomic:
            args.append("--rollback-on-failure" if self.major >= 4 else "--atomic")
        if wait or atomic:
            args.append("--wait")
        return args

    def render(self, release: str, chart: str, values_files: Sequence[str], values: Mapping[str, Any], *, install: bool) -> dict[str, Any]:
        """The release an upgrade would make (helm's own dry run): manifest, hooks, chart metadata."""
        args = self.upgrade_args(release, chart, values_files, install=install, wait=False, atomic=False, timeout="5m")
        _rc, out, _err = self.helm([*args, "--dry-run=client"], what=f"helm upgrade --dry-run {release}", data=json.dumps(values))
        return release_json(out, "helm upgrade --dry-run")

    def upgrade(
        self, release: str, chart: str, values_files: Sequence[str], values: Mapping[str, Any], *,
        install: bool, wait: bool, atomic: bool, timeout: str, create_namespace: bool = False,
    ) -> dict[str, Any]:
        args = self.upgrade_args(release, chart, values_files, install=install, wait=wait, atomic=atomic, timeout=timeout)
        if install and create_namespace:
            args.append("--create-namespace")
        # --atomic may wait out the timeout twice: once for the upgrade, once for its rollback
        bound = 2 * duration_seconds(timeout) + self.query_timeout
        _rc, out, _err = self.helm(args, what=f"helm upgrade {release}", data=json.dumps(values), timeout=bound)
        return release_json(out, "helm upgrade")

    def rollback(self, release: str, revision: int, *, wait: bool, timeout: str, force_conflicts: bool = False) -> None:
        args = ["rollback", release, str(revision), "--timeout", timeout]
        if wait:
            args.append("--wait")
        # Helm 4's server-side apply refuses fields another manager changed (replicas scaled to zero for a database
        # restore) unless forced; Helm 3's three-way merge takes them back without a flag.
        if force_conflicts and self.major >= 4:
            args.append("--force-conflicts")
        self.helm(args, what=f"helm rollback {release} {revision}", timeout=duration_seconds(timeout) + self.query_timeout)


def release_json(text: str, what: str) -> dict[str, Any]:
    """The release object helm prints with ``--output json`` (manifest, hooks, chart, version)."""
    try:
        data = json.loads(text or "")
    except ValueError as err:
        raise StellaOpsError(f"{what} printed output that is not JSON: {err}.") from None
    if not isinstance(data, dict):
        raise StellaOpsError(f"{what} printed JSON that is not a release object.")
    return data


def hooks_text(release: Mapping[str, Any]) -> str:
    """The hooks of a release object in the form ``helm get hooks`` prints them."""
    return "".join(f"---\n# Source: {h.get('path', '')}\n{str(h.get('manifest', '')).strip()}\n" for h in release.get("hooks") or [])


# Options every Helm module takes (documented in the stellaops.deploy.helm_target doc fragment).
HELM_TARGET_SPEC: dict[str, dict[str, Any]] = {
    "release": {"type": "str", "required": True},
    "namespace": {"type": "str", "required": True},
    "kube_context": {"type": "str"},
    "kubeconfig": {"type": "path"},
    "helm_path": {"type": "path"},
}


# Kubernetes' rules: a namespace is a DNS label, a Helm release name a DNS subdomain of at most 53
# characters. Either reaches helm's command line: a name that begins with '-' would be an option.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_NAMESPACE = re.compile(_DNS_LABEL)
_RELEASE = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


def check_kube_names(params: Mapping[str, Any]) -> None:
    """One sentence when the release or the namespace is not a name Kubernetes takes."""
    release, namespace = params.get("release"), params.get("namespace")
    if not isinstance(release, str) or len(release) > 53 or not _RELEASE.fullmatch(release):
        raise StellaOpsError(f"release must be a Helm release name (lowercase letters, digits, '-' and '.', at most 53), got {release!r}.")
    if not isinstance(namespace, str) or len(namespace) > 63 or not _NAMESPACE.fullmatch(namespace):
        raise StellaOpsError(f"namespace must be a Kubernetes namespace name (lowercase letters, digits and '-', at most 63), got {namespace!r}.")


def helm_from_params(module: ModuleLike, params: Mapping[str, Any]) -> HelmRunner:
    """The runner for the release named by the HELM_TARGET_SPEC options."""
    check_kube_names(params)
    check_kubeconfig(params.get("kubeconfig"))
    target = KubeTarget(namespace=str(params["namespace"]), context=params.get("kube_context"), kubeconfig=params.get("kubeconfig"))
    return HelmRunner(module, target, params.get("helm_path"))
