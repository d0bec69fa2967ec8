"""Which messages a link streams and how often, in simulated time (PX4's per-mode defaults).

- The API link is a PX4 "Onboard" mavlink instance: the rates are those measured on real PX4
  (`passive.messages` in the profiles, ~400 messages/s).
- The GCS link is a PX4 "Normal" instance: the rates are PX4's `configure_streams_to_default`
  for MAVLINK_MODE_NORMAL (mavlink_main.cpp), limited to the messages SIH has data for.

Stream profiles: "px4" (default) is all of the above; "gcs" keeps only what a ground station
reads (heartbeat, status, position, GPS, battery, home, mission progress, mode, VFR_HUD), at the
same rates, so large fleets stay cheap. LINK_NODE_STATUS, TIME_ESTIMATE_TO_TARGET and
CURRENT_EVENT_SEQUENCE are sent although pymavlink 2.4.50 cannot decode them (as PX4 does).
EVENT (410) is not a stream: `sitl.events` sends it when something happens, on every link and in
both profiles.

SET_MESSAGE_INTERVAL changes one stream of one link (interval 0 restores the default, -1 stops it).

Like PX4, a link streams to its configured remote port whether or not anybody listens there:
there is no "only while a peer is heard" shortcut (use the "gcs" profile to save CPU instead).
"""

from __future__ import annotations

import math
from typing import Literal

StreamProfile = Literal["px4", "gcs"]
LinkMode = Literal["onboard", "normal"]

# Due times are sums of float intervals; without a tolerance a stream due "at" a step would
# slip to the next one by rounding and jitter.
_EPS_S = 1e-6

QUAD_ONLY = frozenset({"ATTITUDE_TARGET", "POSITION_TARGET_LOCAL_NED", "SERVO_OUTPUT_RAW"})

ONBOARD_RATES_HZ: dict[str, float] = {
    "HEARTBEAT": 1.0,
    "ATTITUDE": 100.0,
    "ATTITUDE_QUATERNION": 50.0,
    "HIGHRES_IMU": 50.0,
    "GLOBAL_POSITION_INT": 50.0,
    "LOCAL_POSITION_NED": 30.0,
    "ODOMETRY": 30.0,
    "ALTITUDE": 10.0,
    "DISTANCE_SENSOR": 10.0,
    "TIMESYNC": 10.0,
    "VFR_HUD": 10.0,
    "ATTITUDE_TARGET": 10.0,
    "POSITION_TARGET_LOCAL_NED": 10.0,
    "SERVO_OUTPUT_RAW": 10.0,
    "GPS_RAW_INT": 8.0,  # "unlimited": SIH's GPS runs at 8 Hz
    "SYS_STATUS": 5.0,
    "EXTENDED_SYS_STATE": 5.0,
    "MISSION_CURRENT": 1.0,
    "ESTIMATOR_STATUS": 1.0,
    "OPEN_DRONE_ID_LOCATION": 1.0,
    "OPEN_DRONE_ID_SYSTEM": 1.0,
    "PING": 1.0,
    "SCALED_PRESSURE": 1.0,
    "SYSTEM_TIME": 1.0,
    "BATTERY_STATUS": 0.5,
    "CURRENT_MODE": 0.5,
    "HOME_POSITION": 0.5,
    "VIBRATION": 0.5,
    "LINK_NODE_STATUS": 1.0,
    "TIME_ESTIMATE_TO_TARGET": 0.5,  # configured 1 Hz, measured 0.47 Hz
    "CURRENT_EVENT_SEQUENCE": 1.0 / 3.0,
}

