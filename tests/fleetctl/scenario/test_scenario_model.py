"""Scenario files: what a good one reads as, and a typed ScenarioError naming the file and the key for
every kind of mistake; every scenario shipped in scenarios/ loads and names only what its site has."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from fleetctl.cli import main
from fleetctl.demo.fleet import choose_vehicles
from fleetctl.errors import ConfigError, ScenarioError
from fleetctl.scenario import load_scenario
from fleetctl.scenario.model import AddZone, BatteryDrop, Cancel
from fleetctl.scenario.run import check_names, site_dir
from planner.site import Site, load_site

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
GOOD = """
name = "t"
speed = 25

[fleet]
vehicles = ["quad-1"]

[[orders.items]]
id = "O-1"
at_s = 3
dropoff = "mikonkatu-1"
weight_kg = 1.0

[[actions]]
at_s = 0
when = "in_flight"
do = "battery_drop"
carrying = "O-1"
percent = 60

[[actions]]
at_s = 30
do = "add_zone"
zone_id = "z"
circle = { drop_point = "mikonkatu-1", radius_m = 50 }

[[actions]]
at_s = 40
do = "cancel"
order = "O-1"

[expect]
on_time_min = 0.5
orders = { O-1 = ["returned", "failed"] }
orders_went_through = { O-1 = ["returning"] }
"""


@functools.cache
def site_at(folder: Path) -> Site:
    return load_site(folder)


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_good_scenario_reads_as_typed_models(tmp_path: Path) -> None:
    s = load_scenario(write(tmp_path, GOOD))
    assert s.name == "t"
    assert s.speed == 25.0
    assert s.backend == "builtin"
    assert s.fleet.vehicles == ["quad-1"]
    assert [o.id for o in s.order_items()] == ["O-1"]
    assert isinstance(s.actions[0], BatteryDrop)
    assert s.actions[0].carrying == "O-1"
    assert isinstance(s.actions[1], AddZone)
    assert s.actions[1].circle is not None
    assert isinstance(s.actions[2], Cancel)
    assert s.expect.all_orders_terminal
    assert s.expect.no_double_delivery
    assert s.expect.no_zone_incursion
    assert s.expect.orders == {"O-1": ["returned", "failed"]}


@pytest.mark.parametrize(("change", "key", "why"), [
    (("speed = 25", "speed = -1"), "speed", "greater than 0"),
    (('do = "cancel"', 'do = "explode"'), "actions.2", "does not match any of the expected tags"),
    (("percent = 60", "percent = 160"), "actions.0.percent", "less than or equal to 100"),
    (('carrying = "O-1"', 'vehicle = "quad-1"\ncarrying = "O-1"'), "actions.0", "exactly one of vehicle, carrying"),
    (('when = "in_flight"\n', ""), "actions.0", 'carrying needs when = "in_flight"'),
    (('circle = { drop_point = "mikonkatu-1", radius_m = 50 }', 'circle = { x_m = 1, radius_m = 50 }'),
     "actions.1.circle", "give x_m and y_m"),
    (('orders = { O-1 = ["returned", "failed"] }', 'orders = { O-1 = "lost" }'), "expect.orders.O-1",
     "Input should be 'delivered'"),
    (("weight_kg = 1.0", "weight_kg = 1.0\ncolour = 'red'"), "orders.items.0.colour", "Extra inputs"),
    (('id = "O-1"', 'id = "O 1"'), "orders.items.0.id", "should match pattern"),
    (('[fleet]\nvehicles = ["quad-1"]', '[fleet]\nvehicles = ["quad-1"]\nquads = 2'), "fleet", "not both"),
])
def test_each_mistake_is_a_scenario_error_naming_file_and_key(tmp_path: Path, change: tuple[str, str], key: str,
                                                               why: str) -> None:
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert why in caught.value.why
    assert isinstance(caught.value, ConfigError)


def test_unreadable_files_and_order_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot be read"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(ScenarioError, match="not valid TOML") as caught:
        load_scenario(write(tmp_path, 'name = "t"\norders = {'))
    assert caught.value.key == ""
    text = 'name = "t"\n[orders]\nfile = "o.jsonl"\n'
    with pytest.raises(ScenarioError, match=r"o\.jsonl cannot be read"):
        load_scenario(write(tmp_path, text))
    (tmp_path / "o.jsonl").write_text('{"id": "A", "at_s": 0, "dropoff": "mikonkatu-1", "weight_kg": 1}\n'
                                      '{"id": "B", "at_s": 5, "dropoff": "mikonkatu-1", "weight_kg": -1}\n')
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, text))
    assert caught.value.path.endswith("o.jsonl: line 2")
    assert caught.value.key == "weight_kg"
    (tmp_path / "o.jsonl").write_text('{"id": "A", "at_s": 0, "dropoff": "mikonkatu-1", "weight_kg": 1}\n\n')
    assert [o.id for o in load_scenario(write(tmp_path, text)).order_items()] == ["A"]
    with pytest.raises(ScenarioError, match="exactly one of"):
        load_scenario(write(tmp_path, 'name = "t"\n[orders]\nfile = "o.jsonl"\nper_hour = 3\nhours = 1\n'))


def test_names_the_site_does_not_have_are_refused_before_the_run(tmp_path: Path) -> None:
    site = site_at(site_dir(load_scenario(write(tmp_path, GOOD))))
    for old, new, key in [('dropoff = "mikonkatu-1"', 'dropoff = "nowhere"', "orders.items.0.dropoff"),
                          ('carrying = "O-1"', 'carrying = "O-9"', "actions.0.carrying"),
                          ('drop_point = "mikonkatu-1"', 'drop_point = "nowhere"', "actions.1.circle"),
                          ("orders = { O-1 =", "orders = { O-2 =", "expect.orders.O-2")]:
        s = load_scenario(write(tmp_path, GOOD.replace(old, new)))
        with pytest.raises(ScenarioError) as caught:
            check_names(s, s.order_items(), site, ["quad-1"])
        assert caught.value.key == key
    # a PIN to enter for an order that has none, and no PIN given
    s = load_scenario(write(tmp_path, GOOD + '\n[[actions]]\ndo = "enter_pin"\norder = "O-1"\n'))
    with pytest.raises(ScenarioError, match="no handoff_pin") as caught:
        check_names(s, s.order_items(), site, ["quad-1"])
    assert caught.value.key == f"actions.{len(s.actions) - 1}.pin"
    s = load_scenario(write(tmp_path, GOOD + '\n[[actions]]\ndo = "enter_pin"\norder = "O-1"\npin = "1234"\n'))
    check_names(s, s.order_items(), site, ["quad-1"])
    s = load_scenario(write(tmp_path, GOOD.replace('name = "t"', 'name = "t"\nsite = "atlantis"')))
    with pytest.raises(ScenarioError, match="bundled site") as caught:
        site_dir(s)
    assert caught.value.key == "site"


def test_the_command_refuses_a_bad_scenario_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD.replace("speed = 25", "speed = 0"))
    assert main(["scenario", "run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: speed:" in err.replace("\n", "")
    assert not (tmp_path / "out").exists()
    path = write(tmp_path, GOOD.replace('vehicles = ["quad-1"]', 'vehicles = ["quad-9"]'))
    assert main(["scenario", "run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert main(["report", str(tmp_path / "nothing-here")]) == 2
    assert "not the folder of a finished run" in capsys.readouterr().err.replace("\n", "")


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_loads_and_names_what_its_site_has(path: Path) -> None:
    s = load_scenario(path)
    assert s.name == path.stem
    site = site_at(site_dir(s))
    vehicles = choose_vehicles(site, s.fleet.quads, s.fleet.robots, s.fleet.vehicles)
    check_names(s, s.order_items(), site, vehicles)
    assert s.description
    readme = (SCENARIOS / "README.md").read_text(encoding="utf-8")
    assert f"{path.name}" in readme


def test_the_shipped_scenarios_cover_every_sorties_contingency() -> None:
    done = {a.do for p in SCENARIOS.glob("*.toml") for a in load_scenario(p).actions}
    assert {"battery_drop", "add_zone", "link_loss", "refuse_arm", "cancel", "gripper_jam", "wind", "enter_pin"} <= done
    handoffs = {o.handoff for p in SCENARIOS.glob("*.toml") for o in load_scenario(p).order_items()}
    assert "pin" in {h.value for h in handoffs if h is not None}
