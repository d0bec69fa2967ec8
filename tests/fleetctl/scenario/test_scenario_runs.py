"""The short scenarios of scenarios/ end to end through the command line (the built-in simulator or
real PX4, the embedded broker, SQLite, the real service), then `fleetctl report` on a finished run:
the same KPIs from the store, the events and the tracks, and the expectations checked again."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from vehicles_harness import SitlChoice

from fleetctl.cli import main

pytestmark = [pytest.mark.sitl]
SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"


def px4_args(sitl_options: SitlChoice) -> list[str]:
    if sitl_options.backend != "px4":
        return []
    reason = sitl_options.px4_skip_reason()
    if reason:
        pytest.skip(reason)
    return ["--px4-dir", str(sitl_options.px4_dir)]


def junit_cases(path: Path) -> dict[str, str]:
    """Each test case's name -> passed, failure or skipped."""
    cases = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "skipped"):
            if case.find(tag) is not None:
                outcome = tag
        cases[case.attrib["name"]] = outcome
    return cases


def test_the_smoke_scenario_passes_and_its_report_can_be_redrawn(sitl_options: SitlChoice, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "smoke"
    code = main(["scenario", "run", str(SCENARIOS / "smoke.toml"), "--out", str(out), "--plain",
                 *px4_args(sitl_options)])
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
    assert "scenario smoke: PASSED" in text
    for name in ("report.json", "map.png", "tracks.csv", "junit.xml", "fleet.db", "scenario.toml", "site/site.toml"):
        assert (out / name).is_file(), name
    cases = junit_cases(out / "junit.xml")
    assert set(cases.values()) == {"passed"}
    assert {"all orders terminal", "no order delivered twice", "no no-fly zone incursion",
            "order S-1 ends delivered", "order S-2 ends delivered"} <= set(cases)
    data = json.loads((out / "report.json").read_text())
    assert data["scenario"]["passed"] is True
    assert data["kpis"]["orders"]["delivered"] == 2
    assert {o["vehicle_id"] for o in data["orders"]} == {"quad-1", "robot-1"}

    # the report again, from the folder alone
    again = tmp_path / "again"
    (out / "map.png").unlink()
    assert main(["report", str(out), "--out", str(again)]) == 0
    rebuilt = json.loads((again / "report.json").read_text())
    assert rebuilt["kpis"] == data["kpis"]
    assert [(o["order_id"], o["state"], o["vehicle_id"], o["delivered_at"]) for o in rebuilt["orders"]] == \
        [(o["order_id"], o["state"], o["vehicle_id"], o["delivered_at"]) for o in data["orders"]]
    assert rebuilt["scenario"]["checks"] == data["scenario"]["checks"]
    assert (again / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert junit_cases(again / "junit.xml") == cases

    # a stricter expectation, checked on the same run by `fleetctl report`: it fails, and says so
    strict = tmp_path / "strict"
    shutil.copytree(out, strict)
    toml = (strict / "scenario.toml").read_text()
    (strict / "scenario.toml").write_text(toml.replace('S-1 = "delivered"', 'S-1 = "returned"'))
    capsys.readouterr()
    assert main(["report", str(strict)]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert junit_cases(strict / "junit.xml")["order S-1 ends returned"] == "failure"
    assert (strict / "map.png").is_file()


@pytest.mark.slow
def test_an_order_cancelled_in_flight_comes_back(sitl_options: SitlChoice, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cancel"
    code = main(["scenario", "run", str(SCENARIOS / "cancel-in-flight.toml"), "--out", str(out), "--plain",
                 *px4_args(sitl_options)])
    text = capsys.readouterr().out
    assert code == 0, text[-3000:]
    data = json.loads((out / "report.json").read_text())
    action = data["scenario"]["actions"][0]
    assert action["status"] == "done"
    assert action["detail"] == "on quad-1"
    assert [o["state"] for o in data["orders"]] == ["returned"]
