"""An MQTT broker inside the service's own event loop (amqtt), for `fleetctl demo` and anyone without
a broker of their own:

    async with EmbeddedBroker() as broker:                    # 127.0.0.1, a free port
        async with Bus(broker.settings(), "helsinki", intake=True) as bus:
            ...

MQTT 3.1.1 only, loopback only, no authentication: anything that can reach 127.0.0.1 may publish
orders. A real deployment points the service at Mosquitto (see examples/mosquitto.conf) or a
clustered broker instead.

What amqtt 0.12 does and does not do, and what we do about it:
- Persistent sessions (clean_session=False): amqtt keeps a session's subscriptions, and queues QoS 1
  messages for it while it is disconnected, but only for sessions it did not log in anonymously; its
  AnonymousAuthPlugin marks every session anonymous. So the broker here authenticates with
  `_LoopbackAuth` instead, which admits every client without that mark: queued orders then reach a
  reconnecting service.
- amqtt does not redeliver a QoS 1 message that was sent but not acknowledged when the connection
  dropped (it forgets it, and gives up waiting for the PUBACK after 5 s even on a live connection).
  Mosquitto redelivers. With the embedded broker, an order received but not yet acknowledged when
  the connection drops is therefore lost at the broker; as the broker lives in the service's own
  process, a connection drop without the process dying is rare, and a crash loses the broker's
  state anyway. tests/fleetctl/bus/test_bus_embedded.py pins this down (as an expected failure).
- Sessions and retained messages live in memory: they end with the process.
- MQTT 3.1.1 only. An MQTT 5 client (BrokerSettings.protocol = "5") gets a 3.1.1-style refusal it
  cannot parse, and its connection attempts time out: leave the protocol at its default here.
"""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker  # type: ignore[import-untyped]
from amqtt.contexts import BrokerConfig, ListenerConfig, ListenerType  # type: ignore[import-untyped]
from amqtt.errors import BrokerError  # type: ignore[import-untyped]
from amqtt.plugins.base import BaseAuthPlugin  # type: ignore[import-untyped]

from fleetctl.bus.settings import BrokerSettings
from fleetctl.errors import BusError

log = logging.getLogger("fleetctl.bus.embedded")
_SHUTDOWN_S = 5.0


class _LoopbackAuth(BaseAuthPlugin):  # type: ignore[misc]
    """Admits every client (the listener is on loopback) without marking its session anonymous, so
    that amqtt keeps queueing QoS 1 messages for persistent sessions (see the module docstring)."""

    async def authenticate(self, *, session: Any) -> bool:
        return True


class EmbeddedBroker:
    """An amqtt broker on `host`:`port` (0: a free port) for the lifetime of the `async with`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def settings(self, **overrides: Any) -> BrokerSettings:
        """BrokerSettings that reach this broker (any field can be overridden)."""
        return BrokerSettings.model_validate({"url": self.url, **overrides})

    async def __aenter__(self) -> Self:
        config = BrokerConfig(
            listeners={"default": ListenerConfig(type=ListenerType.TCP, bind=f"{self.host}:{self.port}")},
            plugins={f"{__name__}._LoopbackAuth": {}},
        )
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as e:
            raise BusError(f"the embedded broker could not listen on {self.host}:{self.port}: {e}") from e
        self._broker = broker
        self.port = self._bound_port(broker)
        log.info("embedded MQTT broker listening on %s", self.url)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            async with asyncio.timeout(_SHUTDOWN_S):
                await broker.shutdown()

    def _bound_port(self, broker: Any) -> int:
        if self.port:
            return self.port
        # amqtt has no public way to tell which port a ":0" listener got; its asyncio.Server does.
        try:
            server = broker._servers["default"].instance
            port: int = server.sockets[0].getsockname()[1]
        except (AttributeError, KeyError, IndexError) as e:
            raise BusError("cannot tell which port amqtt listens on (its internals changed); give "
                           "EmbeddedBroker a port") from e
        return port
