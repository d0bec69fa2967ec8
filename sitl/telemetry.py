"""Message payloads of a vehicle's streams, built from one `Sample` of its state per step.

Values are given in each message's declaration order (pymavlink's `*_encode` order) and packed
by `sitl.codec`. Field values follow what real PX4 SIH sends where the captures show them
(SYS_STATUS sensor bits, 16.2 V battery, GPS fix 3 with 10 satellites, AUTOPILOT_VERSION 0xE8FF).
"""

from __future__ import annotations

import math
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pymavlink.dialects.v20 import development as mavlink2

from sitl.codec import MessageSpec, spec_for

MAV_AUTOPILOT_PX4 = 12
MAV_TYPE_QUADROTOR = 2
MAV_TYPE_GROUND_ROVER = 10
# SYS_STATUS as real PX4 SIH reports it: RC receiver enabled but unhealthy (no RC), the rest healthy.
SENSORS_PRESENT = 50348079
SENSORS_ENABLED = 50413615
SENSORS_HEALTH = 320915519
SENSOR_GPS = 0x20
CAPABILITIES = 0xE8FF
FLIGHT_SW_VERSION = (1 << 24) | (16 << 16) | (0 << 8) | 0xFF  # "v1.16.0 dev": PX4's build had no tag
UINT16_MAX = 65535
INT32_MAX = 2**31 - 1


class Sample(NamedTuple):
    """One vehicle's state at one instant, in the units MAVLink wants.

    A named tuple rather than a frozen dataclass: one is built per vehicle per simulator step that
    sends anything, and a tuple is built in well under half the time.
    """

    time_boot_ms: int
    time_usec: int
    lat_e7: int
    lon_e7: int
    alt_amsl_m: float
    rel_alt_m: float
    north_m: float
    east_m: float
    down_m: float
    vn_m_s: float
    ve_m_s: float
    vd_m_s: float
    roll_rad: float
    pitch_rad: float
    yaw_rad: float
    groundspeed_m_s: float
    battery_fraction: float
    voltage_v: float
    current_a: float
    consumed_mah: float
    energy_j: float
    landed_state: int
    custom_mode: int
    intended_mode: int
    standard_mode: int
    armed: bool
    base_mode: int
    system_status: int
    gps_ok: bool
    is_quad: bool
    home_lat_e7: int
    home_lon_e7: int
    home_alt_m: float
    home_north_m: float
    home_east_m: float
    home_down_m: float
    target_north_m: float
    target_east_m: float
    target_down_m: float
    mission_seq: int
    mission_total: int
    mission_state: int
    mission_mode: int
    sysid: int
    event_sequence: tuple[int, int] = (0, 1)  # CURRENT_EVENT_SEQUENCE (sequence, flags)

    @property
    def heading_cdeg(self) -> int:
        return int(math.degrees(self.yaw_rad) % 360.0 * 100) % 36000

    @property
    def quaternion(self) -> tuple[float, float, float, float]:
        cr, sr = math.cos(self.roll_rad / 2), math.sin(self.roll_rad / 2)
        cp, sp = math.cos(self.pitch_rad / 2), math.sin(self.pitch_rad / 2)
        cy, sy = math.cos(self.yaw_rad / 2), math.sin(self.yaw_rad / 2)
        return (
            cr * cp * cy + sr * sp * sy,
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
        )


Builder = Callable[[Sample], Sequence[Any]]


def _heartbeat(s: Sample) -> Sequence[Any]:
    mav_type = MAV_TYPE_QUADROTOR if s.is_quad else MAV_TYPE_GROUND_ROVER
    return (mav_type, MAV_AUTOPILOT_PX4, s.base_mode, s.custom_mode, s.system_status, 3)


def _attitude(s: Sample) -> Sequence[Any]:
    return (s.time_boot_ms, s.roll_rad, s.pitch_rad, s.yaw_rad, 0.0, 0.0, 0.0)


def _attitude_quaternion(s: Sample) -> Sequence[Any]:
    q = s.quaternion
    return (s.time_boot_ms, q[0], q[1], q[2], q[3], 0.0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0))


def _highres_imu(s: Sample) -> Sequence[Any]:
    press_hpa = _pressure_hpa(s.alt_amsl_m)
    return (
        s.time_usec, 0.0, 0.0, -9.81, 0.0, 0.0, 0.0, 0.21, 0.01, 0.43,
        press_hpa, 0.0, s.alt_amsl_m, 25.0, 0x1FFF, 0,
    )


