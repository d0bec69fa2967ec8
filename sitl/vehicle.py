"""One simulated PX4 vehicle: its links, mode and arming state, and the wiring of its parts.

The parts each have one job: `navigator` flies, `commands` answers COMMAND_LONG/INT,
`failsafe` watches fence, battery and data link, `offboard` follows setpoint streams,
`mission_protocol` talks the mission protocol, `params` the parameter protocol, `telemetry` +
`streams` fill the links, `events` numbers and sends PX4's EVENTs (and answers REQUEST_EVENT),
`health` sends commander's health and arming reports, `faults` injects faults.
`SimFleet` owns the clock, the shared vectorised `physics`, and ticks every vehicle.

Local frame: east/north/up metres around the spawn point (home at start-up; PX4 resets home at
every arming). System id = instance + 1, component 1, MAVLink 2 on both links.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import development as mavlink2

from planner.vehicle_model import VehicleModel
from sitl import events, modes
from sitl.codec import MessageSpec, spec_for
from sitl.commands import CommandHandler
from sitl.errors import BadVehicleSpec
from sitl.events import EventLog, args, parse_request_event
from sitl.failsafe import Failsafe
from sitl.faults import Faults
from sitl.health import HealthReporter
from sitl.link import Link, open_link
from sitl.mission_protocol import MissionProtocol, MissionStore
from sitl.modes import Mode, VehicleKind
from sitl.navigator import Navigator
from sitl.offboard import Offboard
from sitl.params import Params, default_params
from sitl.physics import Physics
from sitl.streams import LinkMode, StreamProfile, StreamSchedule, default_rates
from sitl.telemetry import Sample, StreamMessage

EARTH_RADIUS_M = 6_371_008.8
SEVERITY_CRITICAL = 2
SEVERITY_WARNING = 4
SEVERITY_INFO = 6
STATUSTEXT_CHUNK = 50
# PX4 streams STATUSTEXT at 20 Hz, one text per pass (mavlink_main.cpp, streams/STATUSTEXT.hpp): a
# burst of texts comes 50 ms apart, as in the captures ("Landing detected", "Mission finished, landed",
# "Disarmed by landing" at +0.00/+0.05/+0.10 s).
STATUSTEXT_PERIOD_S = 0.05

LANDED_ON_GROUND = 1
_STANDARD_BY_MODE: dict[int, int] = {Mode.MISSION: 6, Mode.RTL: 5, Mode.LAND: 7, Mode.TAKEOFF: 8}


@dataclass(frozen=True)
class VehicleSpec:
    """What to simulate: a quad or a rover standing at its home (a pad)."""

    kind: VehicleKind
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    instance: int | None = None
    model: VehicleModel | None = None  # power/battery figures; None = the simulator's defaults


@dataclass(frozen=True)
class SimPorts:
    """UDP ports as PX4 SITL uses them (instance i: GCS link gcs_listen_base+i -> gcs_target_port,
    API link api_listen_base+i -> api_target_base+i). `bind_host` is where the vehicle listens."""

    target_host: str = "127.0.0.1"
    gcs_target_port: int = 14550
    api_target_base: int = 14540
    gcs_listen_base: int = 18570
    api_listen_base: int = 14580
    bind_host: str = "0.0.0.0"


@dataclass(frozen=True)
class VehicleSnapshot:
    """Read-only view of a simulated vehicle, for tests and the CLI."""

    sysid: int
    instance: int
    kind: VehicleKind
    sim_time_s: float
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float
    rel_alt_m: float
    groundspeed_m_s: float
    heading_deg: float
    armed: bool
    custom_mode: int
    mode_name: str
    system_status: int
    landed_state: int
    battery_percent: float
    battery_voltage_v: float
    mission_seq: int
    mission_total: int
    mission_state: int
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    payload_released: bool
    gps_ok: bool
    gcs_seen: bool


class SimVehicle:
    """A simulated PX4 autopilot (system id instance+1, component 1) with a GCS and an API link."""

    def __init__(
        self,
        spec: VehicleSpec,
        *,
        instance: int,
        physics: Physics,
        clock: Callable[[], float],
        messages: dict[str, StreamMessage],
        stream_profile: StreamProfile = "px4",
        seed: int = 0,
        datalink_timeout_s: float | None = 10.0,
    ) -> None:
        if spec.kind not in ("quad", "rover"):
            raise BadVehicleSpec(instance, f"kind must be 'quad' or 'rover', not {spec.kind!r}")
        if not (-90.0 <= spec.home_lat_deg <= 90.0 and -180.0 <= spec.home_lon_deg <= 180.0):
            raise BadVehicleSpec(instance, f"home {spec.home_lat_deg}, {spec.home_lon_deg} is not WGS84")
        self.spec = spec
        self.kind: VehicleKind = spec.kind
        self.is_quad = spec.kind == "quad"
        self.instance = instance
        self.sysid = instance + 1
        self.physics = physics
        self.index = physics.add(not self.is_quad, spec.model)
        self.now_s = clock
        self.messages = messages
        self.stream_profile: StreamProfile = stream_profile
        self._rng = random.Random(seed * 7919 + instance)
        # Local frame: east/north metres around the spawn point (flat earth is exact to cm over km).
        self.origin_lat_deg = spec.home_lat_deg
        self.origin_lon_deg = spec.home_lon_deg
        self.origin_alt_m = spec.home_alt_amsl_m
        self._m_per_deg_lat = math.radians(1.0) * EARTH_RADIUS_M
        self._m_per_deg_lon = self._m_per_deg_lat * math.cos(math.radians(spec.home_lat_deg))
        self.home_enu = (0.0, 0.0, 0.0)
        self.mode: int = Mode.LOITER
        self.armed = False
        self.armed_s = 0.0
        self.landed_state = LANDED_ON_GROUND
        self.payload_released = False
        self._statustext_id = 0
        self._statustext_free_s = 0.0  # when the STATUSTEXT stream can send the next text
        self._timers: list[tuple[float, Callable[[], None]]] = []
        self.links: list[Link] = []
        self.gcs_link: Link | None = None
        self.api_link: Link | None = None
        self._schedules: dict[str, StreamSchedule] = {}
        self._gcs_links: set[str] = set()
        self.events = EventLog(sysid=self.sysid, links=self.links, clock=clock)
        self.store = MissionStore()
        self.protocol = MissionProtocol(
            self.store,
            sysid=self.sysid,
            now_s=clock,
            statustext=self._protocol_text,
            on_changed=self._on_plan_changed,
            on_set_current=self._on_set_current,
            home_lat_lon=self.home_lat_lon,
            current_seq=lambda: self.navigator.seq,
            # PX4's rover did not complain about rally points in frame 6; the quad's RTL did.
            rally_frame_warning=self.is_quad,
        )
        self.params = Params(
            default_params(spec.kind, self.sysid, datalink_timeout_s),
            sysid=self.sysid,
            on_change=self._on_param_changed,
        )
        self.navigator = Navigator(self)
        self.offboard = Offboard(self)
        self.failsafe = Failsafe(self)
        self.commands = CommandHandler(self)
        self.health = HealthReporter(self)
        # The links are created in open(); Faults holds this same list object.
        self.faults = Faults(clock=clock, links=self.links, physics=physics, index=self.index)
        self._valid_key: tuple[int, int, tuple[float, float]] | None = None
        self._valid = False

    # --- lifecycle ----------------------------------------------------------------------------
    async def open(self, ports: SimPorts) -> None:
        i = self.instance
        gcs = Link("gcs", sysid=self.sysid, remote=(ports.target_host, ports.gcs_target_port),
                   clock=self.now_s, on_message=self._on_message, rng=self._rng)
        api = Link("api", sysid=self.sysid, remote=(ports.target_host, ports.api_target_base + i),
                   clock=self.now_s, on_message=self._on_message, rng=self._rng)
        self.gcs_link, self.api_link = gcs, api
        self.links[:] = [gcs, api]
        now = self.now_s()
        self._schedules = {
            "gcs": StreamSchedule(self._rates("normal"), now, phase_s=0.013 * i),
            "api": StreamSchedule(self._rates("onboard"), now, phase_s=0.007 * i),
        }
        try:
            await open_link(gcs, ports.bind_host, ports.gcs_listen_base + i)
            await open_link(api, ports.bind_host, ports.api_listen_base + i)
        except BaseException:
            self.close()
            raise

    def _rates(self, link_mode: LinkMode) -> dict[str, float]:
        return default_rates(link_mode, self.stream_profile, self.is_quad)

    def close(self) -> None:
        for link in self.links:
            link.close()

    async def wait_closed(self) -> None:
        for link in self.links:
            await link.wait_closed()

    # --- geometry -----------------------------------------------------------------------------
    def to_wgs84(self, east_m: float, north_m: float) -> tuple[float, float]:
        return (self.origin_lat_deg + north_m / self._m_per_deg_lat,
                self.origin_lon_deg + east_m / self._m_per_deg_lon)

    def to_local(self, lat_deg: float, lon_deg: float) -> tuple[float, float]:
        """(east_m, north_m) of a WGS84 point."""
        return ((lon_deg - self.origin_lon_deg) * self._m_per_deg_lon,
                (lat_deg - self.origin_lat_deg) * self._m_per_deg_lat)

    @property
    def position_enu(self) -> tuple[float, float, float]:
        p = self.physics.pos[self.index]
        return float(p[0]), float(p[1]), float(p[2])

    @property
    def lat_lon(self) -> tuple[float, float]:
        e, n, _ = self.position_enu
        return self.to_wgs84(e, n)

    @property
    def home_alt_amsl_m(self) -> float:
        return self.origin_alt_m + self.home_enu[2]

    def home_lat_lon(self) -> tuple[float, float]:
        return self.to_wgs84(self.home_enu[0], self.home_enu[1])

    @property
    def airborne(self) -> bool:
        return self.is_quad and self.position_enu[2] > 0.05

    @property
    def battery_fraction(self) -> float:
        return float(self.physics.energy_wh[self.index] / self.physics.capacity_wh[self.index])

    # --- state changes used by the parts --------------------------------------------------------
    def set_mode(self, mode: int) -> None:
        if mode == self.mode:
            return
        old = self.mode
        self.mode = mode
        self.offboard.on_mode(mode)
        self.navigator.on_mode(old, mode)

    def arm(self, text: str, reason: int = events.REASON_COMMAND_EXTERNAL) -> None:
        if self.armed:
            return
        self.armed = True
        self.armed_s = self.now_s()
        e, n, u = self.position_enu
        self.home_enu = (e, n, u)  # PX4 resets home at every arming
        self.statustext(text)
        self.events.send("commander_armed_by", events.levels(events.INFO), args("B", reason))
        # The logger opens a new file at arming and announces it (wall-clock UTC, as PX4 names the file).
        t = time.gmtime()
        self.events.send("logger_open_file_time", events.levels(events.INFO),
                         args("HBBBBB", t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec))
        self.health.on_armed()
        self.navigator.on_armed()

    def disarm(self, text: str, reason: int = events.REASON_COMMAND_EXTERNAL) -> None:
        if not self.armed:
            return
        self.armed = False
        self.statustext(text)
        self.events.send("commander_disarmed_by", events.levels(events.INFO), args("B", reason))
        self.health.on_disarmed(self.now_s())
        self.navigator.on_disarmed()

    def event(self, name: str, external: int, arguments: bytes = b"", internal: int | None = None) -> None:
        """Send one PX4 event (see `sitl.events`) to every link."""
        self.events.send(name, events.levels(external, internal), arguments)

    def offboard_signal_ok(self) -> bool:
        """Whether offboard setpoints arrive often enough for Offboard mode (COM_OF_LOSS_T)."""
        return self.offboard.signal_ok()

    def arming_denied_reason(self) -> str | None:
        """Why PX4's pre-arm checks would fail now, as its STATUSTEXT says it; None when ready."""
        reason = self.faults.state.refuse_arm_reason
        if reason is not None:
            return reason if reason.startswith("Arming denied") else f"Arming denied: {reason}"
        if not self.faults.gps_ok:
            return "Arming denied: GPS fix too low (no GPS)"
        if self.battery_fraction < self.params.get("BAT_LOW_THR"):
            return "Arming denied: battery level low"
        if not self._mode_armable():
            return "Arming denied: Resolve system health failures first"
        return None

    def arming_denied_reason_for_mission(self) -> str | None:
        """Pre-arm checks for "arm by mission start" (the mode will be Mission, so it is armable)."""
        reason = self.arming_denied_reason()
        if reason is not None and reason.endswith("health failures first"):
            return None
        return reason

    def _mode_armable(self) -> bool:
        if self.mode in (Mode.LOITER, Mode.TAKEOFF):
            return True
        if self.mode == Mode.MISSION:
            return self.mission_valid()
        if self.mode == Mode.OFFBOARD:
            return self.offboard.signal_ok()
        return False

    def mission_valid(self) -> bool:
        """PX4's feasibility verdict: a non-empty mission with no position item outside the fence
        (False until the navigator has checked a new plan, see `Navigator.mission_checked`)."""
        if not self.navigator.mission_checked:
            return False
        home = self.home_lat_lon()
        key = (self.store.version(0), self.store.version(1), (round(home[0], 7), round(home[1], 7)))
        if key != self._valid_key:
            items = self.store.items(0)
            self._valid = bool(items) and self.store.geofence().first_violation(items, home) is None
            self._valid_key = key
        return self._valid

    def schedule(self, delay_s: float, action: Callable[[], None]) -> None:
        self._timers.append((self.now_s() + delay_s, action))

    def load_payload(self, mass_kg: float) -> None:
        """Put a parcel on board (raises power draw until DO_GRIPPER releases it)."""
        if not mass_kg >= 0:
            raise ValueError(f"payload mass must be >= 0 kg, got {mass_kg}")
        self.physics.payload_kg[self.index] = mass_kg
        self.payload_released = False

    def release_payload(self) -> bool:
        """Start a gripper release; False when the gripper is jammed."""
        if self.faults.state.gripper_jammed:
            return False
        self.payload_released = True
        self.physics.payload_kg[self.index] = 0.0
        return True

    # --- sending --------------------------------------------------------------------------------
    def statustext(self, text: str, severity: int = SEVERITY_INFO) -> None:
        """STATUSTEXT to every link that heard a GCS heartbeat, in 50-char chunks sharing one id; at
        most one text per STATUSTEXT_PERIOD_S, later ones wait their turn."""
        now = self.now_s()
        due = max(now, self._statustext_free_s)
        self._statustext_free_s = due + STATUSTEXT_PERIOD_S
        if due > now:
            self.schedule(due - now, lambda: self._send_statustext(text, severity))
        else:
            self._send_statustext(text, severity)

    def _send_statustext(self, text: str, severity: int) -> None:
        targets = [link for link in self.links if link.has_gcs]
        if not targets:
            return
        self._statustext_id = (self._statustext_id % 0xFFFF) + 1
        raw = text.encode("utf-8")
        chunks = [raw[i:i + STATUSTEXT_CHUNK] for i in range(0, len(raw), STATUSTEXT_CHUNK)] or [b""]
        spec = spec_for(mavlink2.MAVLink_statustext_message)
        for link in targets:
            for n, chunk in enumerate(chunks):
                link.queue(link.encoder.pack(spec, (severity, chunk, self._statustext_id, n)))

    def _protocol_text(self, text: str, severity: int) -> None:
        """The mission protocol's STATUSTEXTs, with the events PX4 sends alongside them."""
        plain = text.rstrip("\t")
        if plain == "Operation timeout":
            self.event("mavlink_mission_op_timeout", events.ERROR)
        elif plain.startswith("Geofence violation for waypoint "):
            number = int(plain.rsplit(" ", 1)[1])
            self.event("navigator_mis_geofence_violation", events.ERROR, args("H", number), events.INFO)
        elif plain == "RTL: unsupported MAV_FRAME":
            # Only rally points stored in frame 6 (GLOBAL_RELATIVE_ALT_INT) make PX4 say this.
            self.event("rtl_unsupported_mav_frame", events.ERROR, args("B", 6))
        self.statustext(text, severity)

    def send_all(self, spec: MessageSpec, values: Sequence[Any]) -> None:
        for link in self.links:
            link.queue(link.encoder.pack(spec, values))

    def reply(self, link: Link, msg: mavlink2.MAVLink_message) -> None:
        link.send_now(link.encoder.pack_message(msg))

    # --- receiving ------------------------------------------------------------------------------
    def _on_message(self, msg: mavlink2.MAVLink_message, link: Link) -> None:
        kind = msg.get_type()
        if kind in ("COMMAND_LONG", "COMMAND_INT"):
            self.commands.handle(msg, link)
        elif kind.startswith("MISSION_"):
            self.protocol.handle(msg, lambda m: self.reply(link, m))
        elif kind.startswith("PARAM_"):
            self.params.handle(msg, link.send_now, link.encoder.pack)
        elif kind == "SET_POSITION_TARGET_LOCAL_NED":
            self.offboard.on_setpoint(msg)
        elif kind == "TIMESYNC" and msg.tc1 == 0:
            spec = spec_for(mavlink2.MAVLink_timesync_message)
            link.send_now(link.encoder.pack(spec, (int(self.now_s() * 1e9), msg.ts1)))
        elif kind == "HEARTBEAT" and link.has_gcs and link.name not in self._gcs_links:
            if not self._gcs_links:
                self.health.on_gcs_connected(self.now_s())
            self._gcs_links.add(link.name)
            self.events.send_current_sequence(link)
        elif kind == "UNKNOWN_412":
            request = parse_request_event(bytes(msg.get_msgbuf()))
            if request is not None:
                src = msg.get_msgbuf()
                self.events.handle_request(request, link, src[5], src[6])

    @property
    def datalink_timeout_s(self) -> float | None:
        """COM_DL_LOSS_T when the data-link failsafe is on (NAV_DLL_ACT != 0), else None."""
        if self.params.get("NAV_DLL_ACT") == 0:
            return None
        return self.params.get("COM_DL_LOSS_T")

    def _on_param_changed(self, name: str, value: float) -> None:
        if name == ("MPC_XY_CRUISE" if self.is_quad else "RO_SPEED_LIM"):
            self.navigator.cruise_m_s = value

    def _on_plan_changed(self, mission_type: int) -> None:
        if mission_type == 0:
            self.navigator.on_mission_changed()
        elif mission_type == 1:  # PX4 re-checks the mission against a new fence
            self.navigator.on_plan_changed()

    def _on_set_current(self, seq: int) -> None:
        self.navigator.set_current(seq)

    # --- the tick -------------------------------------------------------------------------------
    def tick(self, now_s: float) -> None:
        """Advance logic by one simulator step (physics already stepped to `now_s`)."""
        if self._timers:
            due = [t for t in self._timers if t[0] <= now_s]
            if due:
                self._timers = [t for t in self._timers if t[0] > now_s]
                for _, action in due:
                    action()
        self.faults.apply_gust()
        self.protocol.tick()
        self.offboard.tick(now_s)
        self.navigator.tick(now_s)
        self.failsafe.tick(now_s)
        self.health.tick(now_s)
        self._recharge()

    def _recharge(self) -> None:
        e, n, u = self.position_enu
        on_pad = not self.armed and u < 0.1 and math.hypot(e, n) < 5.0
        self.physics.charging[self.index] = on_pad and self.battery_fraction < 1.0

    def emit_streams(self, now_s: float) -> None:
        """Queue the streams due at `now_s`, every one built from the state at `now_s`.

        Called once per simulator step, so each message carries the state of its own instant;
        `flush_links` sends what was queued.
        """
        sample: Sample | None = None
        built: dict[str, Sequence[Any]] = {}
        for link in self.links:
            if link.blocked:
                continue
            for name in self._schedules[link.name].due(now_s):
                sm = self.messages[name]
                values = built.get(name)
                if values is None:
                    if sample is None:
                        sample = self.sample(now_s)
                    values = built[name] = sm.build(sample)
                link.queue(link.encoder.pack(sm.spec, values))

    def flush_links(self) -> None:
        """Send what the steps since the last flush queued, several packets to a datagram."""
        for link in self.links:
            link.flush()

    def set_message_interval(self, link: Link, msg_id: int, interval_us: float) -> bool:
        name = next((n for n, m in self.messages.items() if m.msg_id == msg_id), None)
        if name is None:
            return False
        schedule = self._schedules[link.name]
        now = self.now_s()
        if interval_us == 0:
            schedule.set_interval(name, None, now)
        elif interval_us < 0:
            schedule.set_interval(name, -1.0, now)
        else:
            schedule.set_interval(name, interval_us / 1e6, now)
        return True

    def sample(self, now_s: float) -> Sample:
        p = self.physics
        i = self.index
        # tolist(): plain floats in one call, several times cheaper than converting element by element
        # (this runs once per vehicle per step).
        e, n, u = p.pos[i].tolist()
        ve, vn, vu = p.vel[i].tolist()
        lat, lon = self.to_wgs84(e, n)
        frac = float(p.energy_wh[i] / p.capacity_wh[i])
        voltage = 13.2 + 3.0 * frac
        power = float(p.power_w[i])
        used_wh = float(p.capacity_wh[i] - p.energy_wh[i])
        tgt_e, tgt_n, tgt_u = p.target[i].tolist()
        nav = self.navigator
        he, hn, hu = self.home_enu
        hlat, hlon = self.to_wgs84(he, hn)
        speed = math.hypot(ve, vn)
        tilt = min(speed * 0.02, 0.3)
        yaw = float(p.yaw[i])
        standard = _STANDARD_BY_MODE.get(self.mode, 0)
        s = Sample(
            # Rounded: a step's time (k * 0.01) can fall a hair below the millisecond it is.
            time_boot_ms=round(now_s * 1000) & 0xFFFFFFFF,
            time_usec=round(now_s * 1e6),
            lat_e7=round(lat * 1e7),
            lon_e7=round(lon * 1e7),
            alt_amsl_m=self.origin_alt_m + u,
            rel_alt_m=u - hu,
            north_m=n,
            east_m=e,
            down_m=-u,
            vn_m_s=vn,
            ve_m_s=ve,
            vd_m_s=-vu,
            roll_rad=0.0,
            pitch_rad=-tilt if self.is_quad else 0.0,
            yaw_rad=yaw if yaw <= math.pi else yaw - 2 * math.pi,
            groundspeed_m_s=speed,
            battery_fraction=frac,
            voltage_v=voltage,
            # SIH has no current sensor: PX4 reports -1 A ("unknown") at rest; armed, the model's draw.
            current_a=max(power, 0.0) / voltage if self.armed else -1.0,
            consumed_mah=used_wh / voltage * 1000.0,
            energy_j=used_wh * 3600.0,
            landed_state=self.landed_state,
            custom_mode=self.mode,
            intended_mode=self.mode,
            standard_mode=standard,
            armed=self.armed,
            base_mode=modes.base_mode(self.mode, self.armed, self.kind),
            system_status=self.system_status(),
            gps_ok=self.faults.gps_ok,
            is_quad=self.is_quad,
            home_lat_e7=round(hlat * 1e7),
            home_lon_e7=round(hlon * 1e7),
            home_alt_m=self.origin_alt_m + hu,
            home_north_m=hn,
            home_east_m=he,
            home_down_m=-hu,
            target_north_m=tgt_n,
            target_east_m=tgt_e,
            target_down_m=-tgt_u,
            mission_seq=nav.report_seq,
            mission_total=nav.report_total,
            mission_state=nav.mission_state,
            # PX4's MISSION_MODE_ACTIVE: nav_state Mission, Takeoff or Land (mavlink_mission.cpp).
            mission_mode=1 if self.mode in (Mode.MISSION, Mode.TAKEOFF, Mode.LAND) else 2,
            sysid=self.sysid,
            event_sequence=self.events.current_sequence_values(),
        )
        return s

    def system_status(self) -> int:
        return modes.system_status(self.mode, self.armed, self.arming_denied_reason() is None)

    def snapshot(self) -> VehicleSnapshot:
        now = self.now_s()
        s = self.sample(now)
        return VehicleSnapshot(
            sysid=self.sysid,
            instance=self.instance,
            kind=self.kind,
            sim_time_s=now,
            lat_deg=s.lat_e7 * 1e-7,
            lon_deg=s.lon_e7 * 1e-7,
            alt_amsl_m=s.alt_amsl_m,
            rel_alt_m=s.rel_alt_m,
            groundspeed_m_s=s.groundspeed_m_s,
            heading_deg=s.heading_cdeg / 100.0,
            armed=self.armed,
            custom_mode=self.mode,
            mode_name=modes.mode_name(self.mode),
            system_status=s.system_status,
            landed_state=self.landed_state,
            battery_percent=s.battery_fraction * 100.0,
            battery_voltage_v=s.voltage_v,
            mission_seq=s.mission_seq,
            mission_total=s.mission_total,
            mission_state=s.mission_state,
            home_lat_deg=s.home_lat_e7 * 1e-7,
            home_lon_deg=s.home_lon_e7 * 1e-7,
            home_alt_amsl_m=s.home_alt_m,
            payload_released=self.payload_released,
            gps_ok=s.gps_ok,
            gcs_seen=any(link.has_gcs for link in self.links),
        )
