"""Roles on a Mosquitto of our own, configured with the shipped examples/acl.example and a password
file made by mosquitto_passwd: service, producer, operator, viewer.

On MQTT 3.1.1 Mosquitto acknowledges a forbidden publish and drops it without a word, so "cannot
publish" is shown from the other side: the service never receives the forbidden message, even though
it receives an allowed one sent right after it (Mosquitto handles one connection's packets, and the
fan-out of a message, in order, so the forbidden one would have arrived first)."""

from __future__ import annotations

import json

import pytest
from bus_harness import SITE, Mosquitto, collect, no_intake, nothing_more, order, take

from fleetctl.bus import Bus
from fleetctl.bus.asyncapi import EXAMPLES
from fleetctl.bus.topics import TopicKind
from fleetctl.errors import BusError, BusRefused, BusUnavailable

pytestmark = pytest.mark.timeout(30)


async def test_a_producers_order_arrives_and_it_reads_the_status(mosquitto: Mosquitto) -> None:
    async with (
        Bus(mosquitto.settings("service"), SITE, intake=True) as service,
        Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer,
    ):
        status_feed = producer.subscribe(producer.topics.order_status("P-1"))
        await service.wait_connected(5)
        await producer.wait_connected(5)
        await producer.publish(producer.topics.orders_new, order("P-1"))
        (message,) = await take(service, 1)
        assert json.loads(message.payload)["order_id"] == "P-1"
        await service.publish(service.topics.order_status("P-1"), EXAMPLES[TopicKind.ORDER_STATUS], retain=True)
        assert message.ack()
        (status,) = await collect(status_feed, 1)
        assert status.topic == service.topics.order_status("P-1")


async def test_a_viewer_cannot_publish_orders_or_control_requests(mosquitto: Mosquitto) -> None:
    async with (
        Bus(mosquitto.settings("service"), SITE, intake=True) as service,
        Bus(mosquitto.settings("viewer", client_id="dashboard"), SITE) as viewer,
        Bus(mosquitto.settings("producer", client_id="shop"), SITE) as producer,
        Bus(mosquitto.settings("operator", client_id="console"), SITE) as operator,
    ):
        requests = service.subscribe(service.topics.all_control_requests)
        for bus in (service, viewer, producer, operator):
            await bus.wait_connected(5)
        # The broker acknowledges the viewer's publishes (3.1.1 has no way to say no) ...
        await viewer.publish(viewer.topics.orders_new, order("FORGED-1"))
        await viewer.publish(viewer.topics.control_request("viewer"), EXAMPLES[TopicKind.CONTROL_REQUEST])
        await viewer.publish(viewer.topics.control_request("operator"), EXAMPLES[TopicKind.CONTROL_REQUEST])
        # ... a producer may not send control requests, nor an operator under another's name ...
        await producer.publish(producer.topics.control_request("shop"), EXAMPLES[TopicKind.CONTROL_REQUEST])
        await operator.publish(operator.topics.control_request("anna"), EXAMPLES[TopicKind.CONTROL_REQUEST])
        # ... and the allowed messages sent after them are the first (and only) ones the service gets.
        await producer.publish(producer.topics.orders_new, order("REAL-1"))
        await operator.publish(operator.topics.control_request("operator"), EXAMPLES[TopicKind.CONTROL_REQUEST])
        (message,) = await take(service, 1)
        assert json.loads(message.payload)["order_id"] == "REAL-1"
        message.ack()
        (request,) = await collect(requests, 1)
        assert request.topic == service.topics.control_request("operator")
        assert await nothing_more(requests) == []
        assert await no_intake(service)
        assert service.stats.received == 2


async def test_a_viewer_reads_what_it_may_and_nothing_else(mosquitto: Mosquitto) -> None:
    async with Bus(mosquitto.settings("service"), SITE) as service:
        await service.wait_connected(5)
        await service.publish(service.topics.zones, EXAMPLES[TopicKind.ZONES], retain=True)
        await service.publish(service.topics.control_response("operator"), EXAMPLES[TopicKind.CONTROL_RESPONSE])
        async with Bus(mosquitto.settings("viewer", client_id="dashboard", persistent_session=False), SITE) as viewer:
            everything = viewer.subscribe("fleet/#")  # granted by the broker, but filtered by the ACL
            await viewer.wait_connected(5)
            await service.publish(service.topics.control_response("operator"), EXAMPLES[TopicKind.CONTROL_RESPONSE])
            await service.publish(service.topics.events, EXAMPLES[TopicKind.EVENTS])
            received = await collect(everything, 2)
            assert [m.topic for m in received] == [service.topics.zones, service.topics.events]
            assert await nothing_more(everything) == []


async def test_a_wrong_password_is_refused_with_a_clear_error(mosquitto: Mosquitto) -> None:
    settings = mosquitto.settings("service", password="not-the-password")
    async with Bus(settings, SITE, intake=True) as service:
        with pytest.raises(BusRefused) as caught:
            await service.wait_connected(5)
        error = caught.value
        assert isinstance(error, BusError)
        assert error.username == "service"
        assert mosquitto.url in str(error)
        assert "not authorized" in error.reason
        assert "password" in error.reason
        assert not service.connected
        assert service.stats.connect_failures >= 1
        # The service keeps running; the bus keeps trying (slowly) in case the password file changes.
        with pytest.raises(BusUnavailable, match=r"not connected.*not authorized"):
            await service.publish(service.topics.events, EXAMPLES[TopicKind.EVENTS], timeout=0.2)
    async with Bus(mosquitto.settings(user=None, client_id="anonymous"), SITE) as anonymous:
        with pytest.raises(BusRefused, match="anonymous login"):
            await anonymous.wait_connected(5)
