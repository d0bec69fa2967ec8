"""`python -m sitl`: fault specs, vehicle placement on a site's pads, and a short real run."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from planner.geo import LatLon, haversine_m
from sitl.cli import build_parser, main, parse_fault, vehicle_specs
from sitl.errors import BadFaultSpec
from sitl.ports import free_sim_ports

REPO = Path(__file__).resolve().parents[2]
HELSINKI = REPO / "sitl" / "worlds" / "helsinki"


def test_parse_fault() -> None:
    plan = parse_fault("link_loss:3:at=60:duration=10")
    assert (plan.kind, plan.instance, plan.at_s, plan.args) == ("link_loss", 3, 60.0, {"duration": "10"})
    assert parse_fault("refuse_arm:0:reason=Compass not calibrated").args == {"reason": "Compass not calibrated"}
    for bad in ("link_loss", "meteor:0", "link_loss:x", "link_loss:0:duration", "battery_drop:0:percent=lots"):
        with pytest.raises(BadFaultSpec):
            parse_fault(bad)


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--quads", "--rovers", "--site", "--speed", "--stream-profile", "--target-host", "--gcs-port",
                   "--api-target-base", "--gcs-listen-base", "--api-listen-base", "--fault", "link_loss:I",
                   "--dl-loss-timeout", "--bind-host"):
        assert option in out, option


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_default_specs_without_site() -> None:
    specs = vehicle_specs(_args("--quads", "2", "--rovers", "1", "--home", "60.0,25.0,5"))
    assert [s.kind for s in specs] == ["quad", "quad", "rover"]
    assert [s.instance for s in specs] == [0, 1, 2]
    assert (specs[0].home_lat_deg, specs[0].home_lon_deg, specs[0].home_alt_amsl_m) == (60.0, 25.0, 5.0)
    assert 4.5 < haversine_m(specs[0].home_lat_deg, specs[0].home_lon_deg,
                             specs[1].home_lat_deg, specs[1].home_lon_deg) < 5.5


@pytest.mark.skipif(not (HELSINKI / "site.toml").exists(), reason="bundled site not present")
def test_specs_on_site_pads() -> None:
    from planner.site import load_site

    site = load_site(HELSINKI)
    specs = vehicle_specs(_args("--site", str(HELSINKI), "--quads", "3", "--rovers", "2"))
    pads = [(p.position.lat_deg, p.position.lon_deg) for d in site.depots.values() for p in d.pads]
    assert len(specs) == 5
    for spec in specs:
        nearest = min(haversine_m(spec.home_lat_deg, spec.home_lon_deg, *pad) for pad in pads)
        assert nearest < 30.0  # on a pad, or a few metres beside one when pads run out
    assert specs[0].model is not None
    assert specs[0].model.kind == "drone"


def test_site_without_depots_starts_at_origin() -> None:
    from sitl.cli import _homes

    site = SimpleNamespace(depots={}, origin=LatLon(60.2, 24.9, 7.0))
    homes = _homes(_args(), site, 2)
    assert homes[0] == (60.2, 24.9, 7.0)
    assert homes[1] != homes[0]


def test_run_for_a_few_sim_seconds() -> None:
    ports = free_sim_ports(2)
    cmd = [sys.executable, "-m", "sitl", "run", "--quads", "1", "--rovers", "1", "--speed", "20",
           "--duration", "10", "--target-host", "127.0.0.1", "--bind-host", "127.0.0.1",
           "--gcs-port", str(ports.gcs_target_port), "--api-target-base", str(ports.api_target_base),
           "--gcs-listen-base", str(ports.gcs_listen_base), "--api-listen-base", str(ports.api_listen_base),
           "--fault", "battery_drop:1:at=2:percent=30"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sum(line.startswith("sysid") for line in lines) == 2
    assert any("fault battery_drop on instance 1" in line for line in lines)
