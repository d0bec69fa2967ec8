"""Cheap MAVLink 2 encoding for high-rate streams.

pymavlink builds a message object, a header object and a pure-Python CRC per packet; at PX4's
~400 messages/s per vehicle times the speed factor that dominates the simulator's CPU time.
This encoder packs the payload with the message's precompiled `struct.Struct` and computes
the CRC-16/MCRF4XX in C: MCRF4XX is the bit-reflected CRC-CCITT, so it equals
`binascii.crc_hqx` over bit-reversed bytes with the result bit-reversed back.
Decoding stays with pymavlink (`parse_buffer`).
"""

from __future__ import annotations

import binascii
import functools
import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_REV_TABLE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))
_HEADER = struct.Struct("<BBBBBBBHB")
_CRC = struct.Struct("<H")
_STX_V2 = 0xFD


def x25_crc(data: bytes) -> int:
    """CRC-16/MCRF4XX of `data` (the MAVLink checksum), computed in C."""
    rev = binascii.crc_hqx(data.translate(_REV_TABLE), 0xFFFF)
    return (_REV_TABLE[rev & 0xFF] << 8) | _REV_TABLE[rev >> 8]


@dataclass(frozen=True)
class MessageSpec:
    """What is needed to pack one message type: id, CRC extra, wire-order struct and field order."""

    msg_id: int
    name: str
    crc_extra: int
    packer: struct.Struct
    to_wire: Callable[[Sequence[Any]], Sequence[Any]]


@functools.cache
def spec_for(msg_cls: Any) -> MessageSpec:
    """Spec of a pymavlink message class; values are then given in declaration (`fieldnames`) order."""
    decl: list[str] = list(msg_cls.fieldnames)
    wire: list[str] = list(msg_cls.ordered_fieldnames)
    lengths = dict(zip(wire, msg_cls.array_lengths, strict=True))
    types = dict(zip(decl, msg_cls.fieldtypes, strict=True))
    order = [decl.index(name) for name in wire]
    arrays = [i for i, name in zip(order, wire, strict=True) if lengths[name] and types[name] != "char"]
    if not arrays:
        getter = operator.itemgetter(*order)
        if len(order) == 1:

            def to_wire(values: Sequence[Any]) -> Sequence[Any]:
                return (values[order[0]],)

        else:
            to_wire = getter  # type: ignore[assignment]
    else:
        array_set = set(arrays)

        def to_wire(values: Sequence[Any]) -> Sequence[Any]:
            out: list[Any] = []
            for i in order:
                if i in array_set:
                    out.extend(values[i])
                else:
                    out.append(values[i])
            return out

    return MessageSpec(msg_cls.id, msg_cls.msgname, msg_cls.crc_extra, msg_cls.unpacker, to_wire)


class Encoder:
    """Packs MAVLink 2 packets for one link: its own sequence counter, one source sysid/compid."""

    __slots__ = ("compid", "seq", "sysid")

    def __init__(self, sysid: int, compid: int = 1) -> None:
        self.sysid = sysid
        self.compid = compid
        self.seq = 0

    def pack(self, spec: MessageSpec, values: Sequence[Any], *, compid: int | None = None) -> bytes:
        """One packet; `values` in the message's declaration order (as pymavlink's `*_encode`)."""
        payload = spec.packer.pack(*spec.to_wire(values)).rstrip(b"\x00") or b"\x00"
        msg_id = spec.msg_id
        header = _HEADER.pack(
            _STX_V2,
            len(payload),
            0,
            0,
            self.seq,
            self.sysid,
            self.compid if compid is None else compid,
            msg_id & 0xFFFF,
            msg_id >> 16,
        )
        self.seq = (self.seq + 1) & 0xFF
        body = header[1:] + payload
        return header[:1] + body + _CRC.pack(x25_crc(body + bytes((spec.crc_extra,))))

    def pack_message(self, msg: Any) -> bytes:
        """Pack a pymavlink message object (for rare messages where convenience beats speed)."""
        spec = spec_for(msg.__class__)
        values = []
        for name, ftype in zip(msg.fieldnames, msg.fieldtypes, strict=True):
            value = getattr(msg, name)
            if ftype == "char" and isinstance(value, str):
                value = value.encode("utf-8")
            values.append(value)
        return self.pack(spec, values)
