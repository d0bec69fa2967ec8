"""`fleetctl plan` end to end on the bundled site: output, map picture, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetctl.cli import main
from planner.site import load_site
from sitl.worlds import bundled_site_path


def _zone_inside_point() -> str:
    site = load_site(bundled_site_path())
    zone = max((z for z in site.zones if z.is_active(None)), key=lambda z: z.shape.area)
    pt = zone.shape.representative_point()
    lat, lon = site.frame.to_wgs84(pt.x, pt.y)
    return f"{lat:.7f},{lon:.7f}"


def test_plan_prints_both_vehicle_kinds_and_writes_a_map(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_png = tmp_path / "plan.png"
    assert main(["plan", "--json", "--map", str(out_png)]) == 0
    result = json.loads(capsys.readouterr().out)
    kinds = {r["kind"]: r for r in result["results"].values()}
    assert set(kinds) == {"drone", "robot"}
    ok = [r for r in kinds.values() if "error" not in r]
    assert ok, result
    for r in ok:
        assert r["one_way_m"] > 0
        assert r["round_trip_s"] > r["outbound_s"] > 0
        assert r["round_trip_wh"] > r["outbound_wh"] > 0
        assert r["path_wgs84"][0] != r["path_wgs84"][-1]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out_png.stat().st_size > 20_000


def test_plan_between_depots_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    site = load_site(bundled_site_path())
    a, b = list(site.depots)[:2]
    assert main(["plan", "--from", a, "--to", b, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["from"] == a
    assert result["to"] == b


def test_goal_inside_a_no_fly_zone_names_the_zone(capsys: pytest.CaptureFixture[str]) -> None:
    main(["plan", "--to", _zone_inside_point(), "--json"])
    result = json.loads(capsys.readouterr().out)
    drone = result["results"]["drone"]
    assert drone["error_type"] == "InsideNoFlyZone"
    assert "no-fly zone" in drone["error"]


def test_unknown_place_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--to", "no-such-place"]) == 2
    err = capsys.readouterr().err
    assert "no-such-place" in err
    assert "Traceback" not in err


def test_too_heavy_parcel_is_refused_per_vehicle(capsys: pytest.CaptureFixture[str]) -> None:
    site = load_site(bundled_site_path())
    heaviest = max(m.max_payload_kg for m in site.vehicle_models.values())
    assert main(["plan", "--payload-kg", str(heaviest + 1), "--json"]) == 2
    result = json.loads(capsys.readouterr().out)
    assert all("error" in r for r in result["results"].values())


def test_drop_point_that_takes_no_drones_is_refused_for_drones_only(capsys: pytest.CaptureFixture[str]) -> None:
    site = load_site(bundled_site_path())
    name = next(dp.name for dp in site.drop_points.values() if dp.robot_ok and not dp.drone_ok)
    assert main(["plan", "--to", name, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)["results"]
    assert "drone_ok = false" in result["drone"]["error"]
    assert "error" not in result["robot"]
