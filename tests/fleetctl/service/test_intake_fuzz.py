"""Bad input never takes the service down: 10,000 generated payloads (hypothesis) thrown at intake through
Mosquitto — garbage bytes, JSON of every shape, orders with wrong types, bad ids, huge payloads,
duplicates — and every one is answered with a reason, and the service still takes a good order.

The rule a producer relies on: a JSON object (at most 16 KiB) with a valid `order_id` (1-64 letters,
digits, '.', '_', ':' or '-', starting with a letter or digit) is answered on
fleet/<site>/orders/<order_id>/status; anything else on fleet/<site>/orders/rejected."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_harness import SimBackend, helsinki, producer, running_service, settings_for

from fleetctl.bus.schema import validate_message
from fleetctl.clock import ScaledClock
from sitl.ports import free_udp_block

SITE = helsinki()
PAYLOADS = int(os.environ.get("FUZZ_PAYLOADS", "10000"))
BATCH = 100
CHUNK = 500
DROP = next(iter(SITE.drop_points))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12)
order_ids = st.one_of(st.text(min_size=0, max_size=70), st.sampled_from(["a/b", "+", "#", "x" * 65, "", "é-1", "ok-1"]),
                      st.integers(), st.none())


def order_like(order_id: Any, site: str) -> st.SearchStrategy[dict[str, Any]]:
    base = {"order_id": order_id, "site": site, "dropoff": DROP, "weight_kg": 1.0,
            "window": {"earliest": "2026-12-03T10:00:00Z", "latest": "2026-12-03T12:00:00Z"}}
    mutations = st.dictionaries(st.sampled_from(["site", "dropoff", "weight_kg", "window", "priority", "size",
                                                 "handoff", "pickup_depot", "recipient_ref", "extra"]),
                                json_values, max_size=3)
    return mutations.map(lambda m: {**base, **m})


def payloads(site: str) -> st.SearchStrategy[bytes]:
    unique = st.uuids().map(lambda u: f"F-{u.hex[:12]}")
    return st.one_of(
        st.binary(max_size=300),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.builds(lambda i, o: json.dumps(o).encode(), unique, unique.flatmap(lambda i: order_like(i, site))),
        order_ids.flatmap(lambda i: order_like(i, site)).map(lambda o: json.dumps(o).encode()),
        st.integers(min_value=20_000, max_value=200_000).map(lambda n: b'{"order_id": "huge", "pad": "' + b"x" * n + b'"}'),
    )


def generate(site: str) -> list[bytes]:
    out: list[bytes] = []

    @settings(max_examples=PAYLOADS // BATCH, database=None, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(payloads(site), min_size=BATCH, max_size=BATCH))
    def collect(batch: list[bytes]) -> None:
        out.extend(batch)

    collect()
    return out[:PAYLOADS]


def answered_on_status(raw: bytes) -> str | None:
    """The order id a producer expects its answer under, or None (then: orders/rejected)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    order_id = data.get("order_id") if isinstance(data, dict) else None
    if not isinstance(order_id, str) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", order_id) is None:
        return None
    return order_id if len(raw) <= 16 * 1024 else None


@pytest.mark.timeout(600)
async def test_ten_thousand_generated_payloads_are_each_answered_and_the_service_survives(tmp_path: Path) -> None:
    site_id = f"fz{uuid.uuid4().hex[:8]}"
    raws = await asyncio.to_thread(generate, site_id)
    assert len(raws) == PAYLOADS
    no_sim = SimBackend(None, free_udp_block(1), 1.0, "none")
    settings = settings_for(tmp_path, no_sim, site_id=site_id)
    clock = ScaledClock(1.0, settings.sim_epoch)
    by_status = [answered_on_status(r) for r in raws]
    expected_rejected_topic = sum(1 for i in by_status if i is None)
    async with running_service(settings) as service, producer(site_id, clock) as p:
        t0 = time.perf_counter()
        for i in range(0, len(raws), CHUNK):
            # Mosquitto queues at most max_queued_messages (default 1000) per client and drops the rest:
            # a producer outrunning the service waits for it, as a real one must.
            await p.publish_many(raws[i:i + CHUNK])
            await p.wait(lambda _, n=i: service.intake.received >= n, 60.0, "intake to catch up")
        published_s = time.perf_counter() - t0
        await p.wait(lambda _: service.intake.received >= PAYLOADS, 240.0, "intake to take every message")
        ids = {i for i in by_status if i is not None}
        # id conflicts (the same id, other content) are answered on orders/rejected too
        await p.wait(lambda q: ids <= set(q.status) and len(q.rejected) >= expected_rejected_topic, 60.0,
                     "an answer to every message")
        assert all(p.status[i]["state"] in ("accepted", "rejected") for i in ids)
        assert all(p.status[i]["reason"] for i in ids if p.status[i]["state"] == "rejected")
        assert all(r["reason"] for r in p.rejected)
        # still healthy: a good order is accepted at once
        good = p.order("after-the-storm", DROP)
        await p.publish(good)
        await p.wait(lambda q: q.status.get("after-the-storm", {}).get("state") == "accepted", 20.0, "a good order")
        stats = service.intake
        assert stats.received == PAYLOADS + 1
        print(f"{PAYLOADS} fuzzed payloads (published in {published_s:.1f} s): {stats.accepted} accepted, "
              f"{stats.rejected} rejected, {stats.duplicates} duplicates; {len(p.rejected)} answered on "
              f"orders/rejected, all answered {time.perf_counter() - t0:.1f} s after the first")
    for topic, payload in p.seen:
        if not topic.endswith("/orders/new"):
            validate_message(topic, payload)
