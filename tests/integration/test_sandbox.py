# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's parts are real: registry, Docker engine, PostgreSQL and S3-compatible storage.

Each sandbox release is pulled by digest from the registry, run by the Docker engine, and its
health endpoint must report the release and component it was built as (the deliberately broken
release must answer 404 there).
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
import yaml

pytestmark = pytest.mark.sandbox


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_registry_serves_every_release_by_digest(sandbox: dict[str, Any]) -> None:
    for version, release in sandbox["releases"].items():
        for component, digest in release["digests"].items():
            request = urllib.request.Request(
                f"http://{sandbox['registry']}/v2/stellaops/{component}/manifests/{digest}",
                method="HEAD",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.headers["Docker-Content-Digest"] == digest, (version, component)


def test_each_release_pulled_by_digest_runs_and_reports_itself(sandbox: dict[str, Any]) -> None:
    engine = docker.DockerClient(base_url=sandbox["docker_host"])
    started = []
    try:
        for version, release in sandbox["releases"].items():
            for component, digest in release["digests"].items():
                reference = f"{sandbox['repository_prefix']}/{component}@{digest}"
                pulled = subprocess.run(["docker", "-H", sandbox["docker_host"], "pull", reference], capture_output=True, text=True, check=False)
                assert pulled.returncode == 0, pulled.stderr
                assert digest in pulled.stdout
                container = engine.containers.run(
                    reference, detach=True, ports={"8080/tcp": ("127.0.0.1", None)}, labels={"org.stellaops.sandbox": "true"}
                )
                started.append((version, component, release["healthy"], container))
        for version, component, healthy, container in started:
            deadline = time.monotonic() + 30
            status, body = 0, b""
            while time.monotonic() < deadline:
                container.reload()
                port = container.ports.get("8080/tcp")
                if port:
                    status, body = get(f"http://127.0.0.1:{port[0]['HostPort']}/health")
                    if status in (200, 404):
                        break
                time.sleep(0.3)
            if healthy:
                assert status == 200, (version, component)
                assert json.loads(body) == {"status": "ok", "release": version, "component": component}
            else:
                assert status == 404, (version, component, status)
    finally:
        for *_meta, container in started:
            container.remove(force=True)


def test_release_manifests_carry_the_registry_digests(sandbox: dict[str, Any]) -> None:
    channels = set()
    for name, path in sandbox["manifests"].items():
        release = yaml.safe_load(Path(path).read_text())["release"]
        channels.add(release["channel"])
        digests = sandbox["releases"][release["version"]]["digests"]
        assert {c["name"]: c["image"].split("@")[1] for c in release["components"]} == digests, name
    assert channels == {"edge", "stable", "airgap"}


def test_postgres_holds_the_sample_database(sandbox: dict[str, Any]) -> None:
    import psycopg2

    pg = sandbox["postgres"]
    password = Path(pg["password_file"]).read_text().strip()
    with psycopg2.connect(host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["user"], password=password) as conn:
        with conn.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM schema_migrations")
            assert cursor.fetchone()[0] >= 3
            cursor.execute("SELECT count(*) FROM findings")
            assert cursor.fetchone()[0] >= 2000


def test_object_storage_holds_evidence_bundles(sandbox: dict[str, Any]) -> None:
    s3 = sandbox["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        region_name=s3["region"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=Path(s3["secret_key_file"]).read_text().strip(),
    )
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=s3["evidence_bucket"], Prefix="evidence/")["Contents"]]
    assert len(keys) >= 60
    assert all(key.endswith(".json") for key in keys)
