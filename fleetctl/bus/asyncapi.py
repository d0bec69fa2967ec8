"""Generates the AsyncAPI 3.0 document of the bus (asyncapi.yaml, next to this file) from the topic
specs (`fleetctl.bus.topics.SPECS`) and the payload models (`fleetctl.bus.payloads.PAYLOADS`).

    python -m fleetctl.bus.asyncapi            # rewrite asyncapi.yaml
    python -m fleetctl.bus.asyncapi --check    # exit 1 if it is out of date (CI; a test does the same)

The payload schemas are pydantic's JSON Schema of the models (validation mode: what a reader of the
topic may rely on). Operations are seen from the service: it receives orders, hand-off PINs and
control requests, and sends everything else. Needs pyyaml (the `test` extra).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from fleetctl.bus.payloads import (
    PAYLOADS,
    Circle,
    ControlRequest,
    ControlResponse,
    EntityKind,
    EventMessage,
    HandoffMessage,
    OrderStatus,
    ProofOfDelivery,
    RejectedMessage,
    VehicleStateMessage,
    ZoneInfo,
    ZonesMessage,
)
from fleetctl.bus.topics import SPECS, TopicKind, TopicSpec
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import Order, TimeWindow

DOCUMENT_PATH: Final = Path(__file__).with_name("asyncapi.yaml")
#: The version of the bus contract (not of the package): bump it when a payload or topic changes.
CONTRACT_VERSION: Final = "1.0.0"
_SCHEMA_REF: Final = "#/components/schemas/{model}"

_PARAMETERS: Final[dict[str, dict[str, Any]]] = {
    "site": {"description": "The site (one service per site).", "examples": ["helsinki"]},
    "order_id": {"description": "The order's id: one topic level (no '/', '+', '#').",
                 "examples": ["A-1001"]},
    "vehicle_id": {"description": "The vehicle's id in the site's fleet.", "examples": ["drone-1"]},
    "client": {"description": "The operator client's name (its MQTT username under the example ACL).",
               "examples": ["console-anna"]},
}

_T0: Final = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
#: One example payload per topic: shown in the document, and validated against it by the tests.
EXAMPLES: Final[dict[TopicKind, BaseModel]] = {
    TopicKind.ORDERS_NEW: Order(order_id="A-1001", site="helsinki", dropoff="locker-kamppi", weight_kg=1.2,
                                window=TimeWindow(earliest=_T0, latest=_T0 + timedelta(hours=1))),
    TopicKind.ORDER_HANDOFF: HandoffMessage(pin="4711"),
    TopicKind.ORDER_STATUS: OrderStatus(
        order_id="A-1001", state=OrderState.DELIVERED, detail="left in the locker", vehicle_id="robot-2",
        kinds=["robot"], updated_at=_T0 + timedelta(minutes=34),
        proof=ProofOfDelivery(at=_T0 + timedelta(minutes=34), method="locker", lat_deg=60.1699,
                              lon_deg=24.9384, distance_m=2.1, within_radius=True)),
    TopicKind.ORDERS_REJECTED: RejectedMessage.of(b'{"site": "helsinki", "weight_kg": 1.2', "malformed",
                                                  "not JSON: Expecting ',' delimiter", _T0),
    TopicKind.VEHICLE_STATE: VehicleStateMessage(
        vehicle_id="drone-1", kind="drone", mode="MISSION", armed=True, lat_deg=60.17, lon_deg=24.94,
        alt_m=60.0, battery_percent=81.5, link_alive=True, sortie_id="S-17", at=_T0),
    TopicKind.EVENTS: EventMessage(seq=1042, at=_T0, entity=EntityKind.ORDER, entity_id="A-1001",
                                   kind="accepted", data={"kinds": ["drone", "robot"]}),
    TopicKind.ZONES: ZonesMessage(at=_T0, zones=[
        ZoneInfo(zone_id="hospital-heli", reason="helicopter pad", circle=Circle(lat_deg=60.19, lon_deg=24.91,
                                                                                radius_m=300.0)),
        ZoneInfo(zone_id="event-2026-12-03", reason="public event", floor_m=0.0, ceiling_m=120.0,
                 active_from=_T0, active_until=_T0 + timedelta(hours=4),
                 polygon=[[[24.93, 60.16], [24.95, 60.16], [24.95, 60.17], [24.93, 60.16]]]),
    ]),
    TopicKind.CONTROL_REQUEST: ControlRequest(correlation_id="c-0001", command="cancel_order",
                                              args={"order_id": "A-1001"}),
    TopicKind.CONTROL_RESPONSE: ControlResponse(correlation_id="c-0001", ok=True, result={"state": "cancelled"}),
}


def channel_id(kind: TopicKind) -> str:
    """ordersNew, orderStatus, ... (the AsyncAPI channel id of a topic kind)."""
    first, *rest = kind.value.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _operation_id(spec: TopicSpec) -> str:
    verb = "receive" if spec.direction == "in" else "send"
    name = channel_id(spec.kind)
    return verb + name[0].upper() + name[1:]


def _message(spec: TopicSpec, model: type[BaseModel]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": model.__name__,
        "title": model.__name__,
        "summary": spec.summary,
        "contentType": "application/json",
        "payload": {"$ref": _SCHEMA_REF.format(model=model.__name__)},
    }
    if spec.kind in (TopicKind.CONTROL_REQUEST, TopicKind.CONTROL_RESPONSE):
        message["correlationId"] = {"description": "Pairs a response with its request.",
                                    "location": "$message.payload#/correlation_id"}
    message["examples"] = [{"name": "example", "payload": EXAMPLES[spec.kind].model_dump(mode="json")}]
    return message


def build_document() -> dict[str, Any]:
    models = list(dict.fromkeys(PAYLOADS.values()))
    _, top = models_json_schema([(model, "validation") for model in models], ref_template=_SCHEMA_REF)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for kind, spec in SPECS.items():
        model = PAYLOADS[kind]
        cid = channel_id(kind)
        messages[model.__name__] = _message(spec, model)
        channels[cid] = {
            "address": spec.template,
            "title": cid,
            "description": f"{spec.summary} QoS {spec.qos}{', retained' if spec.retained else ''}.",
            "parameters": {name: _PARAMETERS[name] for name in spec.parameters},
            "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        }
        if kind is TopicKind.CONTROL_RESPONSE:
            continue  # the reply of receiveControlRequest
        operation: dict[str, Any] = {
            "action": "receive" if spec.direction == "in" else "send",
            "channel": {"$ref": f"#/channels/{cid}"},
            "summary": spec.summary,
            "messages": [{"$ref": f"#/channels/{cid}/messages/{model.__name__}"}],
            "bindings": {"mqtt": {"qos": spec.qos, "retain": spec.retained, "bindingVersion": "0.2.0"}},
        }
        if kind is TopicKind.CONTROL_REQUEST:
            response = PAYLOADS[TopicKind.CONTROL_RESPONSE].__name__
            rid = channel_id(TopicKind.CONTROL_RESPONSE)
            operation["reply"] = {"channel": {"$ref": f"#/channels/{rid}"},
                                  "messages": [{"$ref": f"#/channels/{rid}/messages/{response}"}]}
        operations[_operation_id(spec)] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fleetctl bus",
            "version": CONTRACT_VERSION,
            "description": (
                "The MQTT topics of one fleetctl service (one site): orders in, status, telemetry, events "
                "and zones out, operator control as request/response. Payloads are JSON (UTF-8). "
                "Everything works on MQTT 3.1.1. Operations are seen from the service. Generated by "
                "`python -m fleetctl.bus.asyncapi` from fleetctl/bus/topics.py and payloads.py: edit "
                "those, not this file."),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {"host": "127.0.0.1:1883", "protocol": "mqtt", "protocolVersion": "3.1.1",
                      "description": "A local Mosquitto, or the embedded broker of `fleetctl demo`."},
            "production": {"host": "broker.example.com:8883", "protocol": "secure-mqtt",
                           "protocolVersion": "3.1.1",
                           "description": "A real broker over TLS, with accounts and an ACL (see "
                                          "fleetctl/bus/examples)."},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": top["$defs"]},
    }


class _PlainDumper(yaml.SafeDumper):
    """Writes shared objects (the site parameter, say) out in full: no &anchors, which some AsyncAPI
    tools and most readers stumble over."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render() -> str:
    header = "# Generated by `python -m fleetctl.bus.asyncapi`; do not edit.\n"
    body = yaml.dump(build_document(), Dumper=_PlainDumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleetctl.bus.asyncapi", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the document is out of date")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH)
    args = parser.parse_args(argv)
    text = render()
    current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    if args.check:
        if current != text:
            print(f"{args.output} is out of date: run python -m fleetctl.bus.asyncapi", file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