NORMAL_RATES_HZ: dict[str, float] = {
    "HEARTBEAT": 1.0,
    "ALTITUDE": 1.0,
    "ATTITUDE": 15.0,
    "ATTITUDE_QUATERNION": 10.0,
    "ATTITUDE_TARGET": 2.0,
    "BATTERY_STATUS": 0.5,
    "CURRENT_MODE": 0.5,
    "DISTANCE_SENSOR": 0.5,
    "ESTIMATOR_STATUS": 0.5,
    "EXTENDED_SYS_STATE": 1.0,
    "GLOBAL_POSITION_INT": 5.0,
    "GPS_RAW_INT": 5.0,
    "HOME_POSITION": 0.5,
    "LOCAL_POSITION_NED": 1.0,
    "MISSION_CURRENT": 1.0,
    "OPEN_DRONE_ID_LOCATION": 1.0,
    "OPEN_DRONE_ID_SYSTEM": 1.0,
    "PING": 0.1,
    "POSITION_TARGET_LOCAL_NED": 1.5,
    "SCALED_PRESSURE": 1.0,
    "SERVO_OUTPUT_RAW": 1.0,
    "SYS_STATUS": 1.0,
    "VFR_HUD": 4.0,
    "VIBRATION": 0.1,
    "LINK_NODE_STATUS": 1.0,
    "TIME_ESTIMATE_TO_TARGET": 0.5,
    "CURRENT_EVENT_SEQUENCE": 1.0 / 3.0,
}

GCS_PROFILE_MESSAGES = frozenset(
    {
        "HEARTBEAT",
        "SYS_STATUS",
        "EXTENDED_SYS_STATE",
        "GLOBAL_POSITION_INT",
        "GPS_RAW_INT",
        "BATTERY_STATUS",
        "HOME_POSITION",
        "MISSION_CURRENT",
        "CURRENT_MODE",
        "VFR_HUD",
    }
)


def default_rates(link_mode: LinkMode, profile: StreamProfile, is_quad: bool) -> dict[str, float]:
    table = ONBOARD_RATES_HZ if link_mode == "onboard" else NORMAL_RATES_HZ
    rates = {}
    for name, hz in table.items():
        if not is_quad and name in QUAD_ONLY:
            continue
        if profile == "gcs" and name not in GCS_PROFILE_MESSAGES:
            continue
        rates[name] = hz
    return rates


class StreamSchedule:
    """Due times of one link's streams in simulated time; `due(now)` says which streams to send now.

    Called once per simulator step, with the vehicle's state at that step: each due stream is sent
    once, built from that state. A stream asked for faster than the steps come (or one that fell
    behind) is sent once per step, at a lower rate, never as copies of one state: a copy would claim
    a state the vehicle was never in at that time, which real PX4 never sends.
    """

    __slots__ = ("_defaults", "_interval", "_next", "_soonest")

    def __init__(self, defaults: dict[str, float], now_s: float, phase_s: float = 0.0) -> None:
        self._defaults = {name: 1.0 / hz for name, hz in defaults.items() if hz > 0}
        self._interval: dict[str, float] = dict(self._defaults)
        # Spread the first due times so not every stream of every vehicle fires in one step.
        self._next: dict[str, float] = {
            name: now_s + phase_s % interval for name, interval in self._interval.items()
        }
        self._soonest = min(self._next.values(), default=math.inf)

    def due(self, now_s: float) -> list[str]:
        # Most steps send nothing on a slow link: answer those without walking every stream.
        if now_s + _EPS_S < self._soonest:
            return []
        out = []
        nxt = self._next
        soonest = math.inf
        for name, interval in self._interval.items():
            t = nxt[name]
            if t <= now_s + _EPS_S:
                # Keep the stream on its own grid (a steady rate), skipping the periods it missed.
                t += (math.floor((now_s + _EPS_S - t) / interval) + 1) * interval
                nxt[name] = t
                out.append(name)
            if t < soonest:
                soonest = t
        self._soonest = soonest
        return out

    def set_interval(self, name: str, interval_s: float | None, now_s: float) -> None:
        """interval_s None restores the default; <= 0 stops the stream."""
        if interval_s is None:
            default = self._defaults.get(name)
            if default is None:
                self._interval.pop(name, None)
                return
            self._interval[name] = default
        elif interval_s <= 0:
            self._interval.pop(name, None)
            return
        else:
            self._interval[name] = interval_s
        self._next[name] = now_s
        self._soonest = min(self._soonest, now_s)

    def interval(self, name: str) -> float | None:
        return self._interval.get(name)
