"""Where we reach past aiomqtt into its paho client. Pinned to aiomqtt 2.5 / paho-mqtt 2.2.

aiomqtt 2.5 lets paho acknowledge every QoS 1 message the moment it is read from the socket, before
the application has seen it: an order would be acknowledged before it is stored, and lost if the
service then crashed. paho itself can leave acknowledgement to the application (`manual_ack_set`,
`ack`: public API since paho 1.6), but aiomqtt keeps its paho client in the private attribute
`Client._client` and has no public way to turn it on. So `prepare` does, on every new aiomqtt
client, before it connects (a persistent session may deliver queued orders right after CONNACK).

While we are in there: paho's socket connect timeout is set below our own connect deadline (so the
executor thread aiomqtt connects in always finishes before we give up), and the CONNACK's
session-present flag, which aiomqtt drops, and each PINGRESP (see `round_trip`) are recorded.

If an aiomqtt upgrade renames `_client`, `prepare` raises BusError at the first connect instead of
silently acknowledging early; tests/fleetctl/bus cover both the manual acknowledgement and the
redelivery of what was not acknowledged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from fleetctl.errors import BusError


@dataclass
class ConnackInfo:
    """What the broker's CONNACK said beyond accepted/refused."""

    session_present: bool | None = None
    pong: asyncio.Event = field(default_factory=asyncio.Event)  # set by each PINGRESP


def paho_client(client: aiomqtt.Client) -> paho.Client:
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        raise BusError("aiomqtt.Client no longer keeps its paho client in `_client`: fleetctl.bus needs "
                       "it for manual acknowledgement (see fleetctl/bus/_paho.py)")
    return inner


def prepare(client: aiomqtt.Client, *, socket_timeout_s: float) -> ConnackInfo:
    """Turn on manual acknowledgement, bound paho's socket connect, and record the CONNACK flags."""
    inner = paho_client(client)
    inner.manual_ack_set(True)
    inner.connect_timeout = socket_timeout_s
    info = ConnackInfo()
    # aiomqtt registers a VERSION2 callback (it creates the paho client with CallbackAPIVersion.VERSION2).
    aiomqtt_on_connect = cast("paho.CallbackOnConnect_v2 | None", inner.on_connect)

    def on_connect(c: paho.Client, userdata: Any, flags: paho.ConnectFlags, reason_code: ReasonCode,
                   properties: Properties | None = None) -> None:
        info.session_present = bool(flags.session_present)
        if aiomqtt_on_connect is not None:
            aiomqtt_on_connect(c, userdata, flags, reason_code, properties)

    inner.on_connect = on_connect
    handle_pingresp = inner._handle_pingresp

    def on_pingresp() -> MQTTErrorCode:
        info.pong.set()
        return handle_pingresp()

    inner._handle_pingresp = on_pingresp  # type: ignore[method-assign]  # paho has no PINGRESP callback
    return info


def send_puback(client: aiomqtt.Client, mid: int, qos: int) -> bool:
    """Acknowledge one received message (PUBACK for QoS 1). False if paho could not queue it (the
    connection is gone: the broker will deliver the message again)."""
    return paho_client(client).ack(mid, qos) == paho.MQTT_ERR_SUCCESS


async def round_trip(client: aiomqtt.Client, info: ConnackInfo) -> None:
    """Send PINGREQ and wait for its PINGRESP (the caller bounds the wait).

    Why, before a clean DISCONNECT: the broker handles a connection's packets in order, so the
    PINGRESP proves it has read our PUBACKs. Without it, a close while the broker is slow to read can
    lose them: paho closes the socket right after writing DISCONNECT, and if anything the broker sent
    is still unread on our side, the kernel answers the close with a reset, which discards what the
    broker had not read yet. The broker then delivers an order we had acknowledged a second time (seen
    under CPU load in tests/fleetctl/bus/test_bus_client.py)."""
    info.pong.clear()
    if paho_client(client)._send_pingreq() == paho.MQTT_ERR_SUCCESS:
        await info.pong.wait()


def abandon(client: aiomqtt.Client) -> None:
    """Close a connection that never completed (no CONNACK in time): aiomqtt leaves its socket open,
    and a connection the broker accepts late, under our client id, would take the session over from
    our next attempt."""
    inner = paho_client(client)
    if inner.socket() is not None:
        inner.disconnect()
        # aiomqtt would write the DISCONNECT (after which paho closes the socket) on a later turn of
        # the loop; write it now, so the socket is closed even if nothing runs after us.
        inner.loop_write()
