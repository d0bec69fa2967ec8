"""MissionProtocol against PX4's observed behaviour, with a fake clock and no sockets."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from typing import Any

import pytest
from pymavlink.dialects.v20 import development as mavlink2

from planner.geo import LocalFrame
from sitl import profiles
from sitl.mission_protocol import (
    FENCE,
    MISSION,
    RALLY,
    RETRY_INTERVAL_S,
    MissionItem,
    MissionProtocol,
    MissionStore,
)

HOME = (47.397742, 8.545594)  # the home of the reference captures
FRAME = LocalFrame(*HOME)  # one pyproj transformer for the whole module
GCS = (255, 190)
M = mavlink2


def e7(lat_lon: tuple[float, float]) -> tuple[int, int]:
    return round(lat_lon[0] * 1e7), round(lat_lon[1] * 1e7)


def at(north_m: float, east_m: float) -> tuple[int, int]:
    return e7(FRAME.to_wgs84(east_m, north_m))


def wire(msg: Any, src: tuple[int, int]) -> Any:
    """Encode and decode, so the message carries a real header (source ids) like off the socket."""
    mav = M.MAVLink(None, srcSystem=src[0], srcComponent=src[1])
    return mav.decode(bytearray(msg.pack(mav)))


class Harness:
    def __init__(self, home: tuple[float, float] | None = HOME) -> None:
        self.t = 0.0
        self.store = MissionStore()
        self.out: list[tuple[float, Any]] = []
        self.texts: list[tuple[float, str, int]] = []
        self.changed: list[int] = []
        self.set_current: list[int] = []
        self.proto = MissionProtocol(
            self.store, sysid=1, now_s=lambda: self.t,
            statustext=lambda text, sev: self.texts.append((self.t, text, sev)),
            on_changed=self.changed.append, on_set_current=self.set_current.append,
            home_lat_lon=(lambda: home),
        )

    def reply(self, msg: Any) -> None:
        self.out.append((self.t, wire(msg, (1, 1))))

    def send(self, msg: Any, src: tuple[int, int] = GCS) -> bool:
        return self.proto.handle(wire(msg, src), self.reply)

    def run(self, seconds: float, dt: float = 0.02) -> None:
        steps = round(seconds / dt)
        start = self.t
        for i in range(1, steps + 1):
            self.t = start + i * dt
            self.proto.tick()

    def of(self, kind: str) -> list[Any]:
        return [m for _, m in self.out if m.get_type() == kind]

    def take(self) -> list[Any]:
        msgs = [m for _, m in self.out]
        self.out.clear()
        return msgs

    def upload(self, items: Sequence[Any], mission_type: int = MISSION) -> list[Any]:
        """A well-behaved ground station: answer every request, return what PX4 sent."""
        self.send(M.MAVLink_mission_count_message(1, 1, len(items), mission_type))
        sent: list[Any] = []
        for _ in range(3 * len(items) + 3):
            msgs = self.take()
            sent += msgs
            reqs = [m for m in msgs if m.get_type() in ("MISSION_REQUEST_INT", "MISSION_REQUEST")]
            if not reqs:
                break
            self.send(items[reqs[-1].seq])
        return sent

    def download(self, mission_type: int = MISSION, *, int_mode: bool = True, ack: bool = True) -> list[Any]:
        self.send(M.MAVLink_mission_request_list_message(1, 1, mission_type))
        count = next(m for m in self.take() if m.get_type() == "MISSION_COUNT")
        assert count.mission_type == mission_type
        items = []
        req = M.MAVLink_mission_request_int_message if int_mode else M.MAVLink_mission_request_message
        for seq in range(count.count):
            self.send(req(1, 1, seq, mission_type))
            items += self.take()
        if ack:
            self.send(M.MAVLink_mission_ack_message(1, 1, 0, mission_type))
        return items


def item(seq: int, command: int, pos: tuple[int, int], z: float, *, frame: int = 6, p1: float = 0.0,
         mission_type: int = MISSION) -> Any:
    return M.MAVLink_mission_item_int_message(1, 1, seq, frame, command, 0, 1, p1, 0.0, 0.0, float("nan"),
                                              pos[0], pos[1], z, mission_type)


def mission(north_last_m: float = 50.0) -> list[Any]:
    """The reference captures' mission: takeoff 20 m, 50 m N, then 100 m E, land there."""
    return [
        item(0, 22, at(0, 0), 20.0),
        item(1, 16, at(50, 0), 20.0),
        item(2, 16, at(north_last_m, 100), 20.0),
        item(3, 21, at(north_last_m, 100), 0.0),
    ]


