"""How fast each vehicle's clock runs against ours, read off its own `time_boot_ms`.

A simulation sped up by k (PX4 SIH's PX4_SIM_SPEED_FACTOR, or the built-in simulator's --speed) runs
every PX4 timeout in simulated time: its data-link-loss failsafe wants a GCS heartbeat every few
*vehicle* seconds, and a command answered within one vehicle second is answered within 1/k wall
seconds. Asking the user to tell the ground side k is asking for a mismatch, so each vehicle's rate
is measured: the boot time it stamps on messages it streams anyway, against our monotonic clock.

Real PX4 changes its rate on the fly (a SIH rover runs at 1x until it is first armed, then at k), so
the estimate is over a sliding window of the last few wall seconds, not since boot.
"""

from __future__ import annotations

import struct
from collections import deque

# Message id -> offset of a uint32 time_boot_ms in its payload (wire order). Streamed on PX4's GCS
# link: ATTITUDE 15 Hz, GLOBAL_POSITION_INT 5 Hz (vehicle time), SYSTEM_TIME on the onboard link.
TIME_BOOT_OFFSETS: dict[int, int] = {30: 0, 33: 0, 2: 8}
_U32 = struct.Struct("<I")
WINDOW_S = 3.0  # wall seconds of samples an estimate spans at most
MIN_SPAN_S = 0.15  # and at least: below this, send jitter (~ms) dominates
SAMPLE_EVERY_S = 0.02  # one sample per vehicle per 20 ms wall is plenty and keeps the hot path cheap
_REBOOT_JUMP_MS = 1000  # boot time going back by more than this: the vehicle restarted


def time_boot_ms(msgid: int, payload: bytes) -> int | None:
    """The time_boot_ms a frame carries, or None for other messages. MAVLink 2 cuts trailing zero
    bytes off payloads, so a short payload is padded back."""
    offset = TIME_BOOT_OFFSETS.get(msgid)
    if offset is None:
        return None
    chunk = payload[offset:offset + 4]
    return int(_U32.unpack(chunk.ljust(4, b"\0"))[0])


class VehicleClock:
    """Samples of (our monotonic time, the vehicle's boot time) and the rate between them."""

    __slots__ = ("_last_wall_s", "_samples", "factor")

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque()
        self._last_wall_s = -1.0
        self.factor: float | None = None  # vehicle seconds per wall second; None until measured

    def wants_sample(self, wall_s: float) -> bool:
        return wall_s - self._last_wall_s >= SAMPLE_EVERY_S

    def observe(self, wall_s: float, boot_ms: int) -> None:
        samples = self._samples
        if samples and boot_ms < samples[-1][1] * 1000.0 - _REBOOT_JUMP_MS:
            samples.clear()
        self._last_wall_s = wall_s
        samples.append((wall_s, boot_ms / 1000.0))
        while len(samples) > 2 and wall_s - samples[0][0] > WINDOW_S:
            samples.popleft()
        first_wall_s, first_boot_s = samples[0]
        span_s = wall_s - first_wall_s
        if span_s >= MIN_SPAN_S:
            self.factor = max((boot_ms / 1000.0 - first_boot_s) / span_s, 0.0)
