"""The console's link to a service: requests on `fleet/<site>/control/<client>/request`, answers on
`.../response` matched by correlation id, and the service's live topics (vehicle states, order
statuses, events, zones) for the views that need no request.

    async with ControlClient(broker, "helsinki", "anna") as client:
        vehicles = await client.request("list_vehicles")
        await client.request("rtl_vehicle", {"vehicle_id": "quad-1"})   # ControlError on refusal

It connects under a connection id of its own (clean session: nothing of a console's should wait at the
broker while it is away); every request carries `expires_at` = now + its timeout, so a request the
broker delivers after the console gave up is not carried out.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Final, Self

from fleetctl.bus import BrokerSettings, Bus
from fleetctl.bus._inbox import Subscription
from fleetctl.bus.payloads import ControlRequest, ControlResponse
from fleetctl.errors import BusError, ControlError, ControlTimeout

#: How long a request waits for its answer by default (wall seconds): a vehicle command is confirmed
#: by the vehicle first (the service gives it 15 s).
DEFAULT_TIMEOUT_S: Final = 20.0
CONNECT_TIMEOUT_S: Final = 10.0


class ControlClient:
    def __init__(self, broker: BrokerSettings, site: str, client: str, *,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.site = site
        self.client = client
        self.timeout_s = timeout_s
        settings = broker.model_copy(update={
            "client_id": f"fleetctl-console-{client}-{uuid.uuid4().hex[:8]}", "persistent_session": False})
        self.bus = Bus(settings, site)
        self.topics = self.bus.topics
        self._pending: dict[str, asyncio.Future[ControlResponse]] = {}
        self._responses = self.bus.subscribe(self.topics.control_response(client), qos=1)
        self._stack: contextlib.AsyncExitStack | None = None

    async def __aenter__(self) -> Self:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(self.bus)
            await self.bus.wait_connected(CONNECT_TIMEOUT_S)
            group = await stack.enter_async_context(asyncio.TaskGroup())
            reader = group.create_task(self._read(), name=f"console-{self.client}-responses")
            stack.callback(reader.cancel)  # runs first on exit: the TaskGroup then has nothing to wait for
            self._stack = stack.pop_all()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        # Closed as after a clean exit (as the Bus does): the TaskGroup would otherwise wrap the caller's
        # own error (a refused command, say) in an ExceptionGroup.
        if self._stack is not None:
            await self._stack.aclose()

    async def _read(self) -> None:
        async for message in self._responses:
            try:
                response = ControlResponse.model_validate_json(message.payload)
            except ValueError:
                continue  # not ours to judge: another console under the same name, an old service
            future = self._pending.get(response.correlation_id)
            if future is not None and not future.done():
                future.set_result(response)

    async def request(self, command: str, args: dict[str, Any] | None = None, *,
                      timeout_s: float | None = None) -> Any:
        """The result of `command`; ControlError (with the service's code) if it refused or failed,
        ControlTimeout if it did not answer in time."""
        limit = self.timeout_s if timeout_s is None else timeout_s
        correlation_id = uuid.uuid4().hex
        request = ControlRequest(correlation_id=correlation_id, command=command, args=args or {},
                                 expires_at=datetime.now(UTC) + timedelta(seconds=limit))
        future: asyncio.Future[ControlResponse] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        topic = self.topics.control_request(self.client)
        try:
            async with asyncio.timeout(limit):
                await self.bus.publish(topic, request)
                response = await future
        except TimeoutError:
            raise ControlTimeout(f"no answer to {command} from site {self.site!r} within {limit:g} s: is the "
                                 f"service running, and may {self.client!r} publish on {topic}?") from None
        except BusError as e:
            raise ControlTimeout(f"{command} was not sent: {e}") from e
        finally:
            self._pending.pop(correlation_id, None)
        if not response.ok:
            raise ControlError(response.code or "error", response.error or f"{command} failed", response.result)
        return response.result

    def watch(self, topic_filter: str, *, maxsize: int = 4096) -> Subscription:
        """A live topic (retained messages first). Close it when done."""
        return self.bus.subscribe(topic_filter, qos=0, maxsize=maxsize)
