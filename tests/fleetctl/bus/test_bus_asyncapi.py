"""The AsyncAPI document: up to date with the models, internally consistent, and a working validator.
(Real traffic is validated against it in test_bus_client.py and test_bus_embedded.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleetctl.bus import asyncapi
from fleetctl.bus.schema import AsyncApiDocument, default_document, validate_message
from fleetctl.bus.topics import SPECS, SiteTopics, TopicKind
from fleetctl.errors import SchemaMismatch


def test_the_committed_document_is_up_to_date() -> None:
    committed = asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8")
    assert committed == asyncapi.render(), "run: python -m fleetctl.bus.asyncapi"


def test_check_mode_of_the_generator(tmp_path: Path) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert asyncapi.main(["--check", "--output", str(target)]) == 1
    assert asyncapi.main(["--output", str(target)]) == 0
    assert asyncapi.main(["--check", "--output", str(target)]) == 0


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [r for key, value in node.items() for r in ([value] if key == "$ref" else _refs(value))]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_the_document_is_consistent() -> None:
    doc = yaml.safe_load(asyncapi.DOCUMENT_PATH.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    loaded = AsyncApiDocument(doc)
    for ref in _refs(doc):  # every reference resolves
        assert loaded._resolve({"$ref": ref}) is not None, ref
    channels = doc["channels"]
    # One channel per topic kind, with the topic's address and its parameters.
    assert {ch["address"] for ch in channels.values()} == {spec.template for spec in SPECS.values()}
    for ch in channels.values():
        params = [part[1:-1] for part in ch["address"].split("/") if part.startswith("{")]
        assert list(ch["parameters"]) == params
    # Every channel is used by an operation (the responses as the reply of the control requests).
    used = {op["channel"]["$ref"] for op in doc["operations"].values()}
    used |= {op["reply"]["channel"]["$ref"] for op in doc["operations"].values() if "reply" in op}
    assert used == {f"#/channels/{cid}" for cid in channels}
    for op in doc["operations"].values():
        spec = next(s for s in SPECS.values() if f"#/channels/{asyncapi.channel_id(s.kind)}" == op["channel"]["$ref"])
        assert op["action"] == ("receive" if spec.direction == "in" else "send")
        assert op["bindings"]["mqtt"]["qos"] == spec.qos
        assert op["bindings"]["mqtt"]["retain"] == spec.retained


def test_every_example_is_valid_and_resolves_to_its_channel() -> None:
    topics = SiteTopics("helsinki")
    for kind, example in asyncapi.EXAMPLES.items():
        topic = topics.for_kind(kind, "k-1" if SPECS[kind].parameters[1:] else None)
        assert validate_message(topic, example.model_dump_json()) == asyncapi.channel_id(kind)


def test_invalid_messages_are_named_precisely() -> None:
    status_topic = SiteTopics("helsinki").order_status("A-1")
    good = json.loads(asyncapi.EXAMPLES[TopicKind.ORDER_STATUS].model_dump_json())
    with pytest.raises(SchemaMismatch, match="state"):
        validate_message(status_topic, json.dumps({**good, "state": "teleported"}))
    with pytest.raises(SchemaMismatch, match="not JSON"):
        validate_message(status_topic, b"\xff")
    with pytest.raises(SchemaMismatch, match="no channel"):
        validate_message("fleet/helsinki/somewhere/else", b"{}")
    order = json.loads(asyncapi.EXAMPLES[TopicKind.ORDERS_NEW].model_dump_json())
    with pytest.raises(SchemaMismatch, match="weight_kg"):
        validate_message("fleet/helsinki/orders/new", json.dumps({**order, "weight_kg": -1}))
    with pytest.raises(SchemaMismatch, match="surprise"):  # orders are strict: no unknown fields
        validate_message("fleet/helsinki/orders/new", json.dumps({**order, "surprise": 1}))
    match = default_document().match("fleet/helsinki/control/anna/request")
    assert (match.channel, match.parameters) == ("controlRequest", {"site": "helsinki", "client": "anna"})
