"""The checks of a scenario run as a JUnit XML file, the format CI systems show test results in: one
test suite per scenario, one test case per expectation and per action (an action the backend cannot
do is a skipped test case, with why)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

from fleetctl.scenario.checks import Check


def junit_xml(suite: str, checks: Sequence[Check], *, time_s: float = 0.0,
              properties: Mapping[str, str] | None = None) -> ET.ElementTree[ET.Element]:
    failures = sum(1 for c in checks if c.verdict == "failed")
    skipped = sum(1 for c in checks if c.verdict == "skipped")
    counts = {"tests": str(len(checks)), "failures": str(failures), "errors": "0", "skipped": str(skipped),
              "time": f"{time_s:.1f}"}
    root = ET.Element("testsuites", {"name": "fleetctl scenarios", **counts})
    node = ET.SubElement(root, "testsuite", {"name": suite, **counts})
    if properties:
        props = ET.SubElement(node, "properties")
        for key, value in properties.items():
            ET.SubElement(props, "property", {"name": key, "value": value})
    for check in checks:
        case = ET.SubElement(node, "testcase", {"classname": f"scenario.{suite}", "name": check.name, "time": "0"})
        if check.verdict == "failed":
            ET.SubElement(case, "failure", {"message": check.message, "type": "ExpectationFailed"}).text = \
                check.message
        elif check.verdict == "skipped":
            ET.SubElement(case, "skipped", {"message": check.message})
        elif check.message:
            ET.SubElement(case, "system-out").text = check.message
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, suite: str, checks: Sequence[Check], *, time_s: float = 0.0,
                properties: Mapping[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    junit_xml(suite, checks, time_s=time_s, properties=properties).write(path, encoding="utf-8",
                                                                         xml_declaration=True)
    return path
