"""PX4's events protocol: EVENT (410), CURRENT_EVENT_SEQUENCE (411), REQUEST_EVENT (412), RESPONSE_EVENT_ERROR (413).

As PX4 does it (src/lib/events, src/modules/mavlink/mavlink_events.cpp), checked against the
reference captures in `shared/data/px4`:

- An event id is `(component << 24) | (FNV-1a-32(name) & 0xFFFFFF)` with component 1 (PX4), so
  `event_id("commander_armed_by") == 0x0190CAF3` as seen on the wire.
- `log_levels` = internal level << 4 | external level (Emergency 0 ... Info 6, Debug 7, Protocol 8).
- Arguments are the event's typed values packed little-endian, zero-padded to 40 bytes (MAVLink 2
  then trims the trailing zeros). `event_time_boot_ms` is the simulated boot time; the destination is
  system 0 / component 0.
- One sequence per vehicle, shared by every link; EVENT goes to every link (STATUSTEXT only to links
  that heard a GCS). The last 20 events stay in a ring buffer (PX4's EventBuffer default) so a
  REQUEST_EVENT can be answered; a sequence that fell out gets RESPONSE_EVENT_ERROR with reason
  UNAVAILABLE (0) and the oldest sequence still available after it.
- CURRENT_EVENT_SEQUENCE carries the latest sequence, with flag RESET (1) while nothing was sent yet.

pymavlink 2.4.50 has none of these messages, so they are packed from their XML definitions here.
"""

from __future__ import annotations

import functools
import struct
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sitl.codec import MessageSpec, x25_crc

if TYPE_CHECKING:
    from sitl.link import Link

# events::Log
EMERGENCY = 0
ALERT = 1
CRITICAL = 2
ERROR = 3
WARNING = 4
NOTICE = 5
INFO = 6
DEBUG = 7
PROTOCOL = 8
DISABLED = 9

BUFFER_CAPACITY = 20
ARGUMENTS_LEN = 40
CURRENT_SEQUENCE_FLAG_RESET = 1
ERROR_REASON_UNAVAILABLE = 0
COMPONENT_PX4 = 1

# events::px4::enums::arm_disarm_reason_t
REASON_COMMAND_EXTERNAL = 4
REASON_MISSION_START = 5
REASON_AUTO_DISARM_LAND = 6
REASON_AUTO_DISARM_PREFLIGHT = 7

# FailsafeBase::Action and ::Cause (failsafe_action_t / failsafe_cause_t)
ACTION_HOLD = 5
ACTION_RTL = 6
ACTION_LAND = 7
CAUSE_GCS_CONNECTION_LOSS = 2
CAUSE_BATTERY_LOW = 3
CAUSE_BATTERY_CRITICAL = 4

# Values in wire order; the CRC extras were checked against the EVENT packets of the captures.
EVENT_SPEC = MessageSpec(410, "EVENT", 160, struct.Struct("<IIHBBB40s"), lambda v: v)
CURRENT_EVENT_SEQUENCE_SPEC = MessageSpec(411, "CURRENT_EVENT_SEQUENCE", 106, struct.Struct("<HB"), lambda v: v)
REQUEST_EVENT_SPEC = MessageSpec(412, "REQUEST_EVENT", 33, struct.Struct("<HHBB"), lambda v: v)
RESPONSE_EVENT_ERROR_SPEC = MessageSpec(413, "RESPONSE_EVENT_ERROR", 77, struct.Struct("<HHBBB"), lambda v: v)


def levels(external: int, internal: int | None = None) -> int:
    """The log_levels byte; `internal` defaults to the external level, as `events::Log::X` alone does."""
    return ((external if internal is None else internal) << 4) | external


@functools.cache
def event_id(name: str, component: int = COMPONENT_PX4) -> int:
    """PX4's `events::ID(name)`: the component in the top byte, FNV-1a of the name below."""
    h = 0x811C9DC5
    for byte in name.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return (component << 24) | (h & 0xFFFFFF)


def args(fmt: str, *values: Any) -> bytes:
    """Event arguments packed as PX4 packs them: little-endian, no padding between values."""
    return struct.pack("<" + fmt, *values)


@dataclass(frozen=True)
class Event:
    sequence: int
    event_id: int
    time_boot_ms: int
    log_levels: int
    arguments: bytes

    def values(self) -> Sequence[Any]:
        """EVENT values in wire order (destination system and component 0: everyone)."""
        return (self.event_id, self.time_boot_ms, self.sequence, 0, 0, self.log_levels, self.arguments)


@dataclass(frozen=True)
class EventRequest:
    first_sequence: int
    last_sequence: int
    target_system: int
    target_component: int