def _global_position_int(s: Sample) -> Sequence[Any]:
    return (
        s.time_boot_ms,
        s.lat_e7,
        s.lon_e7,
        int(s.alt_amsl_m * 1000),
        int(s.rel_alt_m * 1000),
        int(s.vn_m_s * 100),
        int(s.ve_m_s * 100),
        int(s.vd_m_s * 100),
        s.heading_cdeg,
    )


def _local_position_ned(s: Sample) -> Sequence[Any]:
    return (s.time_boot_ms, s.north_m, s.east_m, s.down_m, s.vn_m_s, s.ve_m_s, s.vd_m_s)


_NAN21 = (math.nan,) * 21


def _odometry(s: Sample) -> Sequence[Any]:
    return (
        s.time_usec, 1, 8, s.north_m, s.east_m, s.down_m, s.quaternion, s.vn_m_s, s.ve_m_s, s.vd_m_s,
        0.0, 0.0, 0.0, _NAN21, _NAN21, 0, 6, 100,
    )


def _altitude(s: Sample) -> Sequence[Any]:
    return (s.time_usec, s.alt_amsl_m, s.alt_amsl_m, -s.down_m, s.rel_alt_m, math.nan, max(s.rel_alt_m, 0.0))


def _distance_sensor(s: Sample) -> Sequence[Any]:
    dist_cm = int(max(s.rel_alt_m, 0.0) * 100)
    return (s.time_boot_ms, 10, 4000, min(dist_cm, 4000), 0, 0, 25, 0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0), 0)


def _timesync(s: Sample) -> Sequence[Any]:
    return (0, s.time_usec * 1000)


