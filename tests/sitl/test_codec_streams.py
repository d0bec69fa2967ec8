"""Unit tests of the simulator's encoder, stream schedule and mode encoding (no sockets)."""

from __future__ import annotations

import itertools
import math
import random

from hypothesis import given
from hypothesis import strategies as st
from pymavlink.dialects.v20 import development as mavlink2

from sitl import modes
from sitl.codec import Encoder, spec_for, x25_crc
from sitl.link import MAX_DATAGRAM_BYTES, Link
from sitl.streams import StreamSchedule, default_rates
from sitl.telemetry import Sample, stream_messages


def _pymavlink_crc(data: bytes) -> int:
    from pymavlink.generator.mavcrc import x25crc

    return int(x25crc(data).crc)


@given(st.binary(max_size=300))
def test_crc_matches_pymavlink(data: bytes) -> None:
    assert x25_crc(data) == _pymavlink_crc(data)


@given(
    st.integers(0, 2**32 - 1), st.integers(-900_000_000, 900_000_000), st.integers(-1_800_000_000, 1_800_000_000),
    st.integers(-(2**31), 2**31 - 1), st.integers(0, 35999), st.integers(1, 255), st.integers(0, 255),
)
def test_packet_is_byte_identical_to_pymavlink(t: int, lat: int, lon: int, alt: int, hdg: int, sysid: int,
                                                seq: int) -> None:
    values = (t, lat, lon, alt, 0, 1, -2, 3, hdg)
    enc = Encoder(sysid, 1)
    enc.seq = seq
    ours = enc.pack(spec_for(mavlink2.MAVLink_global_position_int_message), values)
    mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
    mav.seq = seq
    theirs = mavlink2.MAVLink_global_position_int_message(*values).pack(mav)
    assert ours == theirs
    assert enc.seq == (seq + 1) % 256


def test_arrays_and_strings_round_trip() -> None:
    enc = Encoder(7)
    mav = mavlink2.MAVLink(None)
    voltages = [16200] + [65535] * 9
    pkt = enc.pack(spec_for(mavlink2.MAVLink_battery_status_message),
                   (0, 1, 1, 32767, voltages, -100, 5, 6, 87, 0, 1, [0, 0, 0, 0], 0, 0))
    (bat,) = mav.parse_buffer(pkt)
    assert list(bat.voltages) == voltages
    assert bat.battery_remaining == 87
    (text,) = mav.parse_buffer(enc.pack(spec_for(mavlink2.MAVLink_statustext_message), (6, b"Hello\t", 3, 0)))
    assert (text.text, text.id, text.get_srcSystem()) == ("Hello\t", 3, 7)


def test_every_stream_message_decodes() -> None:
    sample = Sample(
        1000, 1_000_000, 473977428, 85455967, 488.2, 0.2, 0.1, 0.2, -0.2, 0.1, 0.2, 0.0, 0.01, 0.02, 0.3, 0.3,
        0.5, 14.7, 1.0, 10.0, 100.0, 1, modes.Mode.LOITER, modes.Mode.LOITER, 0, False, 29, 3, True, True,
        473977428, 85455967, 488.0, 0, 0, 0, 0, 0, 0, 0, 65535, 1, 2, 1,
    )
    enc = Encoder(1)
    mav = mavlink2.MAVLink(None)
    for name, sm in stream_messages().items():
        (msg,) = mav.parse_buffer(enc.pack(sm.spec, sm.build(sample)))
        # LINK_NODE_STATUS, TIME_ESTIMATE_TO_TARGET, CURRENT_EVENT_SEQUENCE: unknown to pymavlink 2.4.50,
        # but their CRC must check out or parse_buffer would drop them
        assert msg.get_type() in (name, f"UNKNOWN_{sm.msg_id}")
    (gpi,) = mav.parse_buffer(enc.pack(stream_messages()["GLOBAL_POSITION_INT"].spec,
                                       stream_messages()["GLOBAL_POSITION_INT"].build(sample)))
    assert (gpi.lat, gpi.lon, gpi.alt) == (473977428, 85455967, 488200)


class _FakeTransport:
    def __init__(self) -> None:
        self.datagrams: list[bytes] = []

    def sendto(self, data: bytes, addr: object) -> None:
        self.datagrams.append(data)


