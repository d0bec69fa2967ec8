"""PX4's parameter protocol (PARAM_SET / PARAM_REQUEST_READ answered by PARAM_VALUE), spoken on the
fleet's own socket (`_transport.RawUdpLink`).

Why not MAVSDK's Param plugin: mavsdk 4 has no callback API for it (its blocking call needs a worker
thread, which outlives our timeout and can hang interpreter shutdown), and it retries an unknown name
until it times out, where PX4 has said no at once.
Why not MavlinkDirect: its JSON cannot carry an INT32 parameter whose bytes read as a NaN float (PX4
sends INT32 bytewise in the float field, PARAM_ENCODE_BYTEWISE: -1 is a NaN), and each subscription
keeps a ctypes trampoline. So the frames are built and parsed here, byte exact.

What PX4 does (src/modules/mavlink/mavlink_parameters.cpp, and seen on the wire with PX4 SIH): PARAM_SET
of a known name stores the four bytes of `param_value` as they are, whatever `param_type` says, and
broadcasts PARAM_VALUE with the stored value; of an unknown name it answers the sender with PARAM_ERROR
(#345: the name, error 1 = MAV_PARAM_ERROR_DOES_NOT_EXIST) and nothing else, no STATUSTEXT and no
PARAM_VALUE. Hence: learn the parameter's type from a read first (a wrong type would store the bytes
reinterpreted), and take PARAM_ERROR for the name as the refusal, whichever request it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from pymavlink.dialects.v20 import development as mavlink2
from pymavlink.generator.mavcrc import x25crc

from vehicles.errors import CommandRejected
from vehicles.mavsdk_backend._transport import RawUdpLink

TYPE_INT32 = 6  # MAV_PARAM_TYPE_INT32
TYPE_REAL32 = 9  # MAV_PARAM_TYPE_REAL32
# MAV_PARAM_TYPE -> struct format of the value in the first bytes of the float field (bytewise)
_FORMATS = {1: "<B", 2: "<b", 3: "<H", 4: "<h", 5: "<I", 6: "<i", 9: "<f"}
# Our frames carry MAVSDK's own ground-station identity (Configuration GROUND_STATION: 245/190).
GCS_SYSID = 245
GCS_COMPID = 190
AUTOPILOT_COMPID = 1
_MSG_PARAM_VALUE = mavlink2.MAVLINK_MSG_ID_PARAM_VALUE
_MSG_PARAM_ERROR = mavlink2.MAVLINK_MSG_ID_PARAM_ERROR
_PARAM_VALUE = struct.Struct("<4sHH16sB")
_PARAM_VALUE_LEN = _PARAM_VALUE.size
_PARAM_ERROR = struct.Struct("<hBB16sB")  # param_index, target sys/comp, param_id, error (wire order)
# MAV_PARAM_ERROR -> our CommandRejected.result
PARAM_ERRORS = {1: "UNKNOWN_PARAM", 2: "VALUE_OUT_OF_RANGE", 3: "PERMISSION_DENIED", 4: "COMPONENT_NOT_FOUND",
                5: "READ_ONLY", 6: "TYPE_UNSUPPORTED", 7: "TYPE_MISMATCH", 8: "READ_FAIL"}
_MAX_MISMATCHES = 2  # one differing answer may be stale (another client's list download)
_QUEUE_LEN = 64


@dataclass(frozen=True)
class ParamValue:
    """One PARAM_VALUE: the four value bytes as sent and the type they are in."""

    name: str
    raw: bytes
    ptype: int

    @property
    def value(self) -> int | float:
        fmt = _FORMATS.get(self.ptype, "<i")
        (value,) = struct.unpack_from(fmt, self.raw)
        return float(value) if self.ptype == TYPE_REAL32 else int(value)


def encode_value(what: str, name: str, value: int | float, ptype: int) -> bytes:
    """`value` as the four bytes of the float field for a parameter of type `ptype`."""
    if ptype == TYPE_REAL32:
        try:
            return struct.pack("<f", float(value))
        except OverflowError:
            raise CommandRejected(what, "WRONG_TYPE", f"{name}: {value!r} does not fit a float32") from None
    fmt = _FORMATS.get(ptype)
    if fmt is None or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
        raise CommandRejected(what, "WRONG_TYPE", f"{name} is an integer parameter (type {ptype}), not {value!r}")
    try:
        return struct.pack(fmt, int(value)).ljust(4, b"\x00")
    except struct.error:
        raise CommandRejected(what, "WRONG_TYPE", f"{name}: {value!r} is out of range for type {ptype}") from None


def _name_field(name: str) -> bytes:
    return name.encode("ascii", "replace")[:16].ljust(16, b"\x00")


def frame(seq: int, msgid: int, crc_extra: int, payload: bytes) -> bytes:
    """A MAVLink 2 frame from us (trailing zeros of the payload cut, as the standard says)."""
    payload = payload.rstrip(b"\x00") or b"\x00"
    header = struct.pack("<BBBBBBBHB", 0xFD, len(payload), 0, 0, seq, GCS_SYSID, GCS_COMPID,
                         msgid & 0xFFFF, msgid >> 16)
    crc = x25crc(header[1:] + payload)
    crc.accumulate(bytes([crc_extra]))
    return header + payload + struct.pack("<H", crc.crc)


def param_set_frame(seq: int, target: int, name: str, raw: bytes, ptype: int) -> bytes:
    payload = raw + struct.pack("<BB", target, AUTOPILOT_COMPID) + _name_field(name) + bytes([ptype])
    cls = mavlink2.MAVLink_param_set_message
    return frame(seq, cls.id, cls.crc_extra, payload)


def param_request_read_frame(seq: int, target: int, name: str) -> bytes:
    payload = struct.pack("<hBB", -1, target, AUTOPILOT_COMPID) + _name_field(name)  # index -1: by name
    cls = mavlink2.MAVLink_param_request_read_message
    return frame(seq, cls.id, cls.crc_extra, payload)


def parse_param_value(payload: bytes) -> ParamValue:
    raw, _count, _index, name, ptype = _PARAM_VALUE.unpack(payload[:_PARAM_VALUE_LEN].ljust(_PARAM_VALUE_LEN, b"\x00"))
    return ParamValue(name.rstrip(b"\x00").decode("ascii", "replace"), raw, ptype)


@dataclass(frozen=True)
class ParamError:
    """One PARAM_ERROR: the vehicle's "no" for a parameter name."""

    name: str
    error: int

    @property
    def result(self) -> str:
        return PARAM_ERRORS.get(self.error, f"PARAM_ERROR_{self.error}")


