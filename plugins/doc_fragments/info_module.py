# SPDX-License-Identifier: GPL-3.0-or-later
"""Attributes of the read-only (``*_info``) modules."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
attributes:
  check_mode:
    support: full
    details:
      - Read-only; the same result in check mode and in a real run.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
"""
