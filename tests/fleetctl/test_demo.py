"""`fleetctl demo`: which vehicles fly, the synthetic order stream, the command's refusals, and a short
demo day end to end (the built-in simulator, or real PX4 with --sitl px4; the embedded broker; SQLite
in a temporary folder; the real service)."""

from __future__ import annotations

import io
import json
import math
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from vehicles_harness import SitlChoice

from fleetctl.cli import main
from fleetctl.demo import DemoOptions, run_demo
from fleetctl.demo.fleet import by_kind, choose_vehicles, site_with_fleet
from fleetctl.demo.orders import ROBOT_RADIUS_M, WINDOW_MIN, order_stream
from fleetctl.demo.watch import TERMINAL
from fleetctl.errors import ConfigError
from fleetctl.orders.validate import OrderValidator, parse_order
from planner.site import Site, load_site
from sitl.worlds import bundled_site_path

SITE_DIR = bundled_site_path("helsinki")


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(SITE_DIR)


def test_a_few_vehicles_spread_over_the_depots(site: Site) -> None:
    assert by_kind(site, "drone") == ["quad-1", "quad-4", "quad-2", "quad-5", "quad-3", "quad-6"]
    assert choose_vehicles(site, 2, 1) == ["quad-1", "quad-4", "robot-1"]  # in fleet order
    assert len(choose_vehicles(site, None, None)) == len(site.fleet)
    assert choose_vehicles(site, 0, 2) == ["robot-1", "robot-3"]
    with pytest.raises(ConfigError, match=r"--quads 7: site 'helsinki' has 6 drones"):
        choose_vehicles(site, 7, None)
    with pytest.raises(ConfigError, match="no vehicles"):
        choose_vehicles(site, 0, 0)


def test_the_demo_site_lists_only_the_chosen_vehicles(site: Site, tmp_path: Path) -> None:
    copy = site_with_fleet(SITE_DIR, ["quad-4", "robot-1"], tmp_path / "site")
    demo = load_site(copy)
    assert [e.vehicle_id for e in demo.fleet] == ["quad-4", "robot-1"]
    assert demo.drop_points.keys() == site.drop_points.keys()
    original = tomllib.loads((SITE_DIR / "site.toml").read_text())
    copied = tomllib.loads((copy / "site.toml").read_text())
    assert {k: v for k, v in copied.items() if k != "fleet"} == {k: v for k, v in original.items() if k != "fleet"}


def test_the_order_stream_is_seeded_valid_and_gives_both_kinds_work(site: Site) -> None:
    kwargs = {"hours": 2.0, "per_hour": 20.0, "drones": True, "robots": True,
              "robot_depots": frozenset({"erottaja", "kruununhaka"})}
    orders = order_stream(site, seed=7, **kwargs)  # type: ignore[arg-type]
    assert orders == order_stream(site, seed=7, **kwargs)  # type: ignore[arg-type]
    assert orders != order_stream(site, seed=8, **kwargs)  # type: ignore[arg-type]
    assert 20 <= len(orders) <= 60  # Poisson, mean 40
    assert all(0.0 < o.at_s < 7200.0 for o in orders)
    assert [o.at_s for o in orders] == sorted(o.at_s for o in orders)
    assert len({o.order_id for o in orders}) == len(orders)
    heavy = [o for o in orders if o.weight_kg > 2.5]
    assert heavy
    assert len(heavy) < len(orders) / 2
    for o in orders:
        low, high = WINDOW_MIN[o.priority]
        assert low * 60 <= o.window_s <= high * 60
        point = site.drop_points[o.dropoff]
        if o in heavy:  # robots only: a medium parcel to a robot drop point near a depot
            assert o.size == "medium"
            assert point.robot_ok
            assert min(math.dist(point.xy_m, d.xy_m) for d in site.depots.values()) <= ROBOT_RADIUS_M
        else:
            assert point.drone_ok
    # what the shop sends is an Order the service accepts (the window opens when it is sent)
    now = datetime.now(UTC)
    validator = OrderValidator(site)
    for o in orders[:15]:
        accepted = validator.validate(parse_order(json.dumps(o.payload(site.name, now))), now)
        if o in heavy:
            assert accepted.kinds == ("robot",)
        else:
            assert "drone" in accepted.kinds
    assert order_stream(site, seed=1, hours=1.0, per_hour=0.0, drones=True, robots=True) == []
    drones_only = order_stream(site, seed=1, hours=2.0, per_hour=20.0, drones=True, robots=False)
    assert all(o.weight_kg <= 2.5 and o.handoff == "drone_release" for o in drones_only)


@pytest.mark.parametrize("argv", [["--quads", "7"], ["--robots", "5"], ["--speed", "0"], ["--hours", "-1"],
                                  ["--quads", "0", "--robots", "0"], ["--store", "mysql://x"]])
def test_the_command_refuses_what_cannot_be_served(argv: list[str], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path / "out"), *argv]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.sitl
@pytest.mark.timeout(600)  # on real PX4 (4x for 3 instances): 6 simulated minutes, the drain and PX4's start
async def test_a_short_demo_day_ends_with_every_order_settled_and_a_report(sitl_options: SitlChoice,
                                                                         tmp_path: Path) -> None:
    px4_dir = None
    if sitl_options.backend == "px4":
        reason = sitl_options.px4_skip_reason()
        if reason:
            pytest.skip(reason)
        px4_dir = sitl_options.px4_dir
    out = io.StringIO()
    console = Console(file=out, width=100)  # not a terminal: plain progress lines, never wrapped
    # seed 4: 3 orders in the first 6 simulated minutes, one of them heavy (a robot's) and close
    options = DemoOptions(hours=0.1, orders_per_hour=30.0, seed=4, quads=2, robots=1, out=tmp_path / "run",
                          px4_dir=px4_dir)
    result = await run_demo(options, console)

    assert result.exit_code == 0
    text = out.getvalue()
    assert "\x1b[" not in text  # no terminal control: a file gets plain lines
    assert re.search(r"^\[0:0\d:\d\d / 0:06:00 (orders|drain)\] orders \d+ sent", text, re.MULTILINE)
    data = json.loads(result.report_path.read_text())
    assert data == result.data
    orders = data["orders"]
    assert len(orders) >= 2
    assert all(o["state"] in TERMINAL for o in orders), [(o["order_id"], o["state"]) for o in orders]
    k = data["kpis"]["orders"]
    assert k["received"] == len(orders)
    assert k["delivered"] + k["failed"] + k["cancelled"] + k["rejected"] == k["received"]
    assert k["open"] == 0
    assert k["accepted"] == k["received"] - k["rejected"]
    assert k["delivered"] >= 1
    delivered_by = {o["vehicle_id"].split("-")[0] for o in orders if o["state"] == "delivered"}
    assert delivered_by == {"quad", "robot"}  # both kinds got work
    assert data["timing"]["drained"] is True
    assert data["kpis"]["zone_incursions"]["samples"] == 0
    for o in orders:
        if o["state"] == "delivered":
            assert o["delivery_time_s"] > 0
            assert (o["late_s"] <= 0) == (o["outcome"] == "on_time")
    assert {v["vehicle_id"] for v in data["vehicles"]} == {"quad-1", "quad-4", "robot-1"}
    assert sum(v["distance_km"] for v in data["vehicles"]) > 0.2
    png = result.map_path
    assert png is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    height, width, _ = matplotlib.image.imread(png).shape
    assert height > 500
    assert width > 300
    assert (result.out_dir / "tracks.csv").read_text().startswith("t_s,vehicle_id,x_m,y_m,alt_m\n")
