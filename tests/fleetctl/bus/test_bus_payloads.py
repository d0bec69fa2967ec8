"""Payload models, settings, and the backoff."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from fleetctl.bus._backoff import Backoff
from fleetctl.bus.payloads import (
    EXCERPT_CHARS,
    PAYLOADS,
    HandoffMessage,
    OrderStatus,
    RejectedMessage,
    encode,
)
from fleetctl.bus.settings import BrokerSettings, TlsSettings
from fleetctl.bus.topics import TopicKind
from fleetctl.errors import ConfigError
from fleetctl.orders import Order, OrderState

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def test_every_topic_kind_has_a_payload_model() -> None:
    assert set(PAYLOADS) == set(TopicKind)
    assert PAYLOADS[TopicKind.ORDERS_NEW] is Order


def test_status_round_trip_and_wire_form() -> None:
    status = OrderStatus(order_id="A-1", state=OrderState.REJECTED, reason="malformed", detail="weight_kg: missing",
                         updated_at=NOW, fields={"errors": {"weight_kg": "Field required"}})
    wire = json.loads(encode(status))
    assert wire["updated_at"] == "2026-12-03T10:00:00Z"
    assert wire["eta"] is None
    assert wire["kinds"] == []
    assert OrderStatus.model_validate_json(encode(status)) == status
    # A newer service may add fields: readers built against this version ignore them.
    assert OrderStatus.model_validate({**wire, "added_later": 1}) == status


def test_rejection_quotes_the_start_of_the_raw_payload() -> None:
    raw = b"\xff\xfe not json " + b"x" * 1000
    rejected = RejectedMessage.of(raw, "malformed", "not JSON", NOW)
    assert rejected.excerpt.startswith("\ufffd\ufffd not json")
    assert len(rejected.excerpt) == EXCERPT_CHARS + 1
    assert rejected.excerpt.endswith("…")
    assert RejectedMessage.of(b"{}", "malformed", "no order_id", NOW).excerpt == "{}"


def test_handoff_pin_is_digits() -> None:
    assert HandoffMessage.model_validate_json(b'{"pin": " 4711 "}').pin == "4711"
    for bad in (b'{"pin": "47"}', b'{"pin": "abcd"}', b'{"pin": "4711", "extra": 1}'):
        with pytest.raises(ValidationError):
            HandoffMessage.model_validate_json(bad)


def test_broker_settings_from_urls() -> None:
    plain = BrokerSettings()
    assert (plain.host, plain.port, plain.uses_tls, plain.ssl_context()) == ("127.0.0.1", 1883, False, None)
    secure = BrokerSettings(url="mqtts://broker.example.com")
    assert (secure.host, secure.port, secure.uses_tls) == ("broker.example.com", 8883, True)
    assert secure.client_id_for("helsinki") == "fleetctl-helsinki"
    assert BrokerSettings(client_id="svc-1").client_id_for("helsinki") == "svc-1"
    for bad in ("http://x", "mqtt://", "mqtt://u:p@host", "mqtt://host:99999", "mqtt://host/path"):
        with pytest.raises(ValidationError):
            BrokerSettings(url=bad)
    with pytest.raises(ValidationError):
        BrokerSettings(url="mqtt://host", tls=TlsSettings(insecure=True))
    with pytest.raises(ValidationError):
        BrokerSettings(reconnect_min_s=5, reconnect_max_s=1)
    assert "secret" not in repr(BrokerSettings.model_validate({"username": "u", "password": "secret"}))


def test_tls_context() -> None:
    context = BrokerSettings(url="mqtts://h", tls=TlsSettings(insecure=True)).ssl_context()
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname
    verified = BrokerSettings(url="mqtts://h").ssl_context()
    assert verified is not None
    assert verified.verify_mode == ssl.CERT_REQUIRED
    assert verified.check_hostname
    with pytest.raises(ConfigError):
        BrokerSettings(url="mqtts://h", tls=TlsSettings(ca_file=Path("/nonexistent/ca.pem"))).ssl_context()


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    top = Backoff(0.5, 10.0, rand=lambda: 1.0)
    assert [top.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    bottom = Backoff(0.5, 10.0, rand=lambda: 0.0)
    assert [bottom.next_delay() for _ in range(3)] == [0.25, 0.5, 1.0]
    bottom.reset()
    assert bottom.next_delay() == 0.25
    jittered = Backoff(0.5, 10.0)
    delays = [jittered.next_delay() for _ in range(50)]
    assert all(0.25 <= d <= 10.0 for d in delays)
    assert len(set(delays[10:])) > 1
