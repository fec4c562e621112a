# SPDX-License-Identifier: GPL-3.0-or-later
"""What the attributes of every module mean; each module says its support and the details of it."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
"""
