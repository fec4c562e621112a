# SPDX-License-Identifier: GPL-3.0-or-later
"""The registry and the Stella Ops releases built into it from busybox, and the release manifests with their digests."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .common import DOCKER_SOCKET, PG_BIN, REGISTRY, RELEASES, REPOSITORY_PREFIX, SANDBOX, SANDBOX_LABEL, SandboxError, http_ok, log, start_background, wait_for

COMPONENTS = ("authority", "signer", "attestor", "scanner-web", "scheduler", "notify")
RELEASE_DATES = {
    "2025.09.0": "2025-09-15T00:00:00Z",
    "2025.10.0": "2025-10-20T00:00:00Z",
    "2025.11.0": "2025-11-10T00:00:00Z",
    "2025.11.1": "2025-11-12T00:00:00Z",
}
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "cat", "echo", "sleep", "ls", "nc", "env", "true", "false", "head", "mkdir", "sha256sum", "cut", "tr", "grep")
BASE_IMAGE = "stellaops-sandbox/base:2"


def ensure_registry(state: dict[str, Any]) -> None:
    if http_ok(f"http://{REGISTRY}/v2/"):
        log(f"registry answers on {REGISTRY}")
        return
    root = SANDBOX / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n"
    )
    start_background("registry", ["docker-registry", "serve", str(config)], state)
    wait_for("registry", lambda: http_ok(f"http://{REGISTRY}/v2/"))


def registry_digest(repository: str, tag: str) -> str | None:
    """The manifest digest the registry reports for ``repository:tag``, or None."""
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def psql_files() -> dict[str, Path]:
    """The machine's psql and every shared library it loads (ldd), by the path it has in the image."""
    psql = PG_BIN / "psql"
    files = {"usr/bin/psql": psql}
    listed = subprocess.run(["ldd", str(psql)], capture_output=True, text=True, check=True).stdout
    for line in listed.splitlines():
        # "libpq.so.5 => /lib/x86_64-linux-gnu/libpq.so.5 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            files[path.lstrip("/")] = Path(path).resolve()
    return files


