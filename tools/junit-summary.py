#!/usr/bin/env python3
"""Print the failed and errored tests of a JUnit XML report, each with the end of its message.

    tools/junit-summary.py REPORT.xml

Used by `make test-full` after a failed Molecule run, so that the last lines of the output name
what failed. Exits 0 (it only reports); a missing report is said as such.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def failures(path: Path) -> list[tuple[str, str]]:
    found = []
    # The report is the one our own pytest run just wrote.
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                name = f"{case.get('classname', '')}::{case.get('name', '')}"
                text = (node.get("message") or "") + "\n" + (node.text or "")
                found.append((f"{kind.upper()} {name}", text.strip()))
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("tests/output/molecule-verify.xml")
    if not path.is_file():
        print(f"junit-summary: no report at {path} (the scenario failed before its tests)")
        return 0
    found = failures(path)
    print(f"junit-summary: {len(found)} failed test(s) in {path}")
    for title, text in found:
        lines = text.splitlines()
        print(f"--- {title}")
        print("\n".join(lines[-25:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
