"""`Bus`: the service's one MQTT connection, kept alive in the background.

    async with Bus(settings, "helsinki", intake=True) as bus:
        async for msg in bus.intake():
            ...                              # parse, validate, commit to the store
            msg.ack()                        # only now may the broker forget it
            await bus.publish(bus.topics.order_status(order_id), status)

The connection task connects, subscribes, and reconnects with exponential backoff (jittered, capped
at `reconnect_max_s`) whenever the broker goes away; it never raises to the service for a broker that
is down or refuses us. What the service sees instead: `connected`, `wait_connected()` (which raises
BusRefused at once when the broker refused our credentials), `stats`, and publishes that wait (or
fail with BusUnavailable after their timeout).

Delivery guarantees:
- in: QoS 1 with a persistent session (clean_session=False under a stable client id), so orders
  published while the service is away wait at the broker. A message is acknowledged only by
  `IntakeMessage.ack()`, after the service stored it; a message not acknowledged when the connection
  drops, or the process dies, is delivered again. The service may therefore see one twice, and
  answers the second from the store (the order id is the idempotency key).
- out: `publish` waits until the broker has the message (PUBACK); messages wait in a bounded queue
  while the broker is away and go out, in order, on reconnect. A message the broker may have had
  when the link broke is sent again (at-least-once). `publish_nowait` is QoS 0 telemetry: dropped
  while disconnected, as a stale position is worth nothing later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

import aiomqtt
import paho.mqtt.client as paho
from aiomqtt.exceptions import MqttCodeError, MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel

from fleetctl.bus import _paho
from fleetctl.bus._backoff import Backoff
from fleetctl.bus._inbox import (
    AckTracker,
    IntakeKind,
    IntakeMessage,
    Mailbox,
    MailboxClosed,
    Received,
    Subscription,
)
from fleetctl.bus._outbox import Delivery, Outbox
from fleetctl.bus.payloads import encode
from fleetctl.bus.settings import BrokerSettings
from fleetctl.bus.topics import SiteTopics, TopicKind, check_filter, check_publish_topic, matches
from fleetctl.errors import BusError, BusRefused, BusUnavailable

log = logging.getLogger("fleetctl.bus")

# CONNACK reasons (MQTT 5 reason codes; paho maps the 3.1.1 return codes 1-5 onto 132-135) that
# retrying will not cure: the service keeps trying, slowly, but says so loudly.
_PERMANENT_REFUSALS: Final = frozenset({
    132,  # unsupported protocol version (3.1.1 rc 1)
    133,  # client identifier not valid (rc 2)
    134,  # bad user name or password (rc 4)
    135,  # not authorised (rc 5)
    138,  # banned
    140,  # bad authentication method
})
# What a broken or refused link raises: from aiomqtt/paho, the socket, TLS, our own deadlines.
_LINK_ERRORS: Final = (aiomqtt.MqttError, OSError, TimeoutError)
# A connection that lived this long was healthy: the next failure starts the backoff from the bottom.
_HEALTHY_AFTER_S: Final = 10.0
# How long closing the Bus waits for queued messages to reach the broker, and for its DISCONNECT.
_CLOSE_FLUSH_S: Final = 2.0
_DISCONNECT_S: Final = 2.0
# paho's socket connect (TLS handshake included) and aiomqtt's wait for the CONNACK each get this share
# of connect_timeout_s, so that they, not our outer deadline, end a slow attempt: the executor thread
# paho connects in cannot be cancelled, and must not finish after we have given up on it.
_STEP_SHARE: Final = 0.3
# No Nagle: paho leaves it on, and with it a small PUBLISH written while our last PUBACK is still
# unacknowledged waits for the broker's delayed ACK (up to 40 ms on Linux); the service writes
# PUBACKs and status messages back to back (bench/intake.py). The broker needs the same on its side
# (Mosquitto: set_tcp_nodelay true).
_SOCKET_OPTIONS: Final = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)


@dataclass
class BusStats:
    """Counters since the Bus was opened."""

    connects: int = 0
    reconnects: int = 0  # connects after the first
    connect_failures: int = 0
    published: int = 0  # confirmed by the broker (QoS 1) or written (QoS 0)
    dropped: int = 0  # QoS 0 messages not sent because we were disconnected
    received: int = 0
    acked: int = 0  # intake messages the service acknowledged
    unrouted: int = 0  # received on a filter nobody listens to any more (an old session's subscription)
    subscribe_failures: int = 0


class _IntakeStream:
    def __init__(self, mailbox: Mailbox[IntakeMessage]) -> None:
        self._mailbox = mailbox

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> IntakeMessage:
        try:
            return await self._mailbox.get()
        except MailboxClosed:
            raise StopAsyncIteration from None


class Bus:
    """One site's MQTT connection (see the module docstring). `intake=True` subscribes to orders/new
    and orders/+/handoff with manual acknowledgement: only the service itself should ask for it,
    under its own stable client id."""

    def __init__(self, settings: BrokerSettings, site: str, *, intake: bool = False) -> None:
        self.settings = settings
        self.topics = SiteTopics(site)
        self.client_id = settings.client_id_for(site)
        self.stats = BusStats()
        self._outbox = Outbox(settings.max_queued)
        self._intake: Mailbox[IntakeMessage] | None = Mailbox(settings.intake_queue) if intake else None
        self._intake_filters = (self.topics.orders_new, self.topics.all_order_handoffs) if intake else ()
        self._subscriptions: list[Subscription] = []
        self._subscriptions_changed = asyncio.Event()
        self._changed = asyncio.Event()  # pulsed on every change of connection state
        self._connected = False
        self._session_present: bool | None = None
        self._up_since: float | None = None  # loop time of the current connection's start
        self._last_error: str | None = None
        self._refused: BusRefused | None = None
        self._ssl: ssl.SSLContext | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._runner: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifecycle

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._closed:
            raise BusError("a Bus can be opened once")
        if self.settings.uses_tls:
            # Loading CA and client certificates reads files: not on the event loop.
            self._ssl = await asyncio.to_thread(self.settings.ssl_context)
        async with contextlib.AsyncExitStack() as stack:
            group = await stack.enter_async_context(asyncio.TaskGroup())
            self._runner = group.create_task(self._run(), name=f"bus-{self.client_id}")
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc_type is None and self._connected and len(self._outbox):
            # A clean exit: give what is queued a moment to reach the broker.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_FLUSH_S):
                    await self._outbox.wait_idle()
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
        try:
            if self._stack is not None:
                await self._stack.aclose()
        finally:
            failed = self._outbox.close(BusError("the Bus closed before the broker confirmed this message"))
            if failed:
                log.warning("bus %s closed with %d QoS 1 messages the broker never confirmed",
                            self.client_id, failed)
            if self._intake is not None:
                self._intake.close()
            for subscription in list(self._subscriptions):
                subscription.close()
            self._notify()

    # -- state

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def session_present(self) -> bool | None:
        """Whether the broker still had our session at the last connect (None before the first)."""
        return self._session_present

    @property
    def last_error(self) -> str | None:
        """Why the last connection attempt failed or the last connection ended; None while connected."""
        return self._last_error

    @property
    def queued(self) -> int:
        """Messages waiting for the broker (queued or in flight)."""
        return len(self._outbox)

    # A `timeout` argument (ASYNC109) because expiry is an outcome here, not just a deadline: the caller
    # gets BusUnavailable saying why we are not connected (publish: and whether the message went out).
    async def wait_connected(self, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Until connected (and subscribed). BusRefused at once if the broker refused us, BusUnavailable
        after `timeout` seconds (None: no limit)."""
        try:
            async with asyncio.timeout(timeout):
                while not self._connected:
                    if self._refused is not None:
                        raise self._refused
                    if self._closed:
                        raise BusUnavailable("the Bus is closed")
                    await self._changed.wait()
        except TimeoutError:
            raise BusUnavailable(f"not connected to {self.settings.url} after {timeout} s"
                                 f"{self._why()}") from None

    async def wait_disconnected(self) -> None:
        while self._connected:
            await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _why(self) -> str:
        return f" (last error: {self._last_error})" if self._last_error else ""

    # -- publishing

    async def publish(self, topic: str, payload: BaseModel | bytes, *, qos: int = 1, retain: bool = False,
                      timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Publish and wait until the broker has it (PUBACK for QoS 1). While disconnected the message
        waits in the queue; after `timeout` (default `publish_timeout_s`) it is withdrawn if it was
        never sent, and BusUnavailable is raised (the caller's outbox retries; a message that was sent
        but not confirmed may arrive twice). Cancelling withdraws it the same way."""
        delivery = self.publish_queued(topic, payload, qos=qos, retain=retain)
        limit = self.settings.publish_timeout_s if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                await delivery.wait()
        except TimeoutError:
            withdrawn = self._outbox.withdraw(delivery)
            state = "was withdrawn" if withdrawn else "was sent and may still arrive"
            why = "" if self._connected else f"; not connected to {self.settings.url}{self._why()}"
            raise BusUnavailable(f"the broker did not confirm {topic!r} within {limit} s and the message "
                                 f"{state}{why}") from None
        except asyncio.CancelledError:
            self._outbox.withdraw(delivery)
            raise

    def publish_queued(self, topic: str, payload: BaseModel | bytes, *, qos: int = 1,
                       retain: bool = False) -> Delivery:
        """Queue a message without waiting: it stays queued across reconnects until the broker has it
        or the Bus closes. `await delivery.wait()` to learn when. BusQueueFull when the queue is full."""
        if self._closed:
            raise BusError("the Bus is closed")
        if qos not in (0, 1):
            raise BusError(f"qos must be 0 or 1, not {qos} (QoS 2 is not used on this bus)")
        data = payload if isinstance(payload, bytes) else encode(payload)
        return self._outbox.put(check_publish_topic(topic), data, qos, retain)

    def publish_nowait(self, topic: str, payload: BaseModel | bytes, *, retain: bool = False) -> bool:
        """QoS 0, fire and forget (telemetry). Dropped, returning False, while disconnected or when the
        queue is full."""
        if self._closed or not self._connected or len(self._outbox) >= self._outbox.limit:
            self.stats.dropped += 1
            return False
        data = payload if isinstance(payload, bytes) else encode(payload)
        self._outbox.put(check_publish_topic(topic), data, 0, retain)
        return True

    # -- receiving

    def intake(self) -> AsyncIterator[IntakeMessage]:
        """The orders/new and handoff messages, oldest first, each to be `ack()`ed once stored. Ends
        when the Bus closes."""
        if self._intake is None:
            raise BusError("this Bus was opened without intake=True")
        return _IntakeStream(self._intake)

    @staticmethod
    def ack(message: IntakeMessage) -> bool:
        """Same as `message.ack()`."""
        return message.ack()

    def subscribe(self, topic_filter: str, *, qos: int = 1, maxsize: int = 1024) -> Subscription:
        """Messages on `topic_filter` (subscribed on every connection from now on; call before
        opening the Bus to also catch what a persistent session delivers right at connect). Closing
        the subscription unsubscribes."""
        if self._closed:
            raise BusError("the Bus is closed")
        if qos not in (0, 1):
            raise BusError(f"qos must be 0 or 1, not {qos}")
        subscription = Subscription(check_filter(topic_filter), qos, maxsize, self._forget)
        self._subscriptions.append(subscription)
        self._subscriptions_changed.set()
        return subscription

    def _forget(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)
        self._subscriptions_changed.set()

    def _desired_filters(self) -> dict[str, int]:
        desired = dict.fromkeys(self._intake_filters, 1)
        for subscription in self._subscriptions:
            desired[subscription.filter] = max(desired.get(subscription.filter, 0), subscription.qos)
        return desired

    # -- the connection task

    async def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        loop = asyncio.get_running_loop()
        failures = 0
        logged: str | None = None
        while True:
            self._up_since = None
            error: BaseException | None = None
            try:
                await self._connection()
            except* BusRefused as group:
                error = _first(group)
            except* _LINK_ERRORS as group:
                error = _first(group)
            if self._up_since is not None and loop.time() - self._up_since >= _HEALTHY_AFTER_S:
                backoff.reset()
                failures = 0
            failures += 1
            delay = backoff.next_delay()
            reason = _describe(error) if error is not None else "connection closed"
            self._last_error = reason
            self._notify()
            # The first failure of a streak, and a new reason, are worth a warning; repeats are not.
            level = logging.WARNING if failures == 1 or reason != logged else logging.DEBUG
            logged = reason
            log.log(level, "bus %s: %s; reconnecting in %.1f s", self.client_id, reason, delay)
            await asyncio.sleep(delay)

    async def _connection(self) -> None:
        """One connection, from CONNECT until it breaks."""
        client = self._new_client()
        connack = _paho.prepare(client, socket_timeout_s=self.settings.connect_timeout_s * _STEP_SHARE)
        async with self._opened(client, connack):
            # Known before anything is handed out: a persistent session delivers right after CONNACK.
            self._session_present = connack.session_present
            tracker = AckTracker(lambda mid, qos: _paho.send_puback(client, mid, qos))
            try:
                async with asyncio.TaskGroup() as group:
                    # Reading starts before subscribing: a persistent session delivers right away.
                    group.create_task(self._receive(client, tracker), name=f"bus-{self.client_id}-receive")
                    active: dict[str, int] = {}
                    await self._sync_subscriptions(client, active)
                    self._mark_up()
                    group.create_task(self._send(client, group), name=f"bus-{self.client_id}-send")
                    group.create_task(self._keep_subscriptions(client, active),
                                      name=f"bus-{self.client_id}-subscriptions")
            finally:
                if self._connected:
                    self._mark_down()
                tracker.close()
                dropped = self._outbox.connection_lost()
                self.stats.dropped += dropped

    def _new_client(self) -> aiomqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        properties: Properties | None = None
        if v5 and s.persistent_session:
            # MQTT 5 ends a session at disconnect unless told otherwise.
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho leaves it untyped
            properties.SessionExpiryInterval = s.session_expiry_s
        client = aiomqtt.Client(
            s.host, s.port,
            username=s.username,
            password=s.password.get_secret_value() if s.password is not None else None,
            identifier=self.client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            clean_session=None if v5 else not s.persistent_session,
            clean_start=(not s.persistent_session) if v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,  # 3.1.1: unused
            properties=properties,
            keepalive=s.keepalive_s,
            # aiomqtt's own deadline for the CONNACK; ours (connect_timeout_s) is the outer bound.
            timeout=s.connect_timeout_s * _STEP_SHARE,
            tls_context=self._ssl,
            max_inflight_messages=s.max_inflight,
            socket_options=_SOCKET_OPTIONS,
        )
        # aiomqtt warns above 10 concurrent publishes; up to max_inflight is what we ask for.
        client.pending_calls_threshold = s.max_inflight + 10
        return client

    @contextlib.asynccontextmanager
    async def _opened(self, client: aiomqtt.Client, link: _paho.ConnackInfo) -> AsyncIterator[aiomqtt.Client]:
        try:
            await self._connect(client)
        except MqttConnectError as e:
            self.stats.connect_failures += 1
            code = e.rc.value if isinstance(e.rc, ReasonCode) else e.rc
            if code in _PERMANENT_REFUSALS:
                self._refused = BusRefused(self.settings.url, _reason_text(e), self.settings.username)
                self._notify()
                raise self._refused from e
            raise
        except Exception:
            self.stats.connect_failures += 1
            raise
        try:
            yield client
        finally:
            await self._goodbye(client, link if self._intake is not None else None)

    async def _connect(self, client: aiomqtt.Client) -> None:
        attempt = asyncio.get_running_loop().create_task(client.__aenter__(), name=f"bus-{self.client_id}-connect")
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await asyncio.shield(attempt)
        except BaseException:
            # Timed out, cancelled (the Bus is closing) or failed. Part of the attempt runs in a thread
            # that cannot be cancelled, and a connection it completes later would live on under our
            # client id (and take the session over from our next one). So let it finish (paho's and
            # aiomqtt's own deadlines end it within 2 * _STEP_SHARE * connect_timeout_s) and close
            # whatever it opened.
            if not attempt.done():
                await asyncio.wait({attempt}, timeout=self.settings.connect_timeout_s)
            if attempt.done() and not attempt.cancelled() and attempt.exception() is None:
                await self._goodbye(client)
            else:
                _paho.abandon(client)
            raise

    @staticmethod
    async def _goodbye(client: aiomqtt.Client, confirm: _paho.ConnackInfo | None = None) -> None:
        # Say goodbye (DISCONNECT) if the link is still up; never hang on a dead one. With `confirm`
        # (a connection that acknowledges intake), first make sure the broker has read our PUBACKs.
        with contextlib.suppress(*_LINK_ERRORS):
            if confirm is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_DISCONNECT_S):
                        await _paho.round_trip(client, confirm)
            async with asyncio.timeout(_DISCONNECT_S):
                await client.__aexit__(None, None, None)

    def _mark_up(self) -> None:
        session_present = self._session_present
        first = self.stats.connects == 0
        self.stats.connects += 1
        if not first:
            self.stats.reconnects += 1
        self._up_since = asyncio.get_running_loop().time()
        self._connected = True
        self._refused = None
        self._last_error = None
        if self.settings.persistent_session and session_present is False and not first:
            log.warning("bus %s: the broker no longer had our session; QoS 1 messages sent to us while we "
                        "were away are lost", self.client_id)
        log.info("bus %s connected to %s (session present: %s)", self.client_id, self.settings.url,
                 session_present)
        self._notify()

    def _mark_down(self) -> None:
        self._connected = False
        self._notify()

    async def _receive(self, client: aiomqtt.Client, tracker: AckTracker) -> None:
        async for message in client.messages:
            self.stats.received += 1
            topic = message.topic.value
            payload = _as_bytes(message.payload)
            entry = tracker.arrived(message.mid, message.qos)
            handed_to_intake = False
            if self._intake is not None:
                parsed = self.topics.parse(topic)
                if parsed is not None and parsed.kind in (TopicKind.ORDERS_NEW, TopicKind.ORDER_HANDOFF):
                    kind: IntakeKind = "order" if parsed.kind is TopicKind.ORDERS_NEW else "handoff"
                    intake_message = IntakeMessage(topic, payload, message.qos, message.retain, kind,
                                                   parsed.key, tracker, entry, self._count_ack)
                    with contextlib.suppress(MailboxClosed):  # closing: unacknowledged, so redelivered
                        await self._intake.put(intake_message)
                    handed_to_intake = True
            routed = handed_to_intake
            for subscription in list(self._subscriptions):
                if matches(topic, subscription.filter):
                    routed = True
                    await subscription.deliver(Received(topic, payload, message.qos, message.retain))
            if not routed:
                self.stats.unrouted += 1
            if entry is not None and not handed_to_intake:
                tracker.settle(entry)

    def _count_ack(self) -> None:
        self.stats.acked += 1

    async def _send(self, client: aiomqtt.Client, group: asyncio.TaskGroup) -> None:
        # One task per message so that up to max_inflight wait for their PUBACKs together; they are
        # created, and so hand their messages to paho, in queue order.
        window = asyncio.Semaphore(self.settings.max_inflight)
        while True:
            await window.acquire()
            delivery = await self._outbox.take()
            group.create_task(self._send_one(client, delivery, window),
                              name=f"bus-{self.client_id}-publish-{delivery.seq}")

    async def _send_one(self, client: aiomqtt.Client, delivery: Delivery, window: asyncio.Semaphore) -> None:
        try:
            # A broker that takes this long to confirm is as good as gone: the TimeoutError ends the
            # connection, and the message goes out again on the next one.
            async with asyncio.timeout(self.settings.publish_timeout_s):
                await client.publish(delivery.topic, delivery.payload, qos=delivery.qos, retain=delivery.retain,
                                     timeout=math.inf)
        finally:
            window.release()
        self._outbox.confirm(delivery)
        self.stats.published += 1

    async def _keep_subscriptions(self, client: aiomqtt.Client, active: dict[str, int]) -> None:
        while True:
            await self._subscriptions_changed.wait()
            await self._sync_subscriptions(client, active)

    async def _sync_subscriptions(self, client: aiomqtt.Client, active: dict[str, int]) -> None:
        self._subscriptions_changed.clear()
        desired = self._desired_filters()
        new = [(f, q) for f, q in desired.items() if active.get(f) != q]
        gone = [f for f in active if f not in desired]
        if new:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                codes = await client.subscribe(new, timeout=math.inf)
            granted: list[int | ReasonCode] = list(codes)
            for (topic_filter, qos), code in zip(new, granted, strict=True):
                if _refused(code):
                    self.stats.subscribe_failures += 1
                    log.error("bus %s: the broker refused the subscription to %r", self.client_id, topic_filter)
                else:
                    active[topic_filter] = qos
        if gone:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                await client.unsubscribe(gone, timeout=math.inf)
            for topic_filter in gone:
                active.pop(topic_filter, None)


def _refused(code: int | ReasonCode) -> bool:
    """A SUBACK failure: 0x80 in 3.1.1 (paho passes it on as a reason code), >= 0x80 in MQTT 5."""
    return code.is_failure if isinstance(code, ReasonCode) else code >= 0x80


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _as_bytes(payload: object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return b"" if payload is None else str(payload).encode()


def _reason_text(error: MqttConnectError) -> str:
    if isinstance(error.rc, ReasonCode):
        code = error.rc.value
        hint = " (wrong username or password, or no permission to connect)" if code in (134, 135) else ""
        return f"{error.rc.getName().lower()}{hint}"
    return str(error)


def _describe(error: BaseException) -> str:
    if isinstance(error, BusRefused):
        return str(error)
    cause = error.__cause__ if isinstance(error, aiomqtt.MqttError) and error.__cause__ else error
    text = str(cause) or type(cause).__name__
    if isinstance(cause, MqttCodeError) and not isinstance(cause, MqttConnectError):
        text = f"connection lost ({text})"  # paho's code alone ("unspecified error") says little
    if isinstance(cause, TimeoutError) and not str(cause):
        text = "timed out"
    return text


__all__ = ["Bus", "BusStats", "Delivery", "IntakeMessage", "Received", "Subscription"]
