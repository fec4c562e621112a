# SPDX-License-Identifier: GPL-3.0-or-later
"""Attributes of the read-only (``*_info``) modules."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Read-only; the same result in check mode and in a real run.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
    details:
      - This action does not modify state.
"""
