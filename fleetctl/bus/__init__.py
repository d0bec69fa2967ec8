"""The service's MQTT side: topics, payload models, the `Bus` connection, the embedded broker.

    from fleetctl.bus import Bus, BrokerSettings

    async with Bus(BrokerSettings(url="mqtt://127.0.0.1:1883"), "helsinki", intake=True) as bus:
        ...

The AsyncAPI document of every topic ships next to this file (asyncapi.yaml); regenerate it with
``python -m fleetctl.bus.asyncapi`` after changing a payload model, and check traffic against it with
`fleetctl.bus.schema.validate_message`. The in-process broker (amqtt) is
`fleetctl.bus.embedded.EmbeddedBroker`, imported only by those who need it.
"""

from fleetctl.bus._inbox import IntakeMessage, Received, Subscription
from fleetctl.bus._outbox import Delivery
from fleetctl.bus.client import Bus, BusStats
from fleetctl.bus.payloads import (
    ControlRequest,
    ControlResponse,
    EventMessage,
    HandoffMessage,
    OrderStatus,
    ProofOfDelivery,
    RejectedMessage,
    VehicleStateMessage,
    ZonesMessage,
    encode,
)
from fleetctl.bus.settings import BrokerSettings, TlsSettings
from fleetctl.bus.topics import SiteTopics, TopicKind, check_level, parse_topic

__all__ = [
    "BrokerSettings",
    "Bus",
    "BusStats",
    "ControlRequest",
    "ControlResponse",
    "Delivery",
    "EventMessage",
    "HandoffMessage",
    "IntakeMessage",
    "OrderStatus",
    "ProofOfDelivery",
    "Received",
    "RejectedMessage",
    "SiteTopics",
    "Subscription",
    "TlsSettings",
    "TopicKind",
    "VehicleStateMessage",
    "ZonesMessage",
    "check_level",
    "encode",
    "parse_topic",
]
