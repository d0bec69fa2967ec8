"""The view of a running demo: a rich Live display (refreshed twice a second) on a terminal, plain
progress lines otherwise (tests, CI, a pipe), never hard-wrapped."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from fleetctl.clock import Clock
from fleetctl.demo.watch import Shop

REFRESH_PER_S = 2.0
PLAIN_EVERY_S = 10.0  # wall seconds between two plain progress lines
INCIDENTS_SHOWN = 5
#: From this terminal width on, the orders sit beside the vehicles (below them otherwise).
WIDE_COLUMNS = 110
#: Order states in the order of an order's life, for the orders table.
STATE_ORDER = ("sent", "received", "accepted", "assigned", "loading", "in_transit", "delivering", "delivered",
               "failed", "returning", "returned", "cancelled", "rejected")


@dataclass
class RunPhase:
    """Where the run stands: streaming orders, draining (waiting for the last ones), or done."""

    start: datetime
    stream_s: float
    drain_s: float
    name: str = "starting"


def hms(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return f"{int(seconds // 3600):d}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


class DemoView:
    def __init__(self, console: Console, shop: Shop, clock: Clock, phase: RunPhase, title: str) -> None:
        self.console = console
        self.shop = shop
        self.clock = clock
        self.phase = phase
        self.title = title  # short: it shares the first line with the progress bar

    # ---- the numbers both views show ----

    def elapsed_s(self) -> float:
        return (self.clock.now() - self.phase.start).total_seconds()

    def order_counts(self) -> Counter[str]:
        return Counter(o.state or "sent" for o in self.shop.orders.values())

    def on_time(self) -> tuple[int, int]:
        """(delivered on time, delivered) so far."""
        late = [o.late_s for o in self.shop.orders.values() if o.late_s is not None]
        return sum(1 for s in late if s <= 0.0), len(late)

    def activities(self) -> Counter[str]:
        return Counter(v.activity.split(" (")[0] for v in self.shop.vehicles.values())

    # ---- rich ----

    def render(self) -> RenderableType:
        elapsed = self.elapsed_s()
        total = self.phase.stream_s
        wide = self.console.width >= WIDE_COLUMNS
        head = Table.grid(padding=(0, 2))
        head.add_row(Text(self.title, style="bold"),
                     ProgressBar(total=total, completed=min(elapsed, total), width=40 if wide else 20),
                     Text(f"{hms(elapsed)} / {hms(total)} [{self.phase.name}]", no_wrap=True))
        vehicles = Table(title="vehicles", title_justify="left", expand=False)
        for col in ("vehicle", "kind", "state", "battery", "sorties", "mode"):
            vehicles.add_column(col, justify="right" if col in ("battery", "sorties") else "left", no_wrap=True)
        for v in self.shop.vehicles.values():
            battery = "-" if v.battery_percent is None else f"{v.battery_percent:.0f} %"
            vehicles.add_row(v.vehicle_id, v.kind, v.activity, battery, str(len(v.sorties)), v.mode)
        counts = self.order_counts()
        orders = Table(title="orders", title_justify="left")
        orders.add_column("state", no_wrap=True)
        orders.add_column("n", justify="right")
        for state in STATE_ORDER:
            if counts.get(state):
                orders.add_row(state, str(counts[state]))
        orders.add_row(Text("total", style="bold"), Text(str(len(self.shop.orders)), style="bold"))
        good, delivered = self.on_time()
        summary = Text(f"on time so far: {good}/{delivered}" + (f" ({100.0 * good / delivered:.0f} %)" if delivered
                                                                  else ""))
        incidents: list[RenderableType] = [Text("last incidents", style="italic")]
        for incident in list(self.shop.incidents)[-INCIDENTS_SHOWN:]:
            at = hms((incident.at - self.phase.start).total_seconds())
            incidents.append(Text(f"  {at}  {incident.text}", no_wrap=True, overflow="ellipsis"))
        if not self.shop.incidents:
            incidents.append(Text("  none"))
        if wide:
            side = Table.grid(padding=(0, 3))
            side.add_row(vehicles, Group(orders, summary))
            return Group(head, side, *incidents)
        return Group(head, vehicles, orders, summary, *incidents)

    # ---- plain ----

    def line(self) -> str:
        elapsed = self.elapsed_s()
        counts = self.order_counts()
        good, delivered = self.on_time()
        done = sum(counts[s] for s in ("delivered", "failed", "returned", "cancelled", "rejected"))
        acts = ", ".join(f"{n} {a}" for a, n in sorted(self.activities().items()))
        share = f" ({100.0 * good / delivered:.0f} %)" if delivered else ""
        return (f"[{hms(elapsed)} / {hms(self.phase.stream_s)} {self.phase.name}] orders {len(self.shop.orders)} "
                f"sent, {done} ended, {counts['delivered']} delivered, {counts['failed'] + counts['returned']} "
                f"failed, {counts['rejected']} rejected; on time {good}/{delivered}{share}; vehicles: {acts}; "
                f"incidents {self.shop.incident_count}")

    @contextlib.asynccontextmanager
    async def showing(self, live: bool | None = None) -> AsyncIterator[None]:
        """Show the view while the block runs: live when `live` (None: when stdout is a terminal).
        Rendered on the event loop (never in rich's refresh thread: what it reads changes there)."""
        use_live = self.console.is_terminal if live is None else live
        if use_live:
            with Live(self.render(), console=self.console, auto_refresh=False, transient=False,
                      redirect_stderr=False) as display:
                task = asyncio.create_task(self._live(display), name="demo-live-view")
                try:
                    yield
                finally:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    display.update(self.render(), refresh=True)
            return
        task = asyncio.create_task(self._plain(), name="demo-progress-lines")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _live(self, display: Live) -> None:
        while True:
            display.update(self.render(), refresh=True)
            await asyncio.sleep(1.0 / REFRESH_PER_S)

    async def _plain(self) -> None:
        next_at = time.monotonic()
        while True:
            if time.monotonic() >= next_at:
                self.console.print(self.line(), soft_wrap=True, highlight=False, markup=False)
                next_at += PLAIN_EVERY_S
            await asyncio.sleep(0.5)
