# SPDX-License-Identifier: GPL-3.0-or-later
"""Option specs shared by the backup modules and their conversion into connection objects.

Plain dicts in ``AnsibleModule`` argument-spec form (no Ansible import), so the
``backup``, ``backup_restore`` and ``backup_verify`` modules declare them once.
"""

from __future__ import annotations

from typing import Any, Optional

from ..core.postgres import PG_SERVER_SPEC, PgConnection
from ..core.s3 import S3Location

# Where the PostgreSQL client tools are (doc fragment stellaops.deploy.postgres_tools).
POSTGRES_TOOLS_SPEC: dict[str, Any] = {
    "postgres_bin_dir": {"type": "path"},
}

# How a database is reached, in the postgres option of backup (a list) and of backup_restore (a dict).
PG_CONNECTION_SPEC: dict[str, Any] = {
    **PG_SERVER_SPEC,
    "passfile": {"type": "path"},
    "sslmode": {"type": "str", "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]},
}

POSTGRES_SPEC: dict[str, Any] = {
    "database": {"type": "str", "required": True},
    **PG_CONNECTION_SPEC,
    "maintenance_db": {"type": "str", "default": "postgres"},
    "verify_restore": {"type": "bool"},
}

MONGODB_SPEC: dict[str, Any] = {
    "uri": {"type": "str", "required": True},
    "name": {"type": "str", "default": "mongodb"},
    "username": {"type": "str"},
    "password": {"type": "str", "no_log": True},
    "databases": {"type": "list", "elements": "str", "default": []},
    "method": {"type": "str", "default": "auto", "choices": ["auto", "mongodump", "pymongo"]},
}

# Endpoint and credentials of S3-compatible storage, in the object_storage option of the three backup modules.
S3_CREDENTIALS_SPEC: dict[str, Any] = {
    "endpoint": {"type": "str"},
    "region": {"type": "str"},
    "access_key": {"type": "str", "no_log": False},
    "secret_key": {"type": "str", "no_log": True},
}

S3_SPEC: dict[str, Any] = {
    "bucket": {"type": "str", "required": True},
    "prefix": {"type": "str", "default": ""},
    **S3_CREDENTIALS_SPEC,
}

OBJECT_STORAGE_SPEC: dict[str, Any] = {
    **S3_SPEC,
    "destination": {"type": "str", "default": "local", "choices": ["local", "bucket"]},
    "destination_bucket": {"type": "str"},
    "destination_prefix": {"type": "str"},
}

KUBERNETES_SPEC: dict[str, Any] = {
    "namespace": {"type": "str", "required": True},
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
    "kinds": {"type": "list", "elements": "str", "default": ["ConfigMap", "Secret"], "choices": ["ConfigMap", "Secret"]},
}


def pg_connection(params: dict[str, Any]) -> PgConnection:
    return PgConnection(
        database=str(params["database"]),
        host=str(params.get("host") or "127.0.0.1"),
        port=int(params.get("port") or 5432),
        user=str(params.get("user") or "postgres"),
        password=params.get("password"),
        passfile=params.get("passfile"),
        sslmode=params.get("sslmode"),
    )


def s3_location(params: dict[str, Any], bucket: Optional[str] = None, prefix: Optional[str] = None) -> S3Location:
    return S3Location(
        bucket=bucket or str(params["bucket"]),
        prefix=str(params.get("prefix") or "") if prefix is None else prefix,
        endpoint=params.get("endpoint"),
        region=params.get("region"),
        access_key=params.get("access_key"),
        secret_key=params.get("secret_key"),
    )


def location_from_identity(identity: dict[str, Any], credentials: dict[str, Any]) -> S3Location:
    """An ``S3Location`` for a location recorded in a listing, with credentials supplied now."""
    return S3Location(
        bucket=str(identity["bucket"]),
        prefix=str(identity.get("prefix") or ""),
        endpoint=credentials.get("endpoint") or identity.get("endpoint") or None,
        region=credentials.get("region"),
        access_key=credentials.get("access_key"),
        secret_key=credentials.get("secret_key"),
    )
