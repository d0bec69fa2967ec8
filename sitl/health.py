"""PX4 commander's health and arming-check reports, as EVENT groups (HealthAndArmingChecks/Common.cpp).

A report is a group of events sent together: `commander_arming_check_summary` (chunk 0, error and
warning health-component bits, can_arm and can_run navigation-state bits), one event per failing
check (arguments: the navigation modes it blocks and its health component), then
`commander_health_summary` (chunk 0, components present, in error, in warning). The contents below
are what PX4 SIH's quad and rover reported in the captures (`shared/data/px4/*.tlog`):

- always: "No offboard signal" (error, Offboard) and "No manual control input" (warning, all modes:
  there is no RC); "No valid mission available" (info, Mission) while no feasible mission is loaded;
  "Mode not suitable for arming" (info) while disarmed in RTL, Land and the other modes one cannot
  take off in; "Geofence violation: approaching or outside geofence" (error, all modes) while breached.
- the health summary lists the logger as present from boot until the first disarm, and from each
  arming until ~3.2 s after the next disarm (when its status times out).

When: not periodically, but when the checks' result changes, at most every 2 s (a change inside
that interval is reported when it ends). PX4 reports to a newly connected GCS too: commander learns of
it from the 1 Hz telemetry status, so that report comes ~1 s after the GCS's first heartbeat. The
rover reported the same contents once more 2 s later (a change not visible in the arguments; both
captures show it), so the rover repeats its connect report after 2 s. Idle, that is 5 EVENTs on
connect (plus 5 more on a rover): the "0.33/s" of the rover capture's 15 s window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sitl import events
from sitl.events import args
from sitl.modes import Mode

if TYPE_CHECKING:
    from sitl.vehicle import SimVehicle

CHECK_INTERVAL_S = 0.1  # PX4 runs the checks at 10 Hz
MIN_REPORT_INTERVAL_S = 2.0
GCS_NOTICE_DELAY_S = 1.0
ROVER_REREPORT_S = 2.05
LOGGER_TIMEOUT_S = 3.2

# Navigation-state bits (1 << vehicle_status.nav_state) and health components (health_component_t).
NAV_ALL = 0xFFFFFFFF
NAV_MISSION = 1 << 3
NAV_OFFBOARD = 1 << 14
# The modes PX4 SIH (quad and rover, without RC) reported it could arm and run in.
CAN_ARM_BASE = 0x807F3AB0
# mode_req_prevent_arming: RTL, Descend, Termination, Land, Follow Target, Precision Land, Orbit.
PREVENT_ARMING = 0x003C3020
COMP_REMOTE_CONTROL = 7
COMP_LOGGING = 10
COMP_SYSTEM = 20
HEALTH_PRESENT = 0x3802180A  # sensors, battery, links, controllers, estimators, system (logger aside)

_NO_TAKEOFF_MODES = frozenset({Mode.RTL, Mode.LAND, Mode.FOLLOW_TARGET, Mode.PRECLAND, Mode.TERMINATION})


@dataclass(frozen=True)
class CheckResult:
    """The parts of PX4's check results this simulator can change."""

    mission_ok: bool
    cannot_takeoff: bool
    offboard_ok: bool
    fence_breached: bool
    logging: bool


class HealthReporter:
    """Runs the simulated checks at 10 Hz and sends a report when PX4 would."""

    def __init__(self, vehicle: SimVehicle) -> None:
        self.v = vehicle
        self._next_check_s = 0.0
        self._last: CheckResult | None = None
        self._last_report_s: float | None = None
        self._unreported = True  # boot: PX4 reports its first results
        self._nudges: list[float] = []  # times at which PX4 would see a change we do not model
        self._logger_running = True  # SDLOG_MODE 1: logging from boot until the first disarm
        self._logger_stopped_s: float | None = None
        self.reports = 0

    # --- inputs ---------------------------------------------------------------------------------
    def on_gcs_connected(self, now_s: float) -> None:
        self._nudges.append(now_s + GCS_NOTICE_DELAY_S)
        if not self.v.is_quad:
            self._nudges.append(now_s + GCS_NOTICE_DELAY_S + ROVER_REREPORT_S)

    def on_armed(self) -> None:
        self._logger_running = True

    def on_disarmed(self, now_s: float) -> None:
        self._logger_running = False
        self._logger_stopped_s = now_s

    # --- the checks -----------------------------------------------------------------------------
    def result(self, now_s: float) -> CheckResult:
        v = self.v
        logging = self._logger_running or (
            self._logger_stopped_s is not None and now_s - self._logger_stopped_s < LOGGER_TIMEOUT_S
        )
        return CheckResult(
            mission_ok=v.mission_valid(),
            cannot_takeoff=not v.armed and v.mode in _NO_TAKEOFF_MODES,
            offboard_ok=v.offboard_signal_ok(),
            fence_breached=v.failsafe.fence_breached,
            logging=logging,
        )

    def tick(self, now_s: float) -> None:
        if now_s < self._next_check_s:
            return
        self._next_check_s = now_s + CHECK_INTERVAL_S
        result = self.result(now_s)
        if result != self._last:
            self._unreported = True
            self._last = result
        if self._nudges and min(self._nudges) <= now_s:
            self._nudges = [t for t in self._nudges if t > now_s]
            self._unreported = True
        if not self._unreported:
            return
        if self._last_report_s is not None and now_s - self._last_report_s < MIN_REPORT_INTERVAL_S:
            return  # reported when the interval is over (PX4's _had_unreported_difference)
        self._unreported = False
        self._last_report_s = now_s
        self.send(result)

    def send(self, r: CheckResult) -> None:
        """One report: arming summary, the failing checks, health summary."""
        checks: list[tuple[str, int, int, int]] = []  # name, levels, modes, component
        can_arm = CAN_ARM_BASE
        can_run = CAN_ARM_BASE
        error = 0
        if r.mission_ok:
            can_arm |= NAV_MISSION
            can_run |= NAV_MISSION
        if r.offboard_ok:
            can_arm |= NAV_OFFBOARD
            can_run |= NAV_OFFBOARD
        if r.fence_breached:
            checks.append(("check_gf_violation_custom_gf", events.ERROR, NAV_ALL, COMP_SYSTEM))
            can_arm = 0
            error |= 1 << COMP_SYSTEM
        if r.cannot_takeoff:
            checks.append(("check_modes_cannot_takeoff", events.INFO, PREVENT_ARMING, COMP_SYSTEM))
            can_arm &= ~PREVENT_ARMING
        if not r.mission_ok:
            checks.append(("check_modes_mission", events.INFO, NAV_MISSION, COMP_SYSTEM))
        if not r.offboard_ok:
            checks.append(("check_modes_offboard_signal", events.ERROR, NAV_OFFBOARD, COMP_SYSTEM))
            error |= 1 << COMP_SYSTEM
        checks.append(("check_modes_manual_control", events.WARNING, NAV_ALL, COMP_REMOTE_CONTROL))
        warning = 1 << COMP_REMOTE_CONTROL
        log = self.v.events
        protocol = events.levels(events.PROTOCOL)
        log.send("commander_arming_check_summary", protocol, args("BIIII", 0, error, warning, can_arm, can_run))
        for name, level, modes, component in checks:
            log.send(name, events.levels(level), args("IB", modes, component))
        present = HEALTH_PRESENT | ((1 << COMP_LOGGING) if r.logging else 0)
        log.send("commander_health_summary", protocol, args("BIII", 0, present, 0, 0))
        self.reports += 1
