"""Scenario runs (`fleetctl scenario run FILE.toml`): a site, a fleet, orders, a timeline of faults
and operator actions, and expectations, run end to end on the simulator (or PX4) and checked.

    model.py     the TOML file as typed models; ScenarioError (file, key) when it is wrong
    timeline.py  the actions at their simulated times (the service's Operator, or simulator faults)
    checks.py    the expectations, checked against the store, the events and the tracks
    junit.py     the checks as JUnit XML, for CI
    run.py       one run: a demo run with the scenario's settings and hooks, then the checks
"""

from fleetctl.scenario.model import Scenario, load_scenario
from fleetctl.scenario.run import ScenarioResult, run_scenario, run_scenario_file

__all__ = ["Scenario", "ScenarioResult", "load_scenario", "run_scenario", "run_scenario_file"]
