#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_baseline
short_description: Capture an evidence baseline with Merkle roots before an upgrade
description:
  - Lists and hashes (SHA-256, streamed) every evidence bundle of an S3-compatible bucket or a local directory,
    and writes a baseline file with the sha256 and size of each bundle, counts, bytes and an RFC 6962 Merkle
    root per partition and for the whole store, the tool version, the time and the file's own checksum.
  - Also writes a roots export, a small file with only the roots and counts, to keep apart from the store.
  - Partitions come from the key layout, the first O(partition_depth) directory segments of a key
    (C(acme/sbom) for C(acme/sbom/bundle-1.json) at depth 2).
  - With O(cache_path), a bundle whose identity (etag and size on S3, size, mtime and inode in a directory)
    is unchanged since the last run is not read again, so a new baseline of a store where 1% changed reads that 1%.
  - Fails without writing anything when a bundle cannot be read, the endpoint cannot be reached or the bucket is missing.
  - The file formats and how to recompute a root with other tools are described in the collection's docs/evidence.md.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.evidence_store
attributes:
  check_mode:
    support: full
    details:
      - Reads and hashes the store and computes the baseline exactly as a real run, and writes no file.
  diff_mode:
    support: full
    details:
      - Before and after are the roots and counts of the existing and the new baseline.
  idempotent:
    support: full
    details:
      - A baseline whose bundles, roots and store equal those of the existing file is not rewritten.
