"""Fail CI when the JUnit reports show no test run, a failure or an error."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET


def main(paths: list[str]) -> int:
    total = failed = 0
    for path in paths:
        root = ET.parse(path).getroot()
        for suite in root.iter("testsuite"):
            total += int(suite.get("tests", 0)) - int(suite.get("skipped", 0))
            failed += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        print(f"ci: {path}: {sum(int(s.get('tests', 0)) for s in root.iter('testsuite'))} tests")
    if total == 0:
        print("ci: no test ran", file=sys.stderr)
        return 1
    if failed:
        print(f"ci: {failed} tests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
