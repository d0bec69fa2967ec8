"""A mission upload over a link that drops 30 % of the packets both ways still completes.

PX4 re-requests a missing item every ~0.26 s; a ground station resends MISSION_COUNT when no
request comes. Together they get every item across, as on a bad radio link.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from mavclient import HOME, MavClient, quad, waypoint
from pymavlink.dialects.v20 import development as m

from planner.geo import offset_wgs84

N_ITEMS = 25
COUNT_RESEND_S = 0.5


async def _lossy_upload(c: MavClient, items: list, timeout_s: float) -> tuple[int | None, Counter[int]]:
    """Upload like a GCS on a bad link: answer every request, resend the count while unanswered.

    Returns the MISSION_ACK type (None when the ACK itself was lost) and requests seen per seq."""
    requests: Counter[int] = Counter()
    mark = c.mark()
    c.send(m.MAVLink_mission_count_message(1, 1, len(items), 0))
    last_item_sent = False
    async with asyncio.timeout(timeout_s):
        while True:
            try:
                msg = await c.wait_for(
                    lambda x: x.get_type() in ("MISSION_REQUEST_INT", "MISSION_ACK"), COUNT_RESEND_S, since=mark)
            except TimeoutError:
                if last_item_sent:
                    return None, requests
                if not requests:
                    c.send(m.MAVLink_mission_count_message(1, 1, len(items), 0))
                continue
            mark = c.mark()
            if msg.get_type() == "MISSION_ACK":
                return int(msg.type), requests
            requests[msg.seq] += 1
            c.send(items[msg.seq])
            last_item_sent = msg.seq == len(items) - 1


async def test_upload_completes_under_30_percent_loss_through_re_requests(sim_fleet_factory) -> None:
    async with sim_fleet_factory([quad()], speed_factor=4.0, stream_profile="gcs") as (fleet, ports), \
            MavClient(ports.api_target_base) as c:
        await c.connected()
        vehicle = fleet.vehicles[0]
        items = [waypoint(i, *offset_wgs84(HOME[0], HOME[1], 10.0 * i, 0.0), 20.0) for i in range(N_ITEMS)]
        vehicle.faults.packet_loss(0.3)
        ack, requests = await _lossy_upload(c, items, timeout_s=60.0)
        vehicle.faults.packet_loss(0.0)

        assert ack in (None, m.MAV_MISSION_ACCEPTED)  # a lost ACK is fine: the vehicle decides
        stored = vehicle.store.items(0)
        assert len(stored) == N_ITEMS
        assert [it.x for it in stored] == [it.x for it in items]
        # With 30 % loss both ways some requests must have been repeated to get here.
        assert max(requests.values()) >= 2
        assert set(requests) == set(range(N_ITEMS))