def fence() -> list[Any]:
    """Inclusion square ±300 m, 40 m exclusion square at 150 S 150 W, 25 m circle at 150 S 150 E."""
    square = [at(300, -300), at(300, 300), at(-300, 300), at(-300, -300)]
    hole = [at(-130, -170), at(-130, -130), at(-170, -130), at(-170, -170)]
    items = [item(i, 5001, p, 0.0, frame=5, p1=4, mission_type=FENCE) for i, p in enumerate(square)]
    items += [item(4 + i, 5002, p, 0.0, frame=5, p1=4, mission_type=FENCE) for i, p in enumerate(hole)]
    items.append(item(8, 5004, at(-150, 150), 0.0, frame=5, p1=25.0, mission_type=FENCE))
    return items


def acks(msgs: Sequence[Any]) -> list[tuple[int, int]]:
    return [(m.type, m.mission_type) for m in msgs if m.get_type() == "MISSION_ACK"]


def requests(msgs: Sequence[Any]) -> list[tuple[str, int]]:
    return [(m.get_type(), m.seq) for m in msgs if m.get_type().startswith("MISSION_REQUEST")]


def test_upload_requests_every_item_with_request_int_then_accepts() -> None:
    h = Harness()
    sent = h.upload(mission())
    assert requests(sent) == [("MISSION_REQUEST_INT", s) for s in range(4)]
    assert acks(sent) == [(0, MISSION)]
    assert [i.command for i in h.store.items(MISSION)] == [22, 16, 16, 21]
    assert h.store.version(MISSION) == 1
    assert h.changed == [MISSION]
    assert h.store.mission_feasible
    assert h.texts == []


def test_identical_reupload_is_accepted_but_not_a_change() -> None:
    h = Harness()
    h.upload(mission())
    sent = h.upload(mission())
    assert acks(sent) == [(0, MISSION)]
    assert h.store.version(MISSION) == 1
    assert h.changed == [MISSION]


def test_download_matches_the_reference_profile() -> None:
    if not profiles.has_profile("quad"):
        pytest.skip(f"no reference profile at {profiles.profile_path('quad')}")
    ref = profiles.load_profile("quad")["mission"]["download"]["items"]
    # Upload exactly what the capture's ground side uploaded (frame 6), download, compare.
    h = Harness()
    h.upload([item(i, cmd, (x, y), z, frame=6, p1=p1) for i, (cmd, _f, p1, x, y, z) in enumerate(ref)])
    got = h.download()
    assert [m.get_type() for m in got] == ["MISSION_ITEM_INT"] * len(ref)
    assert [[m.command, m.frame, m.param1, m.x, m.y, m.z] for m in got] == ref