def parse_request_event(frame: bytes) -> EventRequest | None:
    """A REQUEST_EVENT from its raw MAVLink 2 frame (pymavlink hands it over as UNKNOWN_412), or None
    when the frame is not one or its CRC is wrong."""
    if len(frame) < 12 or frame[0] != 0xFD or frame[2] & 1:  # signed frames are not expected here
        return None
    length = frame[1]
    msg_id = frame[7] | (frame[8] << 8) | (frame[9] << 16)
    if msg_id != REQUEST_EVENT_SPEC.msg_id or len(frame) < 12 + length:
        return None
    body = frame[1:10 + length]
    crc = frame[10 + length] | (frame[11 + length] << 8)
    if x25_crc(bytes(body) + bytes((REQUEST_EVENT_SPEC.crc_extra,))) != crc:
        return None
    payload = bytes(frame[10:10 + length]).ljust(REQUEST_EVENT_SPEC.packer.size, b"\0")
    first, last, system, component = REQUEST_EVENT_SPEC.packer.unpack(payload[:REQUEST_EVENT_SPEC.packer.size])
    return EventRequest(first, last, system, component)


class EventLog:
    """The events of one vehicle: numbering, sending to every link, the resend buffer."""

    def __init__(self, *, sysid: int, links: list[Link], clock: Callable[[], float]) -> None:
        self.sysid = sysid
        self._links = links  # the vehicle's own list: links opened later are seen too
        self._clock = clock
        self._next_sequence = 0
        self._buffer: deque[Event] = deque(maxlen=BUFFER_CAPACITY)
        self.sent = 0

    # --- sending --------------------------------------------------------------------------------
    def send(self, name: str, log_levels: int, arguments: bytes = b"") -> Event:
        """Number, buffer and send one event to every link (it goes out with the link's next flush)."""
        if len(arguments) > ARGUMENTS_LEN:
            raise ValueError(f"event {name}: {len(arguments)} argument bytes, at most {ARGUMENTS_LEN}")
        event = Event(
            self._next_sequence,
            event_id(name),
            int(self._clock() * 1000) & 0xFFFFFFFF,
            log_levels,
            arguments,
        )
        self._next_sequence = (self._next_sequence + 1) & 0xFFFF
        self._buffer.append(event)
        self.sent += 1
        for link in self._links:
            link.queue(link.encoder.pack(EVENT_SPEC, event.values()))
        return event

    @property
    def latest_sequence(self) -> int:
        return (self._next_sequence - 1) & 0xFFFF

    def current_sequence_values(self) -> tuple[int, int]:
        """CURRENT_EVENT_SEQUENCE (sequence, flags): RESET while the buffer is still empty."""
        return self.latest_sequence, 0 if self._buffer else CURRENT_SEQUENCE_FLAG_RESET

    def send_current_sequence(self, link: Link) -> None:
        """PX4 sends CURRENT_EVENT_SEQUENCE at once to a newly connected GCS."""
        link.send_now(link.encoder.pack(CURRENT_EVENT_SEQUENCE_SPEC, self.current_sequence_values()))

    # --- resending ------------------------------------------------------------------------------
    def buffered(self) -> list[Event]:
        return list(self._buffer)

    def _find(self, sequence: int) -> Event | None:
        for event in reversed(self._buffer):
            if event.sequence == sequence:
                return event
        return None

    def _oldest_after(self, sequence: int) -> int:
        """The buffered sequence closest after `sequence` (modulo 2^16), else the latest."""
        best = self.latest_sequence
        best_diff = 0xFFFF
        for event in self._buffer:
            diff = (event.sequence - sequence) & 0xFFFF
            if event.sequence != sequence and diff < best_diff:
                best, best_diff = event.sequence, diff
        return best

    def handle_request(self, request: EventRequest, link: Link, src_system: int, src_component: int) -> None:
        """Answer REQUEST_EVENT on the link it came from, as PX4's SendProtocol::handle_request_event."""
        if request.target_system not in (0, self.sysid) or request.target_component not in (0, 1):
            return
        end = (request.last_sequence + 1) & 0xFFFF
        sequence = request.first_sequence

        def unavailable(seq: int) -> None:
            values = (seq, self._oldest_after(seq), src_system, src_component, ERROR_REASON_UNAVAILABLE)
            link.queue(link.encoder.pack(RESPONSE_EVENT_ERROR_SPEC, values))

        # Only the newest BUFFER_CAPACITY sequences of a range can still be there: one error for the rest.
        if (end - sequence) & 0xFFFF > BUFFER_CAPACITY:
            unavailable(sequence)
            sequence = (end - BUFFER_CAPACITY) & 0xFFFF
        while sequence != end:
            event = self._find(sequence)
            if event is None:
                unavailable(sequence)
            else:
                link.queue(link.encoder.pack(EVENT_SPEC, event.values()))
            sequence = (sequence + 1) & 0xFFFF
        link.flush()