def _vfr_hud(s: Sample) -> Sequence[Any]:
    throttle = (50 if s.is_quad else 30) if s.armed else 0
    return (s.groundspeed_m_s, s.groundspeed_m_s, s.heading_cdeg // 100, throttle, s.alt_amsl_m, -s.vd_m_s)


def _attitude_target(s: Sample) -> Sequence[Any]:
    return (s.time_boot_ms, 0, s.quaternion, 0.0, 0.0, 0.0, 0.5 if s.armed else 0.0)


def _position_target_local_ned(s: Sample) -> Sequence[Any]:
    return (
        s.time_boot_ms, 1, 0, s.target_north_m, s.target_east_m, s.target_down_m,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0, s.yaw_rad, 0.0,
    )


def _servo_output_raw(s: Sample) -> Sequence[Any]:
    pwm = 1500 if s.armed else 900
    n = 4 if s.is_quad else 2
    outs = [pwm] * n + [0] * (16 - n)
    return (s.time_usec & 0xFFFFFFFF, 0, *outs)


def _gps_raw_int(s: Sample) -> Sequence[Any]:
    fix, sats = (3, 10) if s.gps_ok else (0, 0)
    cog = s.heading_cdeg if s.groundspeed_m_s > 0.5 else UINT16_MAX
    return (
        s.time_usec, fix, s.lat_e7, s.lon_e7, int(s.alt_amsl_m * 1000), 70, 110,
        int(s.groundspeed_m_s * 100), cog, sats, int(s.alt_amsl_m * 1000), 300, 500, 200, 0, 0,
    )


def _sys_status(s: Sample) -> Sequence[Any]:
    health = SENSORS_HEALTH if s.gps_ok else SENSORS_HEALTH & ~SENSOR_GPS
    return (
        SENSORS_PRESENT, SENSORS_ENABLED, health, 98, round(s.voltage_v * 1000), int(s.current_a * 100),
        round(s.battery_fraction * 100), 0, 0, 0, 0, 0, 0, 0, 0, 1,
    )


def _extended_sys_state(s: Sample) -> Sequence[Any]:
    return (0, s.landed_state)


def _mission_current(s: Sample) -> Sequence[Any]:
    return (s.mission_seq, s.mission_total, s.mission_state, s.mission_mode)


def _estimator_status(s: Sample) -> Sequence[Any]:
    flags = 1023 if s.gps_ok else 0x0F
    return (s.time_usec, flags, 0.02, 0.05, 0.02, 0.07, 0.0, math.nan, 0.27, 0.07)


_ODID_ID = (0,) * 20


def _odid_location(s: Sample) -> Sequence[Any]:
    status = 2 if s.armed else 1
    return (
        0, 0, _ODID_ID, status, s.heading_cdeg, int(min(s.groundspeed_m_s, 254.0) * 4),
        int(-s.vd_m_s * 2), s.lat_e7, s.lon_e7, s.alt_amsl_m, s.alt_amsl_m, 0, s.rel_alt_m,
        10, 4, 3, 3, float(s.time_boot_ms % 3_600_000) / 1000.0, 1,
    )


def _odid_system(s: Sample) -> Sequence[Any]:
    return (
        0, 0, _ODID_ID, 0, 0, s.home_lat_e7, s.home_lon_e7, 1, 0, -1000.0, -1000.0, 0, 0,
        s.home_alt_m, int(time.time()) - 1_546_300_800,
    )


def _ping(s: Sample) -> Sequence[Any]:
    return (s.time_usec, (s.time_boot_ms // 1000) & 0xFFFFFFFF, 0, 0)


def _pressure_hpa(alt_amsl_m: float) -> float:
    return float(1013.25 * (1.0 - alt_amsl_m / 44330.0) ** 5.255)


def _scaled_pressure(s: Sample) -> Sequence[Any]:
    return (s.time_boot_ms, _pressure_hpa(s.alt_amsl_m), 0.0, 2500, 0)


def _system_time(s: Sample) -> Sequence[Any]:
    return (int(time.time() * 1e6), s.time_boot_ms)


_CELLS_UNUSED = (UINT16_MAX,) * 9


def _battery_status(s: Sample) -> Sequence[Any]:
    pct = round(s.battery_fraction * 100)
    charge_state = 1 if pct > 15 else (2 if pct > 7 else (3 if pct > 5 else 4))
    return (
        0, 1, 1, 32767, (round(s.voltage_v * 1000), *_CELLS_UNUSED), int(s.current_a * 100),
        int(s.consumed_mah), int(s.energy_j / 100.0), pct, 0, charge_state, (0, 0, 0, 0), 0, 0,
    )


def _current_mode(s: Sample) -> Sequence[Any]:
    return (s.standard_mode, s.custom_mode, s.intended_mode)


def _home_position(s: Sample) -> Sequence[Any]:
    return (
        s.home_lat_e7, s.home_lon_e7, int(s.home_alt_m * 1000), s.home_north_m, s.home_east_m,
        s.home_down_m, (1.0, 0.0, 0.0, 0.0), 0.0, 0.0, 0.0, s.time_usec,
    )


def _vibration(s: Sample) -> Sequence[Any]:
    return (s.time_usec, 0.01, 0.01, 0.02, 0, 0, 0)


def autopilot_version_values(sysid: int) -> Sequence[Any]:
    custom = (0, 0, 0, 111, 59, 62, 231, 2)
    return (
        CAPABILITIES, FLIGHT_SW_VERSION, FLIGHT_SW_VERSION, 101854463, 1, custom, custom,
        (0,) * 8, 0, 0, 5283920058631409231 + sysid, (0,) * 18,
    )


_BUILDERS: dict[str, tuple[type, Builder]] = {
    "HEARTBEAT": (mavlink2.MAVLink_heartbeat_message, _heartbeat),
    "ATTITUDE": (mavlink2.MAVLink_attitude_message, _attitude),
    "ATTITUDE_QUATERNION": (mavlink2.MAVLink_attitude_quaternion_message, _attitude_quaternion),
    "HIGHRES_IMU": (mavlink2.MAVLink_highres_imu_message, _highres_imu),
    "GLOBAL_POSITION_INT": (mavlink2.MAVLink_global_position_int_message, _global_position_int),
    "LOCAL_POSITION_NED": (mavlink2.MAVLink_local_position_ned_message, _local_position_ned),
    "ODOMETRY": (mavlink2.MAVLink_odometry_message, _odometry),
    "ALTITUDE": (mavlink2.MAVLink_altitude_message, _altitude),
    "DISTANCE_SENSOR": (mavlink2.MAVLink_distance_sensor_message, _distance_sensor),
    "TIMESYNC": (mavlink2.MAVLink_timesync_message, _timesync),
    "VFR_HUD": (mavlink2.MAVLink_vfr_hud_message, _vfr_hud),
    "ATTITUDE_TARGET": (mavlink2.MAVLink_attitude_target_message, _attitude_target),
    "POSITION_TARGET_LOCAL_NED": (mavlink2.MAVLink_position_target_local_ned_message, _position_target_local_ned),
    "SERVO_OUTPUT_RAW": (mavlink2.MAVLink_servo_output_raw_message, _servo_output_raw),
    "GPS_RAW_INT": (mavlink2.MAVLink_gps_raw_int_message, _gps_raw_int),
    "SYS_STATUS": (mavlink2.MAVLink_sys_status_message, _sys_status),
    "EXTENDED_SYS_STATE": (mavlink2.MAVLink_extended_sys_state_message, _extended_sys_state),
    "MISSION_CURRENT": (mavlink2.MAVLink_mission_current_message, _mission_current),
    "ESTIMATOR_STATUS": (mavlink2.MAVLink_estimator_status_message, _estimator_status),
    "OPEN_DRONE_ID_LOCATION": (mavlink2.MAVLink_open_drone_id_location_message, _odid_location),
    "OPEN_DRONE_ID_SYSTEM": (mavlink2.MAVLink_open_drone_id_system_message, _odid_system),
    "PING": (mavlink2.MAVLink_ping_message, _ping),
    "SCALED_PRESSURE": (mavlink2.MAVLink_scaled_pressure_message, _scaled_pressure),
    "SYSTEM_TIME": (mavlink2.MAVLink_system_time_message, _system_time),
    "BATTERY_STATUS": (mavlink2.MAVLink_battery_status_message, _battery_status),
    "CURRENT_MODE": (mavlink2.MAVLink_current_mode_message, _current_mode),
    "HOME_POSITION": (mavlink2.MAVLink_home_position_message, _home_position),
    "VIBRATION": (mavlink2.MAVLink_vibration_message, _vibration),
}


def _time_estimate_to_target(s: Sample) -> Sequence[Any]:
    # safe_return, land, mission_next_item, mission_end, commanded_action (s; -1 = unknown)
    dist = math.hypot(s.north_m - s.home_north_m, s.east_m - s.home_east_m)
    return (int(dist / 5.0 + max(s.rel_alt_m, 0.0)), -1, -1, -1, -1)


def _link_node_status(s: Sample) -> Sequence[Any]:
    return (s.time_usec, 23_000, 100, s.time_boot_ms // 3, s.time_boot_ms // 1000, 0, 0, 0, 0, 0, 0)


def _current_event_sequence(s: Sample) -> Sequence[Any]:
    return s.event_sequence


# Messages pymavlink 2.4.50's dialect lacks but real PX4 streams: packed from their XML definition
# (values already in wire order); the CRC extras were recovered from the reference captures.
_RAW: dict[str, tuple[MessageSpec, Builder]] = {
    "LINK_NODE_STATUS": (
        MessageSpec(8, "LINK_NODE_STATUS", 117, struct.Struct("<QIIIIIHHHBB"), lambda v: v), _link_node_status,
    ),
    "TIME_ESTIMATE_TO_TARGET": (
        MessageSpec(380, "TIME_ESTIMATE_TO_TARGET", 232, struct.Struct("<iiiii"), lambda v: v),
        _time_estimate_to_target,
    ),
    "CURRENT_EVENT_SEQUENCE": (
        MessageSpec(411, "CURRENT_EVENT_SEQUENCE", 106, struct.Struct("<HB"), lambda v: v), _current_event_sequence,
    ),
}


@dataclass(frozen=True)
class StreamMessage:
    name: str
    msg_id: int
    spec: MessageSpec
    build: Builder


def stream_messages() -> dict[str, StreamMessage]:
    """Every message this simulator can stream, by name."""
    out = {}
    for name, (cls, build) in _BUILDERS.items():
        spec = spec_for(cls)
        out[name] = StreamMessage(name, spec.msg_id, spec, build)
    for name, (raw_spec, build) in _RAW.items():
        out[name] = StreamMessage(name, raw_spec.msg_id, raw_spec, build)
    return out


def names_by_id(messages: dict[str, StreamMessage]) -> dict[int, str]:
    return {m.msg_id: name for name, m in messages.items()}