def base_rootfs() -> bytes:
    """The root filesystem of every sandbox image as a tar archive: busybox-static and its applets, and the machine's
    psql with its libraries (what the migration command runs against the sandbox's PostgreSQL)."""
    busybox = shutil.which("busybox")
    if not busybox:
        raise SandboxError("busybox is not installed (Debian package busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("bin", "tmp", "www", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(busybox, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
        for name, source in sorted(psql_files().items()):
            archive.add(str(source), arcname=name)
        passwd = b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        archive.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


# What the smoke tests after a cutover ask for: the Authority's OpenID configuration, and a scan
# submission (POST /cgi-bin/scans, busybox httpd CGI) that records the SBOM's digest and answers
# on GET /cgi-bin/scans/<id> with the completed scan.
SCAN_CGI = r"""#!/bin/sh
mkdir -p /tmp/scans
if [ "$REQUEST_METHOD" = POST ]; then
    digest=$(head -c "${CONTENT_LENGTH:-0}" | sha256sum | cut -c1-64)
    id=$(echo "$digest" | cut -c1-16)
    echo "{\"id\": \"$id\", \"status\": \"completed\", \"sbom_sha256\": \"$digest\"}" > "/tmp/scans/$id"
    printf 'Status: 202 Accepted\r\nContent-Type: application/json\r\n\r\n{"id": "%s", "status": "queued"}\n' "$id"
    exit 0
fi
id=$(echo "${PATH_INFO#/}" | tr -cd 'a-f0-9')
if [ -n "$id" ] && [ -f "/tmp/scans/$id" ]; then
    printf 'Content-Type: application/json\r\n\r\n'
    cat "/tmp/scans/$id"
else
    printf 'Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"status": "unknown"}\n'
fi
"""
OPENID_CONFIGURATION = json.dumps(
    {
        "issuer": "https://authority.sandbox.stellaops.local",
        "token_endpoint": "https://authority.sandbox.stellaops.local/connect/token",
        "jwks_uri": "https://authority.sandbox.stellaops.local/jwks",
        "grant_types_supported": ["client_credentials"],
    }
)
SMOKE_ENDPOINTS = {
    "authority": {"www/.well-known/openid-configuration": OPENID_CONFIGURATION + "\n"},
    "scanner-web": {"www/cgi-bin/scans": SCAN_CGI},
}


# The migrations of the sandbox's releases: id -> (name, category, SQL). Category A keeps the release before
# working; the category B one renames the column 2025.10.0's code reads (findings.score). The sandbox database is
# seeded with the first two applied (services.py).
MIGRATIONS: dict[str, tuple[str, str, str]] = {
    "20250901000000": (
        "create_core_tables",
        "A",
        "CREATE TABLE IF NOT EXISTS tenants (id serial PRIMARY KEY, slug text UNIQUE NOT NULL, created_at timestamptz NOT NULL);\n"
        "CREATE TABLE IF NOT EXISTS findings (\n"
        "    id bigserial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants(id), cve text NOT NULL,\n"
        "    severity text NOT NULL, score numeric(3,1) NOT NULL, details jsonb NOT NULL, observed_at timestamptz NOT NULL);\n",
    ),
    "20251001000000": (
        "add_evidence_index",
        "A",
        "CREATE TABLE IF NOT EXISTS evidence_index (\n"
        "    key text PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants(id), kind text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL);\n",
    ),
    "20251101000000": (
        "backfill_scores",
        "B",
        "ALTER TABLE findings ADD COLUMN weight numeric(3,2) NOT NULL DEFAULT 1;\n"
        "UPDATE findings SET weight = CASE severity WHEN 'critical' THEN 1.5 WHEN 'high' THEN 1.2 ELSE 1 END;\n"
        "ALTER TABLE findings RENAME COLUMN score TO base_score;\n",
    ),
}

# The platform's migration command as the runbooks name it (stella system migrations-run / migrations-status), for
# the migrations this image carries (its release's and those before): each applied in one transaction with its row
# in schema_migrations, against the database the libpq variables name (PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD).
STELLA_CLI = r"""#!/bin/sh
set -euf
usage() { echo "usage: stella system migrations-run --category A|B [--ids ID,...] | stella system migrations-status" >&2; exit 2; }
[ "${1:-}" = system ] && [ $# -ge 2 ] || usage
command=$2; shift 2
category=""; ids=""
while [ $# -gt 0 ]; do
    case "$1" in
        --category) [ $# -ge 2 ] || usage; category=$2; shift 2 ;;
        --ids) [ $# -ge 2 ] || usage; ids=$2; shift 2 ;;
        *) usage ;;
    esac
done
sql() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
applied=$(sql -tA -c "SELECT version FROM schema_migrations")
case "$command" in
    migrations-status)
        set +f
        for file in /migrations/*.sql; do
            base=${file##*/}; id=${base%%_*}
            if echo "$applied" | grep -qxF "$id"; then echo "$id applied"; else echo "$id pending"; fi
        done ;;
    migrations-run)
        case "$category" in A|B) ;; *) usage ;; esac
        for id in $(echo "$ids" | tr ',' ' '); do
            case "$id" in *[!0-9]*) echo "stella: a migration id is digits only, got $id" >&2; exit 2 ;; esac
            set +f
            ls /migrations/"$id"_*."$category".sql > /dev/null 2>&1 || { echo "stella: this release has no category $category migration $id" >&2; exit 3; }
            set -f
        done
        set +f
        for file in /migrations/*."$category".sql; do
            [ -e "$file" ] || continue
            base=${file##*/}; id=${base%%_*}; name=${base#*_}; name=${name%.*.sql}
            [ -z "$ids" ] || echo ",$ids," | grep -qF ",$id," || continue
            echo "$applied" | grep -qxF "$id" && continue
            sql --single-transaction -f "$file" \
                -c "INSERT INTO schema_migrations (version, name, category, applied_at) VALUES ('$id', '$name', '$category', now())"
            echo "applied $id $name"
        done ;;
    *) usage ;;
esac
"""


def migration_files(version: str) -> dict[str, str]:
    """The migrations an image of ``version`` carries: its release's and every older release's."""
    files = {}
    for release, (_from, _schema, _min_schema, ids) in RELEASE_UPGRADES.items():
        if release > version:
            continue
        for mid in ids:
            name, category, text = MIGRATIONS[mid]
            files[f"migrations/{mid}_{name}.{category}.sql"] = text
    return files


def build_context(version: str, component: str, healthy: bool) -> bytes:
    health = json.dumps({"status": "ok", "release": version, "component": component}) + "\n"
    dockerfile = "\n".join(
        [
            f"FROM {BASE_IMAGE}",
            f'LABEL {SANDBOX_LABEL}="true" org.opencontainers.image.version="{version}" org.stellaops.component="{component}"',
            "COPY www /www",
            "COPY stella /bin/stella",
            "COPY migrations /migrations",
            "EXPOSE 8080",
            # Every probe is a runc exec that costs this 2-core machine about 0.1 s of CPU: at one per
            # second, 18 containers (one fleet project) kept both cores 90 % busy. At one per 5 s a
            # container is found healthy up to 5 s later. Retries spare a healthy service one slow probe;
            # the broken release's health endpoint never answers, so its first failed probe decides
            # (unhealthy after 5 s, not 15 s: every scenario that deploys it waited for the other two).
            f"HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries={3 if healthy else 1} "
            "CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1",
            # A shell that exits on SIGTERM, as the platform's services do: busybox httpd as PID 1 ignores it,
            # and every container stop (each replace of an upgrade or rollback) waited Docker's 10 s for SIGKILL.
            """CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]""",
            "",
        ]
    )
    files = {"Dockerfile": dockerfile, "www/index.html": f"stellaops {component} {version}\n", "stella": STELLA_CLI, **migration_files(version)}
    if healthy:
        files["www/health"] = health
    files.update(SMOKE_ENDPOINTS.get(component, {}))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if name.startswith("www/cgi-bin/") or name == "stella" else 0o644
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer.getvalue()


def ensure_images() -> dict[str, dict[str, str]]:
    """Build and push every sandbox image that the registry lacks; return version -> component -> digest."""
    import docker  # from .venv

    client = docker.DockerClient(base_url=DOCKER_SOCKET)
    digests: dict[str, dict[str, str]] = {}
    base_ready = False
    # The recipe of each pushed image: an image whose recipe changed (new endpoints) is built again.
    recipes_file = SANDBOX / "images.json"
    recipes = json.loads(recipes_file.read_text()) if recipes_file.exists() else {}
    for version, (_channels, healthy) in RELEASES.items():
        digests[version] = {}
        for component in COMPONENTS:
            repository = f"stellaops/{component}"
            recipe = hashlib.sha256(build_context(version, component, healthy)).hexdigest()
            digest = registry_digest(repository, version)
            if digest is None or recipes.get(f"{component}:{version}") != recipe:
                if not base_ready:
                    try:
                        client.images.get(BASE_IMAGE)
                    except docker.errors.ImageNotFound:
                        base_repository, base_tag = BASE_IMAGE.split(":")
                        client.api.import_image_from_data(base_rootfs(), repository=base_repository, tag=base_tag)
                    base_ready = True
                tag = f"{REPOSITORY_PREFIX}/{component}:{version}"
                client.images.build(fileobj=io.BytesIO(build_context(version, component, healthy)), custom_context=True, tag=tag, rm=True)
                for line in client.images.push(f"{REPOSITORY_PREFIX}/{component}", tag=version, stream=True, decode=True):
                    if "error" in line:
                        raise SandboxError(f"push of {tag} failed: {line['error']}")
                digest = registry_digest(repository, version)
                if digest is None:
                    raise SandboxError(f"registry has no manifest for {tag} after push")
                log(f"pushed {tag} {digest}")
                recipes[f"{component}:{version}"] = recipe
                recipes_file.write_text(json.dumps(recipes, indent=2, sort_keys=True) + "\n")
            digests[version][component] = digest
    return digests


# Each release's upgrade path and database: version -> (versions that upgrade to it directly, schema version,
# oldest schema its code runs on, the ids of the MIGRATIONS it adds). 2025.11.x read the evidence in schema 2.
RELEASE_UPGRADES: dict[str, tuple[list[str], int, int, list[str]]] = {
    "2025.09.0": ([], 1, 1, ["20250901000000"]),
    "2025.10.0": (["2025.09.0"], 2, 1, ["20251001000000"]),
    "2025.11.0": (["2025.10.0"], 3, 3, ["20251101000000"]),
    "2025.11.1": (["2025.10.0", "2025.11.0"], 3, 3, []),
}


def write_manifests(digests: dict[str, dict[str, str]]) -> dict[str, str]:
    import yaml

    channel_dir = SANDBOX / "releases"
    faulty_dir = SANDBOX / "releases-faulty"
    written: dict[str, str] = {}
    for version, (channels, healthy) in RELEASES.items():
        for channel in channels:
            manifest = {
                "release": {
                    "version": version,
                    "channel": channel,
                    "date": RELEASE_DATES[version],
                    "components": [
                        {"name": component, "image": f"{REPOSITORY_PREFIX}/{component}@{digests[version][component]}"}
                        for component in COMPONENTS
                    ],
                    **upgrade_facts(version),
                }
            }
            directory = channel_dir if healthy else faulty_dir
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{version}-{channel}.yaml"
            text = yaml.safe_dump(manifest, sort_keys=False)
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            written[f"{version}-{channel}"] = str(path)
    return written


# The evidence schema of the releases that change it (the others read schema 1).
EVIDENCE_SCHEMAS = {"2025.11.0": 2, "2025.11.1": 2}


def upgrade_facts(version: str) -> dict[str, object]:
    """The upgrade, database and evidence keys of a sandbox release (strict mode requires them on stable and airgap)."""
    upgrades_from, schema_version, min_schema_version, migrations = RELEASE_UPGRADES[version]
    return {
        "upgrade": {"from": upgrades_from},
        "database": {
            "schema_version": schema_version,
            "min_schema_version": min_schema_version,
            "migrations": [{"id": mid, "name": MIGRATIONS[mid][0], "category": MIGRATIONS[mid][1]} for mid in migrations],
        },
        "evidence": {"schema_version": EVIDENCE_SCHEMAS.get(version, 1)},
    }
