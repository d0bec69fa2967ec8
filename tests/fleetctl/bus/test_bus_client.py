"""The Bus against a Mosquitto of the test's own: publish and subscribe, retained status, intake with
manual acknowledgement and a persistent session, publishing while the broker is away, MQTT 5, TLS,
and real traffic checked against the AsyncAPI document."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bus_harness import (
    FAST,
    SITE,
    Mosquitto,
    TlsFiles,
    collect,
    no_intake,
    nothing_more,
    order,
    order_ids,
    running_mosquitto,
    take,
)

from fleetctl.bus import BrokerSettings, Bus, OrderStatus
from fleetctl.bus.asyncapi import EXAMPLES, channel_id
from fleetctl.bus.schema import validate_message
from fleetctl.bus.settings import TlsSettings
from fleetctl.bus.topics import TopicKind, parse_topic
from fleetctl.errors import BusUnavailable
from fleetctl.orders import OrderState

pytestmark = pytest.mark.timeout(30)
NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


async def test_status_is_retained_for_late_subscribers(mosquitto: Mosquitto) -> None:
    async with Bus(mosquitto.settings("service"), SITE) as service:
        await service.wait_connected(5)
        status = OrderStatus(order_id="A-1", state=OrderState.ACCEPTED, kinds=["drone"], updated_at=NOW)
        await service.publish(service.topics.order_status("A-1"), status, retain=True)
        assert service.stats.published == 1
        async with Bus(mosquitto.settings("viewer", client_id="viewer-1", persistent_session=False), SITE) as viewer:
            statuses = viewer.subscribe(viewer.topics.all_order_status)
            events = viewer.subscribe(viewer.topics.events)
            await viewer.wait_connected(5)
            (retained,) = await collect(statuses, 1)
            assert retained.retain
            assert OrderStatus.model_validate_json(retained.payload) == status
            event = EXAMPLES[TopicKind.EVENTS]
            await service.publish(service.topics.events, event)
            (live,) = await collect(events, 1)
            assert not live.retain
            assert live.payload == event.model_dump_json().encode()
            statuses.close()  # unsubscribes (in the background): the broker stops sending statuses
            await asyncio.sleep(0.2)
            await service.publish(service.topics.order_status("A-2"), status.model_copy(update={"order_id": "A-2"}))
            await service.publish(service.topics.events, event)
            await collect(events, 1)
            assert await nothing_more(events) == []
            assert (viewer.stats.received, viewer.stats.unrouted) == (3, 0)


async def test_real_traffic_matches_the_asyncapi_document(mosquitto: Mosquitto) -> None:
    """Every kind of message, sent over Mosquitto by our own clients in their roles, read back by an
    operator's tap on fleet/# and validated against asyncapi.yaml."""
    async with (
        Bus(mosquitto.settings("operator", client_id="tap", persistent_session=False), SITE) as tap,
        Bus(mosquitto.settings("service"), SITE) as service,
        Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer,
        Bus(mosquitto.settings("operator", client_id="console"), SITE) as operator,
    ):
        everything = tap.subscribe("fleet/#")
        for bus in (tap, service, producer, operator):
            await bus.wait_connected(5)
        t = service.topics
        sent = [
            (producer, t.orders_new, EXAMPLES[TopicKind.ORDERS_NEW]),
            (producer, t.order_handoff("A-1001"), EXAMPLES[TopicKind.ORDER_HANDOFF]),
            (operator, t.control_request("operator"), EXAMPLES[TopicKind.CONTROL_REQUEST]),
            (service, t.order_status("A-1001"), EXAMPLES[TopicKind.ORDER_STATUS]),
            (service, t.orders_rejected, EXAMPLES[TopicKind.ORDERS_REJECTED]),
            (service, t.events, EXAMPLES[TopicKind.EVENTS]),
            (service, t.zones, EXAMPLES[TopicKind.ZONES]),
            (service, t.control_response("operator"), EXAMPLES[TopicKind.CONTROL_RESPONSE]),
        ]
        for bus, topic, payload in sent:
            await bus.publish(topic, payload)
        assert service.publish_nowait(t.vehicle_state("drone-1"), EXAMPLES[TopicKind.VEHICLE_STATE])
        received = await collect(everything, len(sent) + 1)
        seen = set()
        for message in received:
            channel = validate_message(message.topic, message.payload)
            parsed = parse_topic(message.topic)
            assert parsed is not None
            assert channel == channel_id(parsed.kind)
            seen.add(channel)
        assert seen == {channel_id(kind) for kind in TopicKind}


async def test_intake_is_acknowledged_only_when_the_service_says_so(mosquitto: Mosquitto) -> None:
    """Three orders; the service acks the first and the third only. After a restart the broker
    delivers the second again, and the third too: its PUBACK had to wait behind the second's
    (MQTT 3.1.1 acknowledges in arrival order)."""
    service_settings = mosquitto.settings("service")
    async with Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer:
        async with Bus(service_settings, SITE, intake=True) as service:
            await service.wait_connected(5)
            for order_id in ("o-1", "o-2", "o-3"):
                await producer.publish(producer.topics.orders_new, order(order_id))
            first, second, third = await take(service, 3)
            assert order_ids([first, second, third]) == ["o-1", "o-2", "o-3"]
            assert first.kind == "order"
            assert first.order_id is None
            assert first.qos == 1
            assert first.ack()
            assert third.ack()
            assert service.stats.acked == 2
        async with Bus(service_settings, SITE, intake=True) as service:
            again = await take(service, 2)
            assert order_ids(again) == ["o-2", "o-3"]
            assert service.session_present is True
            for message in again:
                message.ack()
        async with Bus(service_settings, SITE, intake=True) as service:
            await service.wait_connected(5)
            assert await no_intake(service)


