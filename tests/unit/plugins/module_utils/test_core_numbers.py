# SPDX-License-Identifier: GPL-3.0-or-later
"""The one number check: finite, within bounds, not a boolean; one sentence otherwise, also where modules use it."""

from __future__ import annotations

import math

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.numbers import number_in
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.health import normalize_check, run_checks
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.prometheus import gate_from_dict
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.smoke import normalize

HOSTILE = [math.nan, math.inf, -math.inf, "nan", "inf", "1e400", 10**30, -1, True, "soon", None, [1], {"a": 1}]


@pytest.mark.parametrize("value", HOSTILE)
def test_anything_but_a_finite_number_in_bounds_is_one_sentence(value: object) -> None:
    with pytest.raises(StellaOpsError) as err:
        number_in(value, "interval", 0, 3600)
    assert str(err.value) == f"interval must be a number from 0 to 3600, got {value!r}."


@pytest.mark.parametrize(("value", "integer", "expected"), [(5, False, 5.0), ("2.5", False, 2.5), (0, False, 0.0), (200, True, 200), ("404", True, 404)])
def test_numbers_in_bounds_pass_as_their_kind(value: object, integer: bool, expected: float) -> None:
    number = number_in(value, "field", 0, 599, integer=integer)
    assert number == expected and isinstance(number, int if integer else float)


def test_a_fraction_is_not_a_whole_number() -> None:
    with pytest.raises(StellaOpsError, match=r"^expected_rc must be a whole number from 0 to 255, got 1\.5\.$"):
        number_in(1.5, "expected_rc", 0, 255, integer=True)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_modules_refuse_nan_and_infinity_where_they_would_wait_forever(value: float) -> None:
    # A NaN interval or limit compares false with every clock reading: the wait would never end.
    with pytest.raises(StellaOpsError, match=r"^health checks: interval must be a number from 0 to 3600"):
        run_checks([{"type": "tcp", "port": 1}], retries=1, interval=value)
    with pytest.raises(StellaOpsError, match=r"^health check #1: field timeout must be a number"):
        normalize_check({"type": "tcp", "port": 1, "timeout": value})
    for field in ("within", "interval", "timeout"):
        with pytest.raises(StellaOpsError, match=rf"^smoke test #1 \(s\): field {field} must be a number"):
            normalize({"name": "s", "type": "http", "url": "http://127.0.0.1:1/", field: value}, 0)
    for field in ("threshold", "inconclusive_limit", "hold_limit"):
        gate = {"name": "g", "query": "up", "threshold": 1, field: value}
        with pytest.raises(StellaOpsError, match=rf"^gates\[0\]\.{field} \(gate g\) must be a number"):
            gate_from_dict(gate, "gates[0]")
