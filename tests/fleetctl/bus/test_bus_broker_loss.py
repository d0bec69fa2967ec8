"""Losing the broker: killed outright (SIGKILL) and restarted on the same port with its persistence
file; and a service cut off from a broker that stays up. Nothing queued on either side is lost, and
intake messages arrive exactly once when acknowledged."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from bus_harness import (
    SITE,
    CuttableProxy,
    Mosquitto,
    collect,
    no_intake,
    nothing_more,
    order,
    order_ids,
    take,
)

from fleetctl.bus import Bus, EventMessage, IntakeMessage, Received
from fleetctl.bus.asyncapi import EXAMPLES
from fleetctl.bus.payloads import EntityKind
from fleetctl.bus.schema import validate_message
from fleetctl.bus.topics import TopicKind

pytestmark = pytest.mark.timeout(40)


def event(seq: int) -> EventMessage:
    example = EXAMPLES[TopicKind.EVENTS]
    assert isinstance(example, EventMessage)
    return example.model_copy(update={"seq": seq, "entity": EntityKind.ORDER, "entity_id": f"E-{seq}"})


async def test_publishes_queued_while_the_broker_is_dead_arrive_after_its_restart(
        mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="fleetctl.bus")
    async with (
        Bus(mosquitto.settings("service"), SITE) as service,
        # A persistent listener: after the restart the broker queues for it until it is back too.
        Bus(mosquitto.settings("operator", client_id="listener"), SITE) as listener,
    ):
        events = listener.subscribe(listener.topics.events)
        await service.wait_connected(5)
        await listener.wait_connected(5)
        for seq in range(5):
            await service.publish(service.topics.events, event(seq))
        before = await collect(events, 5)
        await mosquitto.save()  # the listener's session is in the persistence file, as after an autosave

        await mosquitto.kill()
        await service.wait_disconnected()
        # Keep publishing: queued in the Bus, in order; a waiting publish waits across the outage.
        queued = [service.publish_queued(service.topics.events, event(seq)) for seq in range(5, 15)]
        async with asyncio.TaskGroup() as group:
            waiting = group.create_task(service.publish(service.topics.events, event(15), timeout=20),
                                        name="publish-across-outage")
            await asyncio.sleep(0.8)  # the Bus retries meanwhile, backing off
            assert not any(d.done() for d in queued)
            assert not waiting.done()
            assert service.queued == 11
            assert service.stats.connect_failures >= 2
            await mosquitto.start()
        for delivery in queued:
            async with asyncio.timeout(5):
                await delivery.wait()
        # At least once: the persistence file may hold a message the listener acknowledged just
        # before the kill as still unacknowledged, and the restarted broker then sends it again.
        after: list[Received] = []
        while not set(range(5, 16)) <= {EventMessage.model_validate_json(m.payload).seq for m in after}:
            after += await collect(events, 1)

    seqs = [EventMessage.model_validate_json(m.payload).seq for m in before + after]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == list(range(16))  # everything, in order
    assert [s for s in seqs[5:] if s >= 5] == list(range(5, 16))  # what was queued: exactly once, in order
    for message in before + after:
        assert validate_message(message.topic, message.payload) == "events"
    assert service.stats.reconnects == 1
    assert service.stats.published == 16
    # The reconnect attempts backed off: each delay at least double the one two attempts before
    # (jitter is at most a factor 2), up to the cap.
    delays = [float(d) for d in re.findall(r"bus fleetctl-helsinki: .* reconnecting in ([0-9.]+) s", caplog.text)]
    assert len(delays) >= 3
    capped = [d for d in delays if d < service.settings.reconnect_max_s / 2]
    assert all(later > earlier for earlier, later in zip(capped, capped[2:], strict=False))
    assert max(delays) <= service.settings.reconnect_max_s


async def test_orders_sent_while_the_service_is_cut_off_arrive_exactly_once(mosquitto: Mosquitto) -> None:
    async with CuttableProxy(mosquitto.port) as proxy:
        service_settings = mosquitto.settings("service", url=proxy.url)
        async with (
            Bus(service_settings, SITE, intake=True) as service,
            Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer,
        ):
            await service.wait_connected(5)
            for order_id in ("early-1", "early-2", "held"):
                await producer.publish(producer.topics.orders_new, order(order_id))
            early_1, early_2, held = await take(service, 3)
            assert early_1.ack()
            assert early_2.ack()
            await asyncio.sleep(0.1)  # let the PUBACKs reach the broker before the cut
            # "held" is being stored when the link dies: not acknowledged.

            proxy.cut()
            await asyncio.wait_for(service.wait_disconnected(), 5)
            # 30 orders while the service is away: more than Mosquitto's in-flight window of 20.
            sent = [f"cut-{i:02d}" for i in range(30)]
            for order_id in sent:
                await producer.publish(producer.topics.orders_new, order(order_id))
            await asyncio.sleep(0.3)
            assert not service.connected
            assert not held.ack()  # its connection is gone: the broker will deliver it again

            proxy.resume()  # the Bus reconnects on its own
            received: list[IntakeMessage] = []
            while len(received) < 31:
                (message,) = await take(service, 1)
                received.append(message)
                # Stored: acknowledge as they come. The broker sends at most 20 unacknowledged
                # messages (max_inflight_messages), so waiting for all 31 first would wait forever.
                assert message.ack()
            assert await no_intake(service)
            assert order_ids(received) == ["held", *sent]  # the unacknowledged one first, then the rest in order
            assert service.stats.reconnects == 1
            assert service.session_present is True

        # Everything was acknowledged: a restarted service gets nothing again.
        async with Bus(service_settings, SITE, intake=True) as service:
            await service.wait_connected(5)
            assert await no_intake(service)


async def test_a_subscription_survives_reconnects(mosquitto: Mosquitto) -> None:
    async with CuttableProxy(mosquitto.port) as proxy:
        viewer_settings = mosquitto.settings("viewer", url=proxy.url, client_id="dashboard", persistent_session=False)
        async with (
            Bus(mosquitto.settings("service"), SITE) as service,
            Bus(viewer_settings, SITE) as viewer,
        ):
            states = viewer.subscribe(viewer.topics.all_vehicle_states, qos=0)
            await service.wait_connected(5)
            await viewer.wait_connected(5)
            telemetry = EXAMPLES[TopicKind.VEHICLE_STATE]
            await service.publish(service.topics.vehicle_state("drone-1"), telemetry, qos=0, retain=True)
            (first,) = await collect(states, 1)
            proxy.cut()
            await viewer.wait_disconnected()
            proxy.resume()
            await viewer.wait_connected(5)
            # A clean session: subscribed again on reconnect, and the retained state comes with it.
            (again,) = await collect(states, 1)
            assert again.retain
            assert again.payload == first.payload
            assert await nothing_more(states) == []
