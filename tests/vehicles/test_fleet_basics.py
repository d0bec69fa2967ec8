"""MavsdkFleet without vehicles: endpoint errors, timeouts scaled by the speed factor."""

from __future__ import annotations

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