def test_download_frames_fence_5_rally_6_and_legacy_float_encoding() -> None:
    h = Harness()
    fence0 = [item(m.seq, m.command, (m.x, m.y), 0.0, frame=0, p1=m.param1, mission_type=FENCE) for m in fence()]
    # Frame 0 sent as MISSION_ITEM_INT carries degE7 in PX4 too (int mode).
    assert acks(h.upload(fence0, FENCE)) == [(0, FENCE)]
    got = h.download(FENCE)
    assert [m.frame for m in got] == [5] * 9
    assert [m.command for m in got] == [5001] * 4 + [5002] * 4 + [5004]
    assert [m.param1 for m in got] == [4.0] * 8 + [25.0]

    lat, lon = FRAME.to_wgs84(0.0, -50.0)
    rally3 = M.MAVLink_mission_item_message(1, 1, 0, 3, 5100, 0, 1, 0, 0, 0, 0, lat, lon, 20.0, RALLY)
    sent = h.upload([rally3], RALLY)
    assert requests(sent) == [("MISSION_REQUEST_INT", 0)]
    assert acks(sent) == [(0, RALLY)]
    got = h.download(RALLY)
    assert (got[0].frame, got[0].command, got[0].z) == (6, 5100, 20.0)
    assert abs(got[0].x - round(lat * 1e7)) <= 50  # float32 degrees on the way up
    legacy = h.download(RALLY, int_mode=False)
    assert legacy[0].get_type() == "MISSION_ITEM"
    assert legacy[0].frame == 3
    assert legacy[0].x == pytest.approx(lat, abs=1e-6)


def test_rally_in_frame6_is_accepted_and_rtl_complains() -> None:
    h = Harness()
    sent = h.upload([item(0, 5100, at(-50, 0), 20.0, frame=6, mission_type=RALLY)], RALLY)
    assert acks(sent) == [(0, RALLY)]
    assert [t for _, t, _ in h.texts] == ["RTL: unsupported MAV_FRAME\t"]
    assert h.download(RALLY)[0].frame == 6


def test_count_zero_clears_and_accepts() -> None:
    h = Harness()
    h.upload(mission())
    h.send(M.MAVLink_mission_count_message(1, 1, 0, MISSION))
    assert acks(h.take()) == [(0, MISSION)]
    assert h.store.items(MISSION) == ()
    assert h.store.version(MISSION) == 2
    assert not h.store.mission_feasible
    assert h.download() == []


@pytest.mark.parametrize("mission_type", [MISSION, FENCE, RALLY])
def test_clear_all_per_type(mission_type: int) -> None:
    h = Harness()
    h.upload(mission())
    h.upload(fence(), FENCE)
    h.upload([item(0, 5100, at(-50, 0), 20.0, frame=3, mission_type=RALLY)], RALLY)
    h.send(M.MAVLink_mission_clear_all_message(1, 1, mission_type))
    assert acks(h.take()) == [(0, mission_type)]
    for t in (MISSION, FENCE, RALLY):
        assert (h.store.items(t) == ()) == (t == mission_type)


def test_lost_item_rerequested_every_quarter_second_then_gives_up_silently() -> None:
    h = Harness()
    h.upload(mission())
    old = h.store.items(MISSION)
    h.t = 100.0
    new = mission(north_last_m=80)
    h.send(M.MAVLink_mission_count_message(1, 1, 4, MISSION))
    h.send(new[0])  # then never answer seq 1
    h.run(7.0)
    reqs = [(t, m.seq) for t, m in h.out if m.get_type() == "MISSION_REQUEST_INT"]
    seq1 = [t for t, s in reqs if s == 1]
    assert len(seq1) == 20
    gaps = [b - a for a, b in itertools.pairwise(seq1)]
    assert all(0.24 <= g <= 0.29 for g in gaps), gaps  # a 0.262 s grid seen through 0.02 s ticks
    assert sum(gaps) / len(gaps) == pytest.approx(RETRY_INTERVAL_S, abs=0.005)
    assert h.of("MISSION_ACK") == []
    timeouts = [(t, text, sev) for t, text, sev in h.texts if "timeout" in text]
    assert [(text, sev) for _, text, sev in timeouts] == [("Operation timeout\t", 2)]
    assert timeouts[0][0] == pytest.approx(105.0, abs=0.03)  # 5 s after the last item arrived
    assert h.store.items(MISSION) == old
    assert h.changed == [MISSION]
    # And the next upload works normally.
    h.take()
    assert acks(h.upload(new)) == [(0, MISSION)]


