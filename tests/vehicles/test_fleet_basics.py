"""MavsdkFleet without vehicles: endpoint errors, timeouts scaled by the speed factor."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from sitl.ports import free_udp_block
from vehicles.errors import ConnectionFailed, UnknownVehicle
from vehicles.mavsdk_backend import MavsdkFleet


async def test_a_port_in_use_is_a_connection_failure() -> None:
    port = free_udp_block(1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        with pytest.raises(ConnectionFailed) as failed:
            async with MavsdkFleet(f"udpin://127.0.0.1:{port}"):
                pass
    assert failed.value.url.endswith(str(port))


async def test_waiting_for_an_absent_vehicle_times_out_in_scaled_time() -> None:
    port = free_udp_block(1)
    async with MavsdkFleet(f"udpin://127.0.0.1:{port}", speed_factor=20.0, min_wall_timeout_s=0.2) as fleet:
        assert fleet.wall_s(10.0) == pytest.approx(0.5)
        assert fleet.wall_s(1.0) == pytest.approx(0.2)  # never below the wall floor
        t0 = time.monotonic()
        with pytest.raises(UnknownVehicle) as unknown:
            await fleet.vehicle("drone-7", timeout_s=10.0)
        assert 0.4 < time.monotonic() - t0 < 3.0
        assert unknown.value.key == "drone-7"
        assert fleet.vehicles == {}


def test_speed_factor_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed_factor"):
        MavsdkFleet("udpin://127.0.0.1:1", speed_factor=0)


async def test_gcs_heartbeat_keeps_pace_with_vehicle_time() -> None:
    """At 30x a 1 Hz wall heartbeat is one per 30 vehicle seconds: past PX4's 10 s data-link-loss
    timeout. The fleet must heartbeat at least once per vehicle second instead."""
    from sitl import SimFleet, VehicleSpec
    from sitl.ports import free_sim_ports

    speed = 30.0
    ports = free_sim_ports(1)
    async with SimFleet([VehicleSpec("quad", 60.17, 24.94, 10.0)], ports=ports, speed_factor=speed,
                        stream_profile="gcs") as sim, \
            MavsdkFleet(f"udpin://127.0.0.1:{ports.gcs_target_port}", speed_factor=speed) as fleet:
        await fleet.vehicle(1, timeout_s=60.0)
        sim_vehicle = sim.vehicles[0]
        worst_gap_s = 0.0
        t_end = time.monotonic() + 2.0  # 60 vehicle seconds
        while time.monotonic() < t_end:
            await asyncio.sleep(0.02)
            heard = [link.gcs_heartbeat_s for link in sim_vehicle.links if link.gcs_heartbeat_s is not None]
            assert heard, "the vehicle never heard a ground station"
            worst_gap_s = max(worst_gap_s, sim.now_s() - max(heard))
        assert worst_gap_s < 3.0, f"{worst_gap_s:.1f} vehicle seconds without a GCS heartbeat"
