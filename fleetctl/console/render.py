"""Rich renderings of the service's answers and live topics (tables for people; `--json` prints the
answer itself instead)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fleetctl.bus.payloads import EventMessage, OrderStatus, VehicleStateMessage

_STATE_STYLE = {"delivered": "green", "rejected": "magenta", "failed": "red", "returned": "red",
                "cancelled": "dim", "in_transit": "cyan", "delivering": "cyan", "accepted": "yellow"}
#: Columns never wrapped: an id broken over two lines cannot be copied.
_IDS = frozenset({"vehicle", "order", "zone", "state"})


def _time(value: Any) -> str:
    """An ISO timestamp as HH:MM:SS (the console shows one day's work; --json keeps the full value)."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).strftime("%H:%M:%S")
    except ValueError:
        return str(value)


def _num(value: Any, fmt: str = "{:.0f}") -> str:
    return "" if value is None else fmt.format(value)


def _state(state: str | None) -> Text:
    return Text(state or "", style=_STATE_STYLE.get(state or "", ""))


def vehicles_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="vehicles", title_justify="left")
    for name in ("vehicle", "kind", "depot", "link", "mode", "armed", "batt %", "alt m", "sortie", "order", "status"):
        table.add_column(name, no_wrap=name in _IDS)
    for r in rows:
        status = "grounded" if r.get("grounded") else (r.get("not_free") or "free")
        table.add_row(r["vehicle_id"], r.get("kind", ""), r.get("depot") or "",
                      Text("up", "green") if r.get("linked") else Text("down", "red"), r.get("mode") or "",
                      "yes" if r.get("armed") else "", _num(r.get("battery_percent")), _num(r.get("alt_m"), "{:.1f}"),
                      r.get("sortie_id") or "", r.get("order_id") or "",
                      Text(status, "green" if status == "free" else "yellow"))
    return table


def orders_table(rows: Sequence[Mapping[str, Any]], title: str = "orders") -> Table:
    table = Table(title=f"{title} ({len(rows)})", title_justify="left")
    for name in ("order", "state", "priority", "vehicle", "pinned", "eta", "latest", "reason"):
        table.add_column(name, no_wrap=name in _IDS)
    for r in rows:
        table.add_row(r["order_id"], _state(r.get("state")), r.get("priority") or "", r.get("vehicle_id") or "",
                      r.get("pinned_vehicle") or "", _time(r.get("eta")), _time(r.get("window_latest")),
                      " ".join(x for x in (r.get("reason"), r.get("detail")) if x))
    return table


def events_table(rows: Iterable[Mapping[str, Any]], title: str = "events") -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("seq", "at", "entity", "kind", "data"):
        table.add_column(name, overflow="fold")
    for r in rows:
        table.add_row(str(r["seq"]), _time(r.get("at")), f"{r.get('entity')} {r.get('entity_id')}", r.get("kind", ""),
                      _data(r.get("data") or {}))
    return table


def _data(data: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", [], {}))


def event_line(event: EventMessage) -> Text:
    return Text.assemble((f"{event.seq:>6} ", "dim"), (event.at.strftime("%H:%M:%S "), "dim"),
                         (f"{event.entity} {event.entity_id} ", "bold"), (event.kind, "cyan"),
                         f"  {_data(event.data)}" if event.data else "")


def order_detail(result: Mapping[str, Any]) -> Group:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for key in ("order_id", "state", "reason", "detail", "priority", "vehicle_id", "pinned_vehicle", "sortie_id",
                "eta", "window_earliest", "window_latest", "kinds", "depot", "attempts"):
        value = result.get(key)
        if value not in (None, "", []):
            facts.add_row(key, _state(value) if key == "state" else str(value))
    return Group(facts, events_table(result.get("events") or [], title="its events"))


def zones_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title=f"no-fly zones ({len(rows)})", title_justify="left")
    for name in ("zone", "source", "shape", "floor m", "ceiling m", "from", "until", "now", "reason"):
        table.add_column(name, overflow="fold", no_wrap=name in _IDS)
    for r in rows:
        circle = r.get("circle")
        shape = (f"circle {circle['lat_deg']:.5f},{circle['lon_deg']:.5f} r {circle['radius_m']:g} m" if circle
                 else f"polygon ({len((r.get('polygon') or [[]])[0])} points)")
        table.add_row(r["zone_id"], r.get("source", ""), shape, _num(r.get("floor_m"), "{:g}"),
                      _num(r.get("ceiling_m"), "{:g}") or "-", _time(r.get("active_from")), _time(r.get("active_until")),
                      "active" if r.get("active_now", True) else "later", r.get("reason") or "")
    return table


def kpi_table(result: Mapping[str, Any]) -> Table:
    table = Table(title="KPIs", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    orders = {k: v for k, v in (result.get("orders") or {}).items() if v}
    table.add_row("orders", ", ".join(f"{k} {v}" for k, v in orders.items()) or "none")
    rate = result.get("on_time_rate")
    table.add_row("delivered", f"{result.get('delivered', 0)}" + (f" ({rate * 100:.0f} % on time)" if rate is not None
                                                                  else ""))
    if result.get("delivery_min_mean") is not None:
        table.add_row("delivery time", f"mean {result['delivery_min_mean']:.1f} min, max "
                      f"{result['delivery_min_max']:.1f} min")
    table.add_row("vehicles", f"{result.get('vehicles')} ({result.get('vehicles_linked')} linked, "
                  f"{result.get('on_sorties')} on sorties, {result.get('grounded')} grounded)")
    table.add_row("dispatch", "paused" if result.get("dispatch_paused") else "running")
    table.add_row("no-fly zones", str(result.get("zones")))
    table.add_row("events logged", str(result.get("events")))
    return table


def mapping_table(result: Any, title: str) -> RenderableType:
    """Any other answer: a key/value grid (a dict), or its text."""
    if not isinstance(result, Mapping):
        return Text(f"{title}: {result}")
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in result.items():
        if isinstance(value, Mapping):
            value = ", ".join(f"{k}: {v}" for k, v in value.items())
        table.add_row(str(key), "" if value is None else str(value))
    return table


def live_view(vehicles: Mapping[str, VehicleStateMessage], orders: Mapping[str, OrderStatus],
              events: Sequence[EventMessage], *, zones: int | None = None) -> Group:
    """What `watch` shows: every vehicle's last state, orders by state, the last events."""
    table = Table(title="fleet (live)", title_justify="left", expand=False)
    for name in ("vehicle", "kind", "mode", "armed", "batt %", "alt m", "link", "sortie", "at"):
        table.add_column(name, no_wrap=name in _IDS)
    for vid in sorted(vehicles):
        v = vehicles[vid]
        table.add_row(vid, v.kind, v.mode, "yes" if v.armed else "", _num(v.battery_percent),
                      _num(v.alt_m, "{:.1f}"), Text("up", "green") if v.link_alive else Text("down", "red"),
                      v.sortie_id or "", v.at.strftime("%H:%M:%S"))
    counts: dict[str, int] = {}
    for status in orders.values():
        counts[status.state] = counts.get(status.state, 0) + 1
    summary = Text("orders: " + (", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"))
    if zones is not None:
        summary.append(f"   no-fly zones: {zones}")
    return Group(table, summary, *(event_line(e) for e in events))