async def test_orders_sent_while_the_service_is_down_arrive_once_it_is_back(mosquitto: Mosquitto) -> None:
    service_settings = mosquitto.settings("service")
    async with Bus(service_settings, SITE, intake=True) as service:
        await service.wait_connected(5)  # the broker now keeps a session for the service
    async with Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer:
        for i in range(5):
            await producer.publish(producer.topics.orders_new, order(f"late-{i}"))
        await producer.publish(producer.topics.order_handoff("late-0"), b'{"pin": "4711"}')
    async with Bus(service_settings, SITE, intake=True) as service:
        messages = await take(service, 6)
        assert order_ids(messages[:5]) == [f"late-{i}" for i in range(5)]
        handoff = messages[5]
        assert (handoff.kind, handoff.order_id, json.loads(handoff.payload)) == ("handoff", "late-0", {"pin": "4711"})
        for message in messages:
            assert message.ack()
        assert await no_intake(service)


async def test_publishing_while_the_broker_is_not_there(mosquitto: Mosquitto) -> None:
    await mosquitto.stop()
    async with Bus(mosquitto.settings("service"), SITE) as service:
        assert not service.connected
        with pytest.raises(BusUnavailable, match=r"not connected to .* \(last error: .*refused"):
            await service.wait_connected(0.3)
        # Telemetry is dropped while disconnected; a confirmed publish times out and is taken back.
        assert not service.publish_nowait(service.topics.vehicle_state("drone-1"), EXAMPLES[TopicKind.VEHICLE_STATE])
        with pytest.raises(BusUnavailable, match="was withdrawn"):
            await service.publish(service.topics.events, EXAMPLES[TopicKind.EVENTS], timeout=0.2)
        assert service.queued == 0
        # A queued publish waits for the broker, however long it takes.
        queued = service.publish_queued(service.topics.zones, EXAMPLES[TopicKind.ZONES], retain=True)
        await asyncio.sleep(0.3)
        assert not queued.done()
        assert service.stats.connect_failures >= 2
        await mosquitto.start()
        async with asyncio.timeout(5):
            await queued.wait()
        assert service.connected
        assert service.stats.connects == 1
        assert service.stats.dropped == 1
    async with Bus(mosquitto.settings("viewer", client_id="v", persistent_session=False), SITE) as viewer:
        zones = viewer.subscribe(viewer.topics.zones)
        (retained,) = await collect(zones, 1)
        assert retained.payload == EXAMPLES[TopicKind.ZONES].model_dump_json().encode()


async def test_mqtt5_is_an_option(mosquitto: Mosquitto) -> None:
    settings = mosquitto.settings("service", protocol="5", client_id="svc-v5")
    async with Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer:
        async with Bus(settings, SITE, intake=True) as service:
            await service.wait_connected(5)
            await producer.publish(producer.topics.orders_new, order("v5-1"))
            await take(service, 1)  # and not acknowledged
        await producer.publish(producer.topics.orders_new, order("v5-2"))
        async with Bus(settings, SITE, intake=True) as service:  # the session outlived the connection
            messages = await take(service, 2)
            assert sorted(order_ids(messages)) == ["v5-1", "v5-2"]
            assert all(m.ack() for m in messages)


async def test_tls_with_the_example_configuration(tmp_path: Path, tls_files: TlsFiles) -> None:
    async with running_mosquitto(tmp_path / "tls-broker", tls=tls_files) as broker:
        url = f"mqtts://127.0.0.1:{broker.tls_port}"
        trusted = broker.settings("service", url=url, tls=TlsSettings(ca_file=tls_files.ca))
        async with Bus(trusted, SITE) as service:
            echo = service.subscribe(service.topics.events)
            await service.wait_connected(5)
            await service.publish(service.topics.events, EXAMPLES[TopicKind.EVENTS])
            (message,) = await collect(echo, 1)
            assert validate_message(message.topic, message.payload) == "events"
        # Without our CA the broker's certificate does not verify: never connected, and why.
        untrusted = broker.settings("service", url=url, client_id="svc-untrusted")
        async with Bus(untrusted, SITE) as service:
            with pytest.raises(BusUnavailable, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await service.wait_connected(1.0)


async def test_a_broker_that_never_answers_leaves_no_connection_behind() -> None:
    """A listener that accepts and then says nothing (a hung broker, a wrong port behind a proxy):
    the attempt ends by its deadline, and closing the Bus mid-attempt waits for the attempt (part of
    it runs in a thread) and closes its socket, so no stray connection under our client id lives on."""
    open_connections: set[asyncio.StreamWriter] = set()
    changed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_connections.add(writer)
        await reader.read()  # until the client closes
        open_connections.discard(writer)
        writer.close()
        await writer.wait_closed()
        changed.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        settings = BrokerSettings.model_validate({"url": f"mqtt://127.0.0.1:{port}", **FAST, "connect_timeout_s": 1.0})
        async with Bus(settings, SITE) as bus:
            with pytest.raises(BusUnavailable, match="not connected"):
                await bus.wait_connected(0.5)
            assert open_connections  # the first attempt is still waiting for its CONNACK
        # Closing the Bus closed every connection it opened, the one still waiting for a CONNACK too.
        async with asyncio.timeout(2):
            while open_connections:
                changed.clear()
                await changed.wait()
        assert bus.stats.connects == 0
