"""Failsafes of one simulated vehicle (PX4 commander's, with the actions this project configures).

- Geofence breach (GF_ACTION 2): Hold, STATUSTEXT "Geofence: approaching or outside geofence"
  and "Failsafe activated" (as real PX4 with the default GF_ACTION). Once per breach.
- Low battery: RTL below BAT_LOW_THR 15 %, Land (a rover: Hold) below BAT_CRIT_THR 7 %.
- Data link loss: no GCS heartbeat on any link for COM_DL_LOSS_T 10 s (sim time; configurable per
  fleet, None disables it), once a GCS was heard: RTL. A GCS heartbeating at 1 Hz *wall* time stays
  connected only up to a speed factor of ~9, exactly as with real PX4 SITL.

Only while armed and flying (a quad in the air, a rover armed). RTL and Land are not
interrupted by the geofence failsafe. Each one sends PX4's `commander_failsafe_enter[_generic]`
EVENT (user's mode, action, cause) before "Failsafe activated". The offboard-loss failsafe is in
`sitl.offboard`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sitl import events
from sitl.events import args
from sitl.modes import Mode

if TYPE_CHECKING:
    from sitl.vehicle import SimVehicle

SEVERITY_CRITICAL = 2
SEVERITY_WARNING = 4
SEVERITY_INFO = 6


class Failsafe:
    def __init__(self, vehicle: SimVehicle) -> None:
        self.v = vehicle
        self._fence_breached = False
        self._battery_low = False
        self._battery_critical = False
        self._link_lost = False

    @property
    def fence_breached(self) -> bool:
        """Outside the geofence while flying (PX4's failsafe flag `geofence_breached`)."""
        return self._fence_breached

    def _activated(self, action: int, cause: int | None, user_mode: int) -> None:
        """PX4's FailsafeBase::notifyUser: the event, then STATUSTEXT "Failsafe activated"."""
        v = self.v
        if cause is None:  # Cause::Generic
            v.event("commander_failsafe_enter_generic", events.CRITICAL, args("IB", user_mode, action), events.WARNING)
        else:
            v.event("commander_failsafe_enter", events.CRITICAL, args("IBB", user_mode, action, cause), events.WARNING)
        v.statustext("Failsafe activated\t", SEVERITY_CRITICAL)

    def tick(self, now: float) -> None:
        v = self.v
        flying = v.armed and (v.airborne or not v.is_quad)
        self._data_link(now, flying)
        if not flying:
            self._fence_breached = False
            return
        self._geofence()
        self._battery()

    def _geofence(self) -> None:
        v = self.v
        fence = v.store.geofence()
        if fence.is_empty or v.params.get("GF_ACTION") == 0:
            self._fence_breached = False
            return
        lat, lon = v.lat_lon
        inside = fence.contains(lat, lon)
        if inside:
            self._fence_breached = False
            return
        if self._fence_breached or v.mode in (Mode.RTL, Mode.LAND):
            return
        self._fence_breached = True
        v.statustext("Geofence: approaching or outside geofence\t", SEVERITY_CRITICAL)
        self._activated(events.ACTION_HOLD, None, v.mode)
        v.set_mode(Mode.LOITER)
        v.navigator.hold_here()

    def _battery(self) -> None:
        v = self.v
        frac = v.battery_fraction
        low_thr = v.params.get("BAT_LOW_THR")
        crit_thr = v.params.get("BAT_CRIT_THR")
        if frac > low_thr + 0.05:
            self._battery_low = self._battery_critical = False
        if frac < crit_thr and not self._battery_critical:
            self._battery_critical = self._battery_low = True
            v.statustext("Critical battery level! Landing\t", SEVERITY_CRITICAL)
            action = events.ACTION_LAND if v.is_quad else events.ACTION_HOLD
            self._activated(action, events.CAUSE_BATTERY_CRITICAL, v.mode)
            v.set_mode(Mode.LAND if v.is_quad else Mode.LOITER)
            v.navigator.hold_here()
        elif frac < low_thr and not self._battery_low:
            self._battery_low = True
            v.statustext("Low battery level! Returning to launch\t", SEVERITY_WARNING)
            self._activated(events.ACTION_RTL, events.CAUSE_BATTERY_LOW, v.mode)
            if v.mode not in (Mode.RTL, Mode.LAND):
                v.set_mode(Mode.RTL)

    def _data_link(self, now: float, flying: bool) -> None:
        v = self.v
        timeout_s = v.datalink_timeout_s
        heard = [link.gcs_heartbeat_s for link in v.links if link.gcs_heartbeat_s is not None]
        if not heard or timeout_s is None:
            return
        silent_s = now - max(heard)
        if silent_s <= timeout_s:  # PX4 declares the loss only when strictly over COM_DL_LOSS_T
            if self._link_lost:
                self._link_lost = False
                v.statustext("Data link regained\t", SEVERITY_INFO)
                v.event("commander_dl_regained", events.INFO)
            return
        if self._link_lost or not flying:
            return
        self._link_lost = True
        v.statustext("Data link lost\t", SEVERITY_CRITICAL)
        self._activated(events.ACTION_RTL, events.CAUSE_GCS_CONNECTION_LOSS, v.mode)
        if v.mode not in (Mode.RTL, Mode.LAND):
            v.set_mode(Mode.RTL)
