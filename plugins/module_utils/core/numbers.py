# SPDX-License-Identifier: GPL-3.0-or-later
"""The one check of every number that an option or a field takes.

Ansible's ``type: float`` takes ``nan`` and ``inf``, and Python compares NaN false with everything,
so a NaN limit or interval never ends a wait (a loop that runs forever) and an infinite one is a
traceback where it reaches ``time.sleep``. Every number goes through ``number_in``: finite, within
its bounds, not a boolean; anything else is one sentence naming the field.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Union

from .errors import StellaOpsError

Number = Union[int, float]


def number_in(value: Any, field: str, low: float, high: float, *, integer: bool = False) -> Number:
    """``value`` as a finite number from ``low`` to ``high`` (a whole one with ``integer``), else one sentence naming ``field``."""
    number: Any = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number) or not low <= number <= high or (integer and not number.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise StellaOpsError(f"{field} must be {kind} from {low:g} to {high:g}, got {value!r}.")
    return int(number) if integer else number


def field_number(spec: Mapping[str, Any], name: str, default: Number, where: str, low: float, high: float, *, integer: bool = False) -> Number:
    """Field ``name`` of a check or test ``spec`` through ``number_in`` (named ``<where>: field <name>``); ``default`` when absent."""
    value = spec.get(name)
    return default if value is None else number_in(value, f"{where}: field {name}", low, high, integer=integer)