@given(st.lists(st.integers(12, 280), min_size=1, max_size=200))
def test_flush_packs_whole_packets_into_datagrams(sizes: list[int]) -> None:
    link = Link("api", sysid=1, remote=("127.0.0.1", 9), clock=lambda: 0.0, on_message=lambda m, lk: None,
                rng=random.Random(0))
    fake = _FakeTransport()
    link.connection_made(fake)  # type: ignore[arg-type]
    packets = [bytes([i % 251]) * size for i, size in enumerate(sizes)]
    for p in packets:
        link.queue(p)
    link.flush()
    assert b"".join(fake.datagrams) == b"".join(packets)
    assert all(len(d) <= MAX_DATAGRAM_BYTES for d in fake.datagrams)
    # every datagram ends at a packet boundary
    boundaries = set(itertools.accumulate(sizes))
    assert set(itertools.accumulate(len(d) for d in fake.datagrams)) <= boundaries


def _count_due(sched: StreamSchedule, step_s: float, until_s: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    steps = round(until_s / step_s)
    for k in range(1, steps + 1):
        for name in sched.due(k * step_s):  # the simulator's stamps: products, not running sums
            counts[name] = counts.get(name, 0) + 1
    return counts


def test_schedule_keeps_rates_at_the_simulator_step() -> None:
    sched = StreamSchedule({"ATTITUDE": 100.0, "GLOBAL_POSITION_INT": 50.0, "HEARTBEAT": 1.0,
                            "BATTERY_STATUS": 0.5}, now_s=0.0, phase_s=0.007)
    counts = _count_due(sched, 0.01, 10.0)
    assert counts["ATTITUDE"] in (999, 1000)
    assert counts["GLOBAL_POSITION_INT"] in (499, 500)
    assert counts["HEARTBEAT"] == 10
    assert counts["BATTERY_STATUS"] == 5


def test_schedule_sends_once_per_step_never_copies() -> None:
    # Steps coarser than a stream's interval (or a stream asked for faster than the steps come):
    # one message per step, each from that step's state, so the rate drops instead.
    sched = StreamSchedule({"ATTITUDE": 100.0, "HEARTBEAT": 1.0}, now_s=0.0)
    counts = _count_due(sched, 0.4, 10.0)
    assert counts["ATTITUDE"] == 25
    assert counts["HEARTBEAT"] in (10, 11)
    assert sched.due(10.0) == []  # nothing owed from the periods skipped


def test_schedule_interval_override_and_restore() -> None:
    sched = StreamSchedule({"GLOBAL_POSITION_INT": 50.0}, now_s=0.0)
    sched.set_interval("GLOBAL_POSITION_INT", 0.1, 0.0)
    assert math.isclose(sched.interval("GLOBAL_POSITION_INT") or 0, 0.1)
    sched.set_interval("GLOBAL_POSITION_INT", None, 0.0)
    assert math.isclose(sched.interval("GLOBAL_POSITION_INT") or 0, 0.02)
    sched.set_interval("GLOBAL_POSITION_INT", -1.0, 0.0)
    assert sched.interval("GLOBAL_POSITION_INT") is None
    assert list(sched.due(5.0)) == []


def test_default_rates_match_profiles() -> None:
    onboard_quad = default_rates("onboard", "px4", True)
    assert onboard_quad["ATTITUDE"] == 100.0
    assert onboard_quad["GLOBAL_POSITION_INT"] == 50.0
    assert 380 <= sum(onboard_quad.values()) <= 420  # ~400 msg/s measured on real PX4
    assert "ATTITUDE_TARGET" not in default_rates("onboard", "px4", False)
    gcs = default_rates("onboard", "gcs", True)
    assert "ATTITUDE" not in gcs
    assert gcs["GLOBAL_POSITION_INT"] == 50.0
    assert default_rates("normal", "px4", True)["GLOBAL_POSITION_INT"] == 5.0


def test_mode_encoding() -> None:
    assert modes.Mode.LOITER == 0x03040000
    assert modes.Mode.MISSION == 0x04040000
    assert modes.base_mode(modes.Mode.LOITER, False, "quad") == 29
    assert modes.base_mode(modes.Mode.LOITER, True, "quad") == 157
    assert modes.base_mode(modes.Mode.POSCTL, False, "quad") == 81
    assert modes.requested_mode(4, 1) == (True, None)  # AUTO.READY: ACKed, not taken
    assert modes.requested_mode(3, 1) == (True, modes.Mode.POSCTL)  # Orbit via DO_SET_MODE -> POSCTL
    assert modes.requested_mode(42, 0) == (False, None)
    assert len(modes.available_modes("quad")) == 26
    assert modes.standard_mode_target(modes.STANDARD_CRUISE, "quad") is None
    assert modes.standard_mode_target(modes.STANDARD_POSITION_HOLD, "rover") is None