def test_timeout_cadence_with_a_20hz_tick() -> None:
    h = Harness()
    h.send(M.MAVLink_mission_count_message(1, 1, 2, MISSION))
    h.run(6.0, dt=0.05)
    seq0 = [t for t, m in h.out if m.get_type() == "MISSION_REQUEST_INT"]
    assert len(seq0) == 20
    assert [text for _, text, _ in h.texts] == ["Operation timeout\t"]


def test_dropped_first_request_is_retried_and_upload_completes() -> None:
    h = Harness()
    items = mission()
    h.send(M.MAVLink_mission_count_message(1, 1, 4, MISSION))
    h.send(items[0])
    h.run(0.3)  # the request for seq 1 "got lost"; PX4 asks again
    for seq in (1, 2, 3):
        h.send(items[seq])
    msgs = h.take()
    assert [s for k, s in requests(msgs)] == [0, 1, 1, 2, 3]
    assert acks(msgs) == [(0, MISSION)]


@pytest.mark.parametrize("seed", range(5))
def test_upload_completes_under_30_percent_loss_both_ways(seed: int) -> None:
    rng = random.Random(seed)
    h = Harness()
    items = mission() + [item(4 + i, 16, at(10.0 * i, 0), 20.0) for i in range(8)]
    items = [item(i, m.command, (m.x, m.y), m.z) for i, m in enumerate(items)]
    # A GCS with PX4-like habits: resend COUNT until the first request, re-answer requests,
    # resend the last item if the final ACK does not come.
    got_ack = False
    last_rx = 0.0
    last_item: Any = None
    h.send(M.MAVLink_mission_count_message(1, 1, len(items), MISSION))
    for _ in range(20 * 50):  # 20 s of sim time at 50 Hz
        h.t += 0.02
        h.proto.tick()
        for msg in h.take():
            if rng.random() < 0.3:
                continue  # lost on the way down
            last_rx = h.t
            if msg.get_type() == "MISSION_ACK":
                assert msg.type == 0
                got_ack = True
            elif msg.get_type() == "MISSION_REQUEST_INT":
                last_item = items[msg.seq]
                if rng.random() >= 0.3:
                    h.send(last_item)
        if got_ack:
            break
        if h.t - last_rx > 1.0:
            last_rx = h.t
            if rng.random() >= 0.3:
                h.send(last_item or M.MAVLink_mission_count_message(1, 1, len(items), MISSION))
    assert got_ack
    stored = h.store.items(MISSION)
    assert [(i.seq, i.command, i.x, i.y) for i in stored] == [(m.seq, m.command, m.x, m.y) for m in items]


def test_two_vertex_polygon_is_refused_after_the_first_item() -> None:
    h = Harness()
    h.upload(fence(), FENCE)
    bad = [item(i, 5001, at(100 * i, 0), 0.0, frame=5, p1=2, mission_type=FENCE) for i in range(2)]
    sent = h.upload(bad, FENCE)
    assert requests(sent) == [("MISSION_REQUEST_INT", 0)]
    assert acks(sent) == [(1, FENCE)]
    assert len(h.store.items(FENCE)) == 9
    # The protocol is idle again: a good fence uploads at once.
    assert acks(h.upload(fence(), FENCE)) == [(0, FENCE)]


def test_inconsistent_vertex_counts_are_refused() -> None:
    h = Harness()
    bad = [item(i, 5001, at(100 * i, 10 * i * i), 0.0, frame=5, p1=4, mission_type=FENCE) for i in range(3)]
    sent = h.upload(bad, FENCE)
    assert acks(sent) == [(1, FENCE)]
    assert h.store.items(FENCE) == ()