options:
  path:
    description: Baseline file to write (JSON).
    type: path
    required: true
  roots_path:
    description: Roots export to write; by default O(path) with C(.json) replaced by C(.roots.json).
    type: path
  cache_path:
    description: Hash cache for incremental runs (JSON, created when missing). No cache when omitted.
    type: path
  partition_depth:
    description: Number of leading directory segments of a key that name its partition; 0 puts every bundle in one partition.
    type: int
    default: 2
  schema_version:
    description:
      - The evidence schema of the release that runs (its manifest's C(evidence.schema_version)); the roots are computed
        in it. Schema 2 puts each bundle's size in its leaf. A baseline of schema 1 does not say its schema.
    type: int
    choices: [1, 2]
    default: 1
"""

EXAMPLES = r"""
- name: Capture the evidence baseline before the upgrade
  stellaops.deploy.evidence_baseline:
    store:
      type: s3
      endpoint: http://127.0.0.1:17000
      bucket: stellaops-evidence
      prefix: evidence/
      access_key: "{{ evidence_access_key }}"
      secret_key: "{{ evidence_secret_key }}"
    path: /backup/pre-upgrade-evidence-baseline.json
    roots_path: /backup/pre-upgrade-merkle-roots.json
    cache_path: /var/cache/stellaops/evidence-hashes.json
    partition_depth: 2
  register: evidence_baseline

- name: Baseline of a directory of exported bundles
  stellaops.deploy.evidence_baseline:
    store:
      type: directory
      path: /backup/evidence-bundles
    path: /backup/evidence-bundles.baseline.json
"""

RETURN = r"""
path:
  description: The baseline file.
  returned: always
  type: str
  sample: /backup/pre-upgrade-evidence-baseline.json
roots_path:
  description: The roots export.
  returned: always
  type: str
  sample: /backup/pre-upgrade-evidence-baseline.roots.json
checksum:
  description: Checksum of the baseline (C(sha256:) of its canonical JSON without this field).
  returned: always
  type: str
  sample: sha256:0f3a9c2e51b0c8d4a8e0e4f1b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4
created:
  description: Time of the baseline (UTC); the time of the existing file when it was not rewritten.
  returned: always
  type: str
  sample: "2025-11-22T04:25:53Z"
store:
  description: The store the baseline describes (no credentials).
  returned: always
  type: dict
  sample: {type: s3, endpoint: "http://127.0.0.1:17000", bucket: stellaops-evidence, prefix: evidence/}
total:
  description: Number of bundles, bytes and Merkle root of the whole store.
  returned: always
  type: dict
  sample: {count: 60, bytes: 36550, root: 940f1e2b21270086244e93db2ff7a4285a2802060da215122d11d19f2ca29801}
partitions:
  description: Number of bundles, bytes and Merkle root per partition.
  returned: always
  type: dict
  sample: {acme/sbom: {count: 10, bytes: 6035, root: 059082e798ded5194b93a6be8f793f9d0b1a54add3f59defa44f3332fd349156}}
hashed:
  description: Bundles read and hashed in this run.
  returned: always
  type: int
  sample: 6
cached:
  description: Bundles whose hash came from the cache because their identity had not changed.
  returned: always
  type: int
  sample: 54
"""

import os
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_json
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import (
    BASELINE_FORMAT,
    ROOTS_FORMAT,
    HashCache,
    build_baseline,
    content_of,
    default_roots_path,
    load_checked,
    roots_export,
    scan_store,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.store import STORE_ARGUMENT_SPEC, store_from_options


def _existing(path: str, fmt: str, what: str) -> Optional[dict[str, Any]]:
    """The file at ``path`` when it exists and passes its checksum; None (to be rewritten) otherwise."""
    if not os.path.exists(path):
        return None
    try:
        return load_checked(path, fmt, what)
    except StellaOpsError:
        return None


class BaselineManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        if self.params["partition_depth"] < 0:
            raise StellaOpsError("partition_depth is negative; expected 0 or more directory segments.")
        self.store = store_from_options(self.params["store"], workers=self.params["workers"])
        self.path: str = self.params["path"]
        self.roots_path: str = self.params["roots_path"] or default_roots_path(self.path)

    def run(self) -> dict[str, Any]:
        p = self.params
        cache = HashCache.load(p["cache_path"], self.store.identity()) if p["cache_path"] else None
        scan = scan_store(self.store, workers=p["workers"], cache=cache)
        baseline = build_baseline(self.store, scan, p["partition_depth"], schema=p["schema_version"])
        old = _existing(self.path, BASELINE_FORMAT, "baseline file")
        write_baseline = content_of(old) != content_of(baseline)
        if old is not None and not write_baseline:
            baseline = old  # same content: keep the file, its time and its checksum
        roots = roots_export(baseline)
        write_roots = content_of(_existing(self.roots_path, ROOTS_FORMAT, "roots export")) != content_of(roots)
        write_cache = False
        cache_document: dict[str, Any] = {}
        if cache is not None:
            cache_document = cache.document(scan.results)
            write_cache = not os.path.exists(p["cache_path"]) or cache_document["entries"] != {
                k: list(v) for k, v in cache.entries.items()
            }
        if not self.module.check_mode:
            if write_baseline:
                write_json(self.path, baseline, indent=None)
            if write_roots:
                write_json(self.roots_path, roots)
            if write_cache and p["cache_path"]:
                write_json(p["cache_path"], cache_document, mode=0o600, indent=None)
        result: dict[str, Any] = {
            "changed": write_baseline or write_roots or write_cache,
            "path": self.path,
            "roots_path": self.roots_path,
            "checksum": baseline["checksum"],
            "created": baseline["created"],
            "store": baseline["store"],
            "total": baseline["total"],
            "partitions": baseline["partitions"],
            "hashed": scan.hashed,
            "cached": scan.cached,
        }
        if self.module._diff:
            result["diff"] = {
                "before": {"total": old["total"], "partitions": old["partitions"]} if old else {},
                "after": {"total": baseline["total"], "partitions": baseline["partitions"]},
            }
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "path": {"type": "path", "required": True},
            "roots_path": {"type": "path"},
            "cache_path": {"type": "path"},
            "partition_depth": {"type": "int", "default": 2},
            "schema_version": {"type": "int", "choices": [1, 2], "default": 1},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**BaselineManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err), **{k: v for k, v in err.details.items() if k == "unreadable"})


if __name__ == "__main__":
    main()