def parse_param_error(payload: bytes) -> ParamError:
    _index, _sys, _comp, name, error = _PARAM_ERROR.unpack(payload[:_PARAM_ERROR.size].ljust(_PARAM_ERROR.size, b"\x00"))
    return ParamError(name.rstrip(b"\x00").decode("ascii", "replace"), error)


class _Answers:
    """PARAM_VALUEs and PARAM_ERRORs for one name, from one system."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: asyncio.Queue[ParamValue | ParamError] = asyncio.Queue(_QUEUE_LEN)

    def tap(self, msgid: int, payload: bytes) -> None:
        item: ParamValue | ParamError | None = None
        if msgid == _MSG_PARAM_VALUE:
            item = parse_param_value(payload)
        elif msgid == _MSG_PARAM_ERROR:
            item = parse_param_error(payload)
        if item is not None and item.name == self._name:
            with contextlib.suppress(asyncio.QueueFull):  # bounded; a flood of answers loses the newest
                self._queue.put_nowait(item)

    async def next(self, what: str, within_s: float) -> ParamValue | None:
        """The next PARAM_VALUE, or None after `within_s`; CommandRejected on a PARAM_ERROR
        (UNKNOWN_PARAM for a name the vehicle does not have)."""
        try:
            async with asyncio.timeout(within_s):
                item = await self._queue.get()
        except TimeoutError:
            return None
        if isinstance(item, ParamError):
            raise CommandRejected(what, item.result, f"the vehicle answered PARAM_ERROR {item.result} for {item.name}")
        return item


class ParamClient:
    """Reads and writes one vehicle's parameters. Waits until an answer or cancellation (put an
    `asyncio.timeout` around each call); requests are repeated every `retry_s` wall seconds."""

    def __init__(self, link: RawUdpLink, sysid: int) -> None:
        self._link = link
        self._sysid = sysid
        self._types: dict[str, int] = {}  # name -> MAV_PARAM_TYPE, as the vehicle last said

    @contextlib.contextmanager
    def _listen(self, name: str) -> Iterator[_Answers]:
        answers = _Answers(name)
        with self._link.listening(self._sysid, answers.tap):
            yield answers

    def _send(self, frame_bytes: bytes) -> None:
        self._link.send_frame(self._sysid, frame_bytes)  # not heard yet or buffer full: the retry sends

    async def read(self, name: str, retry_s: float, *, attempts: int | None = None) -> ParamValue | None:
        """The vehicle's PARAM_VALUE for `name`; None after `attempts` unanswered requests."""
        what = f"get_param {name}"
        with self._listen(name) as answers:
            sent = 0
            while attempts is None or sent < attempts:
                self._send(param_request_read_frame(self._link.next_seq(), self._sysid, name))
                sent += 1
                answer = await answers.next(what, retry_s)
                if answer is not None:
                    self._types[name] = answer.ptype
                    return answer
        return None

    async def write(self, name: str, value: int | float, retry_s: float) -> ParamValue:
        """PARAM_SET until the vehicle echoes `value`. CommandRejected: UNKNOWN_PARAM (PX4's PARAM_ERROR),
        WRONG_TYPE (our value does not fit the parameter), VALUE_NOT_TAKEN (it keeps another value)."""
        what = f"set_param {name}"
        ptype = self._types.get(name)
        if ptype is None:
            # PX4 would store our bytes under its own type: learn the type first. Should a read of an
            # unknown name go unanswered, the PARAM_SET below finds out after two tries.
            known = await self.read(name, retry_s, attempts=2)
            ptype = known.ptype if known is not None else (TYPE_REAL32 if isinstance(value, float) else TYPE_INT32)
        raw = encode_value(what, name, value, ptype)
        mismatches = 0
        with self._listen(name) as answers:
            self._send(param_set_frame(self._link.next_seq(), self._sysid, name, raw, ptype))
            while True:
                answer = await answers.next(what, retry_s)
                if answer is not None and answer.raw == raw and answer.ptype == ptype:
                    return answer
                if answer is not None and answer.ptype != ptype:
                    # Sent under a guessed type that was wrong: the vehicle says which, send again.
                    ptype = self._types[name] = answer.ptype
                    raw = encode_value(what, name, value, ptype)
                elif answer is not None:
                    mismatches += 1
                    if mismatches >= _MAX_MISMATCHES:
                        raise CommandRejected(what, "VALUE_NOT_TAKEN",
                                              f"{name} stays {answer.value!r}, not {value!r}")
                self._send(param_set_frame(self._link.next_seq(), self._sysid, name, raw, ptype))
