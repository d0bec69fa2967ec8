"""COMMAND_LONG / COMMAND_INT through MavlinkDirect with one ctypes callback for the whole fleet.

Workaround for mavsdk 4.1.0's Python wrapper: `MavlinkDirect.send_command_async` makes a ctypes
trampoline per call and keeps it (with the callback it wraps) in the plugin for the plugin's
lifetime, as it cannot tell when MAVSDK is done with it: measured ~2 KB of RSS per command, for
ever. Commands are our hot path (a fleet sends them all day), so they go to the C function
directly, with one trampoline owned by the fleet and a token per call as MAVSDK's user data.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import logging
from typing import Any

from mavsdk.cmavsdk_loader import _cmavsdk_lib
from mavsdk.plugins.mavlink_direct.mavlink_direct import (
    MavlinkDirectResult,
    MavlinkMessage,
    SendCommandCallback,
)

log = logging.getLogger(__name__)

Answer = tuple[Any, MavlinkMessage]  # (MavlinkDirectResult, the final COMMAND_ACK or an empty message)


def _settle(fut: asyncio.Future[Answer], answer: Answer) -> None:
    if not fut.done():
        fut.set_result(answer)


class DirectCommands:
    """Sends commands and hands each final ACK (past IN_PROGRESS) to the coroutine waiting for it."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Future[Answer]]] = {}
        self._tokens = itertools.count(1)
        # Kept as long as the fleet (and past MAVSDK's destruction, see MavsdkFleet._shutdown).
        self.trampoline = SendCommandCallback(self._on_result)

    async def send(self, direct: Any, message: MavlinkMessage) -> Answer:
        """Send `message` on the MavlinkDirect plugin `direct`; wait for MAVSDK's verdict. Cancel
        with `asyncio.timeout` around the await (MAVSDK's own retries and timeout go on)."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Answer] = loop.create_future()
        token = next(self._tokens)
        self._pending[token] = (loop, fut)
        try:
            _cmavsdk_lib.mavsdk_mavlink_direct_send_command_async(
                direct._require_handle(), message.to_c_struct(), self.trampoline, token)
            return await fut
        finally:
            self._pending.pop(token, None)

    def _on_result(self, result: int, c_message: Any, user_data: int | None) -> None:
        # On MAVSDK's callback thread; nothing may raise back into C.
        try:
            message = MavlinkMessage.from_c_struct(c_message)
            _cmavsdk_lib.mavsdk_mavlink_direct_mavlink_message_destroy(ctypes.byref(c_message))
            waiting = self._pending.pop(user_data or 0, None)
            if waiting is not None:
                loop, fut = waiting
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(_settle, fut, (MavlinkDirectResult(result), message))
        except Exception:
            log.exception("command result from MAVSDK not handled")
