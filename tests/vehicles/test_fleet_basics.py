"""MavsdkFleet without vehicles: endpoint errors, timeouts scaled by the speed factor."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from sitl.ports import free_udp_block
from vehicles.errors import ConnectionFailed, UnknownVehicle
from vehicles.mavsdk_backend import MavsdkFleet
from vehicles.mavsdk_backend._clock import VehicleClock, time_boot_ms


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
    timeout. The fleet must heartbeat at least once per vehicle second instead, and find out the
    speed-up by itself: nobody tells it here."""
    from sitl import SimFleet, VehicleSpec
    from sitl.ports import free_sim_ports

    speed = 30.0
    ports = free_sim_ports(1)
    async with SimFleet([VehicleSpec("quad", 60.17, 24.94, 10.0)], ports=ports, speed_factor=speed,
                        stream_profile="gcs") as sim, \
            MavsdkFleet(f"udpin://127.0.0.1:{ports.gcs_target_port}") as fleet:
        await fleet.vehicle(1, timeout_s=60.0)
        sim_vehicle = sim.vehicles[0]
        worst_gap_s = 0.0
        # Over the fleet's whole estimate window (3 wall seconds): the rate the simulator really ran
        # at, which on a busy host is below the one asked for (it gives time up rather than burst).
        wall_0, sim_0 = time.monotonic(), sim.now_s()
        t_end = wall_0 + 3.0  # 90 vehicle seconds
        while time.monotonic() < t_end:
            await asyncio.sleep(0.02)
            heard = [link.gcs_heartbeat_s for link in sim_vehicle.links if link.gcs_heartbeat_s is not None]
            assert heard, "the vehicle never heard a ground station"
            worst_gap_s = max(worst_gap_s, sim.now_s() - max(heard))
        ran_x = (sim.now_s() - sim_0) / (time.monotonic() - wall_0)
        assert worst_gap_s < 3.0, f"{worst_gap_s:.1f} vehicle seconds without a GCS heartbeat"
        assert ran_x > 10.0, f"the simulator ran at {ran_x:.1f}x of {speed:g}x: too busy a host to tell"
        assert fleet.vehicle_speed_factor(1) == pytest.approx(ran_x, rel=0.1)
        assert fleet.speed_factor == pytest.approx(ran_x, rel=0.1)
        assert fleet.wall_s(30.0, floor_s=0.0, sysid=1) == pytest.approx(30.0 / ran_x, rel=0.1)


def test_a_vehicle_clock_follows_its_rate_over_a_sliding_window() -> None:
    clock = VehicleClock()
    assert clock.factor is None
    for i in range(200):  # 4 s at 1x, one sample per 20 ms
        clock.observe(i * 0.02, 5_000 + i * 20)
    assert clock.factor == pytest.approx(1.0)
    for i in range(200, 400):  # then 3x (a PX4 SIH rover speeds up once armed)
        clock.observe(i * 0.02, 5_000 + 4_000 + (i - 200) * 60)
    assert clock.factor == pytest.approx(3.0)
    clock.observe(8.02, 100)  # rebooted: old samples no longer apply
    clock.observe(8.52, 100 + 5_000)
    assert clock.factor == pytest.approx(10.0)


def test_time_boot_ms_is_read_from_truncated_payloads() -> None:
    assert time_boot_ms(33, (123456).to_bytes(4, "little") + b"\x01") == 123456
    assert time_boot_ms(30, b"\x10") == 16  # MAVLink 2 cut the trailing zero bytes
    assert time_boot_ms(2, bytes(8) + (77).to_bytes(4, "little")) == 77
    assert time_boot_ms(0, b"\x01\x02\x03\x04") is None  # HEARTBEAT carries no clock
