"""Topic names, topic-level validation, parsing and filter matching."""

from __future__ import annotations

import pytest

from fleetctl.bus.topics import (
    SPECS,
    ParsedTopic,
    SiteTopics,
    TopicKind,
    check_filter,
    check_level,
    check_publish_topic,
    matches,
    parse_topic,
)
from fleetctl.errors import BusError, InvalidTopic


def test_every_topic_of_a_site() -> None:
    t = SiteTopics("helsinki")
    assert t.orders_new == "fleet/helsinki/orders/new"
    assert t.order_status("A-1001") == "fleet/helsinki/orders/A-1001/status"
    assert t.order_handoff("A-1001") == "fleet/helsinki/orders/A-1001/handoff"
    assert t.orders_rejected == "fleet/helsinki/orders/rejected"
    assert t.vehicle_state("drone-1") == "fleet/helsinki/vehicles/drone-1/state"
    assert t.events == "fleet/helsinki/events"
    assert t.zones == "fleet/helsinki/zones"
    assert t.control_request("anna") == "fleet/helsinki/control/anna/request"
    assert t.control_response("anna") == "fleet/helsinki/control/anna/response"
    assert t.all_order_status == "fleet/helsinki/orders/+/status"
    assert t.all_control_requests == "fleet/helsinki/control/+/request"
    assert t.everything == "fleet/helsinki/#"


@pytest.mark.parametrize("bad", ["", "a/b", "a+", "#", "x#y", "nul\x00", "é" * 200])
def test_an_id_must_be_one_valid_topic_level(bad: str) -> None:
    with pytest.raises(InvalidTopic) as caught:
        SiteTopics("helsinki").order_status(bad)
    assert isinstance(caught.value, BusError)
    with pytest.raises(InvalidTopic):
        SiteTopics(bad)


@pytest.mark.parametrize("good", ["A-1001", "shop.acme:42", "ä-ö", "with space"])
def test_ordinary_ids_are_fine(good: str) -> None:
    assert check_level(good) == good
    assert parse_topic(SiteTopics("s").order_status(good)) is not None


def test_parse_is_the_inverse_of_naming() -> None:
    t = SiteTopics("helsinki")
    for kind, spec in SPECS.items():
        key = "k-1" if spec.parameters[1:] else None
        topic = t.for_kind(kind, key)
        parsed = parse_topic(topic)
        assert parsed is not None
        assert (parsed.kind, parsed.site, parsed.key) == (kind, "helsinki", key)
        assert t.parse(topic) == parsed
        assert SiteTopics("turku").parse(topic) is None
    # An order may be called "new" or "rejected" without clashing with the fixed topics.
    assert parse_topic("fleet/s/orders/new/status") == ParsedTopic(TopicKind.ORDER_STATUS, "s", "new")
    assert parse_topic("fleet/s/orders/rejected") is not None
    for foreign in ("fleet", "fleet/s", "other/s/orders/new", "fleet/s/orders//status", "fleet/s/orders/new/x"):
        assert parse_topic(foreign) is None


def test_for_kind_needs_the_key_of_keyed_topics() -> None:
    with pytest.raises(InvalidTopic):
        SiteTopics("s").for_kind(TopicKind.ORDER_STATUS)


def test_filters_and_matching() -> None:
    assert matches("fleet/s/orders/A/status", "fleet/s/orders/+/status")
    assert matches("fleet/s/orders/A/status", "fleet/#")
    assert matches("fleet/s", "fleet/s/#")  # '#' includes the parent level
    assert not matches("fleet/s/orders/A/handoff", "fleet/s/orders/+/status")
    assert not matches("fleet/s/orders/new", "fleet/s/orders/+/status")
    assert not matches("$SYS/broker/uptime", "#")
    for bad in ("a/#/b", "a/b#", "a/+b", ""):
        with pytest.raises(InvalidTopic):
            check_filter(bad)
    for bad in ("a/+/b", "a/#", ""):
        with pytest.raises(InvalidTopic):
            check_publish_topic(bad)