@pytest.mark.parametrize(
    ("frame", "command", "p1", "result"),
    [
        (1, 16, 0.0, M.MAV_MISSION_UNSUPPORTED_FRAME),  # LOCAL_NED
        (6, 18, 0.0, M.MAV_MISSION_UNSUPPORTED),  # LOITER_TURNS: PX4 does not parse it
        (2, 16, 0.0, M.MAV_MISSION_UNSUPPORTED),  # a waypoint without coordinates
        (6, 201, 7.0, M.MAV_MISSION_INVALID_PARAM1),  # DO_SET_ROI with a bad ROI mode
        (6, 5001, 4.0, M.MAV_MISSION_ERROR),  # a fence vertex inside a mission
    ],
)
def test_invalid_items_get_px4_result_codes(frame: int, command: int, p1: float, result: int) -> None:
    h = Harness()
    h.upload(mission())
    bad = [item(0, 22, at(0, 0), 20.0), item(1, command, at(10, 0), 20.0, frame=frame, p1=p1)]
    sent = h.upload(bad)
    assert acks(sent) == [(result, MISSION)]
    assert len(h.store.items(MISSION)) == 4


def test_waypoint_outside_fence_is_accepted_with_statustext() -> None:
    h = Harness()
    h.upload(fence(), FENCE)
    sent = h.upload(mission(north_last_m=400))
    assert acks(sent) == [(0, MISSION)]
    assert [(text, sev) for _, text, sev in h.texts] == [("Geofence violation for waypoint 3\t", 2)]
    assert not h.store.mission_feasible
    assert len(h.store.items(MISSION)) == 4
    # Clearing the fence makes the same mission feasible.
    h.send(M.MAVLink_mission_clear_all_message(1, 1, FENCE))
    assert h.store.mission_feasible


def test_waypoint_in_an_exclusion_circle_is_a_violation() -> None:
    h = Harness()
    h.upload(fence(), FENCE)
    items = [item(0, 22, (0, 0), 20.0), item(1, 16, at(-150, 150), 20.0), item(2, 21, (0, 0), 0.0)]
    h.upload(items)
    assert [text for _, text, _ in h.texts] == ["Geofence violation for waypoint 2\t"]


def test_empty_download_without_ack_locks_uploads_for_five_seconds() -> None:
    h = Harness()
    h.download(MISSION, ack=False)  # count 0
    h.send(M.MAVLink_mission_count_message(1, 1, 9, FENCE))
    assert acks(h.take()) == [(1, MISSION)]  # the download's type, not the fence's
    assert "WPM: IGN MISSION_COUNT: Busy\t" in [t for _, t, _ in h.texts]
    h.run(5.1)
    assert "Operation timeout\t" in [t for _, t, _ in h.texts]
    assert acks(h.upload(fence(), FENCE)) == [(0, FENCE)]


def test_empty_download_with_ack_frees_the_protocol() -> None:
    h = Harness()
    h.download(MISSION, ack=True)
    assert acks(h.upload(mission())) == [(0, MISSION)]


def test_download_out_of_sequence_request_is_an_error_and_repeat_is_served() -> None:
    h = Harness()
    h.upload(mission())
    h.send(M.MAVLink_mission_request_list_message(1, 1, MISSION))
    h.send(M.MAVLink_mission_request_int_message(1, 1, 0, MISSION))
    h.send(M.MAVLink_mission_request_int_message(1, 1, 0, MISSION))  # a repeat: served again
    assert [m.seq for m in h.take() if m.get_type() == "MISSION_ITEM_INT"] == [0, 0]
    h.send(M.MAVLink_mission_request_int_message(1, 1, 3, MISSION))
    assert acks(h.take()) == [(M.MAV_MISSION_ERROR, MISSION)]
    assert "WPM: REJ. CMD: Req. WP was unexpected\t" in [t for _, t, _ in h.texts]


def test_lost_final_ack_is_repeated_for_the_resent_last_item() -> None:
    h = Harness()
    items = mission()
    h.upload(items)
    h.send(items[3])
    assert acks(h.take()) == [(0, MISSION)]


