# SPDX-License-Identifier: GPL-3.0-or-later
"""Options shared by the evidence modules: the evidence store and the read parallelism."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  store:
    description:
      - The evidence store. Bundles are the objects under O(store.prefix) of an S3-compatible bucket,
        or the files under a local directory.
      - Bundle keys are relative to the prefix (or the directory), so a copy of the store under another
        prefix has the same keys and the same roots.
    type: dict
    required: true
    suboptions:
      type:
        description: Kind of store.
        type: str
        choices: [s3, directory]
        default: s3
      path:
        description: Directory holding the bundles (O(store.type=directory)).
        type: path
      endpoint:
        description: URL of the S3-compatible endpoint, for example C(http://127.0.0.1:9000); AWS when omitted.
        type: str
      bucket:
        description: Bucket of the bundles (O(store.type=s3)).
        type: str
      prefix:
        description: Key prefix of the bundles; a C(/) is added when it does not end in one.
        type: str
        default: ""
      region:
        description: Region of the bucket.
        type: str
      access_key:
        description: Access key id. Never logged.
        type: str
      secret_key:
        description: Secret access key. Never logged.
        type: str
  workers:
    description: Number of bundles read and hashed in parallel.
    type: int
    default: 8
requirements:
  - boto3 (for O(store.type=s3)) on the host that runs the module
"""
