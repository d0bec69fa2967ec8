"""The service's side of the control topics: requests in on `fleet/<site>/control/+/request`, each
answered on its client's `.../response` with the same correlation id.

For each request: parse it (a malformed one is answered when it carries a correlation id, else
logged), drop it if it expired (the broker delivered it late), answer a redelivered one (QoS 1 is
at-least-once) from the cache instead of running it twice, check the client's role, validate the
arguments, run the handler, and turn whatever it raises into a typed error code. Up to
`ControlSettings.concurrency` requests run at once, so a slow vehicle command does not hold up a
query. A handler's bug is answered `internal` and logged; it does not take the service down.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

from pydantic import ValidationError

from fleetctl.bus import Bus
from fleetctl.bus._inbox import Received
from fleetctl.bus.payloads import ControlRequest, ControlResponse
from fleetctl.bus.topics import TopicKind
from fleetctl.control.commands import COMMANDS, ErrorCode
from fleetctl.control.handlers import Handlers
from fleetctl.control.roles import ControlSettings, may_run
from fleetctl.errors import (
    BusError,
    ControlError,
    FleetError,
    IllegalTransition,
    OrderRejected,
    StoreError,
    UnknownOrder,
    UnknownVehicleId,
)
from planner.errors import PlanningError, UnknownZone
from vehicles.errors import VehicleError

log = logging.getLogger(__name__)

#: Answers kept to repeat for a redelivered request, at most.
ANSWERS_KEPT: Final = 256
#: Requests waiting to run, at most (the subscription's own mailbox bounds what arrives).
_QUEUE: Final = 64


def error_code(exc: BaseException) -> ErrorCode:
    """The wire code of an error a handler raised."""
    match exc:
        case ControlError():
            return ErrorCode(exc.code)
        case UnknownVehicleId():
            return ErrorCode.UNKNOWN_VEHICLE
        case UnknownOrder():
            return ErrorCode.UNKNOWN_ORDER
        case UnknownZone():
            return ErrorCode.UNKNOWN_ZONE
        case IllegalTransition():
            return ErrorCode.ILLEGAL_TRANSITION
        case OrderRejected():
            return ErrorCode.ORDER_REJECTED
        case VehicleError():
            return ErrorCode.VEHICLE_ERROR
        case PlanningError():
            return ErrorCode.PLANNING_ERROR
        case BusError() | StoreError():
            return ErrorCode.UNAVAILABLE
        case ValidationError():
            return ErrorCode.BAD_ARGS
        case _:
            return ErrorCode.INTERNAL


class ControlServer:
    def __init__(self, bus: Bus, handlers: Handlers, settings: ControlSettings) -> None:
        self._bus = bus
        self._handlers = handlers
        self._settings = settings
        self._answers: OrderedDict[tuple[str, str], ControlResponse] = OrderedDict()
        self._running: dict[tuple[str, str], asyncio.Future[ControlResponse]] = {}
        self.handled = 0

    async def run(self) -> None:
        """Serve until cancelled."""
        queue: asyncio.Queue[Received] = asyncio.Queue(_QUEUE)
        async with (self._bus.subscribe(self._bus.topics.all_control_requests, qos=1) as requests,
                    asyncio.TaskGroup() as group):
            for i in range(self._settings.concurrency):
                group.create_task(self._worker(queue), name=f"control-worker-{i}")
            async for message in requests:
                await queue.put(message)

    async def _worker(self, queue: asyncio.Queue[Received]) -> None:
        while True:
            message = await queue.get()
            try:
                await self._serve(message)
            finally:
                queue.task_done()

    async def _serve(self, message: Received) -> None:
        parsed = self._bus.topics.parse(message.topic)
        if parsed is None or parsed.kind is not TopicKind.CONTROL_REQUEST or parsed.key is None:
            return
        client = parsed.key
        try:
            request = ControlRequest.model_validate_json(message.payload)
        except ValidationError as e:
            correlation_id = _correlation_id_of(message.payload)
            log.warning("control: malformed request from %s: %s", client, e.errors()[:1])
            if correlation_id is not None:
                await self._send(client, ControlResponse(correlation_id=correlation_id, ok=False,
                                                         code=ErrorCode.BAD_ARGS, error=f"malformed request: {e}"))
            return
        key = (client, request.correlation_id)
        if (answer := self._answers.get(key)) is not None:
            await self._send(client, answer)  # a redelivery: the first answer may have been lost
            return
        if (pending := self._running.get(key)) is not None:
            await self._send(client, await asyncio.shield(pending))
            return
        future: asyncio.Future[ControlResponse] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            answer = await self._answer(client, request)
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(answer)
        finally:
            del self._running[key]
        self._answers[key] = answer
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        await self._send(client, answer)

    async def _answer(self, client: str, request: ControlRequest) -> ControlResponse:
        def fail(code: ErrorCode, error: str, result: Any = None) -> ControlResponse:
            return ControlResponse(correlation_id=request.correlation_id, ok=False, code=code, error=error,
                                   result=result)

        self.handled += 1
        command = COMMANDS.get(request.command)
        if command is None:
            return fail(ErrorCode.UNKNOWN_COMMAND, f"no command {request.command!r} (known: "
                        f"{', '.join(sorted(COMMANDS))})")
        if request.expires_at is not None and datetime.now(UTC) > request.expires_at:
            log.warning("control: %s's %s arrived after it expired (%s): not carried out", client, request.command,
                        request.expires_at.isoformat())
            return fail(ErrorCode.EXPIRED, f"{request.command} arrived after it expired: not carried out")
        role = self._settings.role_of(client)
        if not may_run(role, mutates=command.mutates):
            log.warning("control: %s (%s) may not run %s", client, role, request.command)
            return fail(ErrorCode.FORBIDDEN, f"client {client!r} has the {role} role, which may not run "
                        f"{request.command} (operators only; the service's [control.clients] gives roles)")
        try:
            args = command.args.model_validate(request.args)
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '-'}: {err['msg']}" for err in e.errors())
            return fail(ErrorCode.BAD_ARGS, f"{request.command}: {problems}")
        handler: Callable[[Any, str], Awaitable[Any]] = getattr(self._handlers, command.name)
        try:
            result = await handler(args, client)
        except (FleetError, PlanningError, VehicleError, ValidationError) as e:
            code = error_code(e)
            message = e.message if isinstance(e, ControlError) else str(e)
            if code is ErrorCode.INTERNAL:
                log.exception("control: %s from %s failed", request.command, client)
            return fail(code, message, e.result if isinstance(e, ControlError) else None)
        except Exception as e:  # a bug in a handler: answered and logged, the service carries on
            log.exception("control: %s from %s failed", request.command, client)
            return fail(ErrorCode.INTERNAL, f"{request.command} failed inside the service: {type(e).__name__}: {e}")
        if command.mutates:
            log.info("control: %s ran %s %s", client, request.command, request.args)
        return ControlResponse(correlation_id=request.correlation_id, ok=True, result=result)

    async def _send(self, client: str, response: ControlResponse) -> None:
        try:
            await self._bus.publish(self._bus.topics.control_response(client), response)
        except BusError as e:  # the client asks again, or gives up; the command's effect stands
            log.warning("control: could not answer %s: %s", client, e)


def _correlation_id_of(raw: bytes) -> str | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    value = data.get("correlation_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 128 else None