def test_second_gcs_is_refused_during_an_upload() -> None:
    h = Harness()
    h.send(M.MAVLink_mission_count_message(1, 1, 4, MISSION))
    h.send(M.MAVLink_mission_count_message(1, 1, 2, MISSION), src=(254, 1))
    msgs = h.take()
    assert [(m.type, m.target_system) for m in msgs if m.get_type() == "MISSION_ACK"] == [(1, 254)]


def test_set_current_and_foreign_messages() -> None:
    h = Harness()
    h.upload(mission())
    h.send(M.MAVLink_mission_set_current_message(1, 1, 2))
    h.send(M.MAVLink_mission_set_current_message(1, 1, 9))
    assert h.set_current == [2]
    assert "WPM: WP CURR CMD: Not in list\t" in [t for _, t, _ in h.texts]
    assert not h.send(M.MAVLink_heartbeat_message(6, 8, 0, 0, 0, 3))
    assert not h.send(M.MAVLink_mission_request_list_message(2, 1, MISSION))  # another vehicle's
    assert h.send(M.MAVLink_mission_request_list_message(0, 0, MISSION))  # broadcast


def test_store_items_are_mission_items() -> None:
    h = Harness()
    h.upload(mission())
    first = h.store.items(MISSION)[0]
    assert isinstance(first, MissionItem)
    assert (first.seq, first.frame, first.command, first.mission_type) == (0, 6, 22, MISSION)
    assert first.lat_deg == pytest.approx(HOME[0], abs=1e-6)
    assert h.store.opaque_id(MISSION) != 0


@pytest.mark.parametrize("dt", [0.02, 0.05, 0.07, 0.11])
def test_lost_item_costs_twenty_requests_however_coarse_the_ticks(dt: float) -> None:
    h = Harness()
    h.send(M.MAVLink_mission_count_message(1, 1, 4, MISSION))
    h.send(mission()[0])
    h.run(6.0, dt=dt)
    seq1 = [t for t, m in h.out if m.get_type() == "MISSION_REQUEST_INT" and m.seq == 1]
    assert len(seq1) == 20
    assert (seq1[-1] - seq1[0]) / 19 == pytest.approx(RETRY_INTERVAL_S, abs=0.02)
    assert [text for _, text, _ in h.texts] == ["Operation timeout\t"]


def test_out_of_sequence_item_is_ignored_not_an_error() -> None:
    # PX4 never answers MAV_MISSION_INVALID_SEQUENCE: a wrong seq is dropped and the retry asks again.
    h = Harness()
    items = mission()
    h.send(M.MAVLink_mission_count_message(1, 1, 4, MISSION))
    h.send(items[0])
    h.take()
    h.send(items[2])  # seq 1 was requested
    assert h.take() == []
    h.run(0.3)
    assert requests(h.take()) == [("MISSION_REQUEST_INT", 1)]
    for seq in (1, 2, 3):
        h.send(items[seq])
    assert acks(h.take()) == [(0, MISSION)]


def test_legacy_float_items_get_legacy_requests() -> None:
    # A ground station that sends MISSION_ITEM switches PX4 to MISSION_REQUEST for the rest.
    h = Harness()
    pts = [FRAME.to_wgs84(0.0, 0.0), FRAME.to_wgs84(0.0, 50.0)]
    items = [M.MAVLink_mission_item_message(1, 1, i, 3, 16, 0, 1, 0, 0, 0, 0, lat, lon, 20.0, MISSION)
             for i, (lat, lon) in enumerate(pts)]
    sent = h.upload(items)
    assert requests(sent) == [("MISSION_REQUEST_INT", 0), ("MISSION_REQUEST", 1)]
    assert acks(sent) == [(0, MISSION)]
    assert [i.frame for i in h.store.items(MISSION)] == [3, 3]
    assert h.download()[1].frame == 6  # an INT download still answers in frame 6
