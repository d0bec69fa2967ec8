"""A finished run's KPIs, report and map, again, from what its output folder keeps (`fleetctl report`).

A demo or scenario run leaves in its folder the store (fleet.db: orders as they ended and the event
log), the site as it was served (site/), the sampled tracks (tracks.csv) and the report it wrote
(report.json). The orders and everything that happened to them come from the store, the positions
from tracks.csv; what neither keeps (the run's settings and timing, each battery's energy drawn) is
taken from the old report. No-fly zones added during the run (zone.added events) count for the
incursion check from the moment they were added.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from fleetctl.bus import EventMessage
from fleetctl.bus.payloads import EntityKind
from fleetctl.clock import WallClock
from fleetctl.demo import report
from fleetctl.demo.added_zones import zones_from_events
from fleetctl.demo.orders import PlannedOrder
from fleetctl.demo.run import SITE_FOLDER, STORE_FILE, map_title
from fleetctl.demo.watch import Battery, OrderView, Shop
from fleetctl.errors import ConfigError
from fleetctl.fleet_view import fleet_members
from fleetctl.store import Store
from fleetctl.store.records import EventRecord, OrderRecord
from fleetctl.tracks import Track
from planner.airspace import NoFlyZone
from planner.site import Site, load_site

REPORT_FILE = "report.json"
TRACKS_FILE = "tracks.csv"
MAP_FILE = "map.png"
EVENTS_PAGE = 1000
#: Keys of the old report that describe the run itself (kept as they were).
_RUN_KEYS = ("fleetctl_version", "title", "site", "site_id", "seed", "hours", "orders_per_hour", "drain_min",
             "vehicles_used", "backends", "started_at", "timing", "scenario")


@dataclass
class RunFolder:
    """What a finished run's folder holds, read back."""

    path: Path
    old: dict[str, Any]  # the report it wrote
    site: Site
    start: datetime
    orders: list[OrderRecord]
    events: list[EventRecord]
    tracks: dict[str, Track]

    @property
    def store_url(self) -> str:
        return store_url(self.path)


@dataclass
class _Tracks:
    tracks: dict[str, Track]


@dataclass
class _Batteries:
    batteries: dict[str, Battery] = field(default_factory=dict)


@dataclass
class Replayed:
    """The recording of a finished run (`report.Recorded`), from its folder."""

    tracks: _Tracks
    batteries: _Batteries
    start: datetime


def store_url(run_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(run_dir / STORE_FILE).resolve()}"


async def read_events(store: Store) -> list[EventRecord]:
    """The whole event log, oldest first."""
    events: list[EventRecord] = []
    while page := await store.events_after(events[-1].seq if events else 0, EVENTS_PAGE):
        events += page
    return events


async def read_run(run_dir: Path) -> RunFolder:
    """The run in `run_dir`; ConfigError naming what is missing when it is not a finished run's
    folder (or its store was not SQLite)."""
    old_path = run_dir / REPORT_FILE
    if not old_path.is_file():
        raise ConfigError(f"{run_dir} is not the folder of a finished run (no {REPORT_FILE})")
    try:
        old = json.loads(old_path.read_text(encoding="utf-8"))
        start = datetime.fromisoformat(old["started_at"])
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{old_path} is not a run's report: {e}") from None
    if not (run_dir / STORE_FILE).is_file():
        raise ConfigError(f"{run_dir} has no {STORE_FILE}: only runs on the embedded SQLite store keep one "
                          f"(this run's store was {old.get('backends', {}).get('store', 'elsewhere')})")
    if not (run_dir / SITE_FOLDER / "site.toml").is_file():
        raise ConfigError(f"{run_dir} has no {SITE_FOLDER}/site.toml (the site as the run served it)")
    site = load_site(run_dir / SITE_FOLDER)
    async with Store.open(store_url(run_dir)) as store:
        orders = await store.list_orders(limit=1_000_000)
        events = await read_events(store)
    kinds = {v: m.kind for v, m in fleet_members(site).items()}
    tracks = read_tracks(run_dir / TRACKS_FILE, kinds, start.timestamp())
    return RunFolder(run_dir, old, site, start, orders, events, tracks)


def read_tracks(path: Path, kinds: Mapping[str, str], start_s: float) -> dict[str, Track]:
    """tracks.csv (fleetctl.demo.report.write_tracks) back into tracks on the clock's time line."""
    tracks: dict[str, Track] = {}
    if not path.is_file():
        return tracks
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            vid = row["vehicle_id"]
            track = tracks.get(vid)
            if track is None:
                track = tracks[vid] = Track(vid, kinds.get(vid, "drone"))
            track.t_s.append(start_s + float(row["t_s"]))
            track.x_m.append(float(row["x_m"]))
            track.y_m.append(float(row["y_m"]))
            track.alt_m.append(float(row["alt_m"]))
    return tracks


def seen(run: RunFolder) -> Shop:
    """What the shop would have seen of the run: every order's end and story, from the store."""
    vehicles = {v: m.kind for v, m in fleet_members(run.site).items()}
    shop = Shop(None, str(run.old.get("site_id", run.site.name)), WallClock(), vehicles)
    for record in run.orders:
        planned = _planned(record, run.start)
        if planned is None or record.window_latest is None:
            continue  # a malformed order: no shop sent it as such
        shop.orders[record.order_id] = OrderView(
            planned, _sent_at(record), record.window_latest, state=record.state.value, reason=record.reason,
            detail=record.detail or "", vehicle_id=record.vehicle_id, kinds=list(record.kinds),
            updated_at=record.updated_at)
    for event in run.events:
        shop.replay(EventMessage(seq=event.seq, at=event.at, entity=EntityKind(event.entity), entity_id=event.entity_id,
                                 kind=event.kind, data=dict(event.data)))
    for row in run.old.get("vehicles", []):  # the end state only the live view saw
        view = shop.vehicles.get(row.get("vehicle_id"))
        if view is not None:
            view.battery_percent = row.get("battery_end_percent")
            view.mode = row.get("mode_end") or view.mode
            view.link_alive = row.get("state_end") != "link lost"
    return shop


def _sent_at(record: OrderRecord) -> datetime:
    """When the shop sent the order: its window opened then (the demo's shop opens it on sending)."""
    return record.window_earliest or record.created_at


def _planned(record: OrderRecord, start: datetime) -> PlannedOrder | None:
    order = record.order()
    if order is None:
        return None
    dropoff = order.dropoff if isinstance(order.dropoff, str) else f"{order.dropoff.lat_deg},{order.dropoff.lon_deg}"
    window_s = (order.window.latest - order.window.earliest).total_seconds()
    return PlannedOrder(order.order_id, (_sent_at(record) - start).total_seconds(), dropoff, order.weight_kg,
                        order.size.value, order.priority.value, window_s, order.handoff.value)


def replayed(run: RunFolder) -> Replayed:
    batteries = _Batteries()
    for row in run.old.get("vehicles", []):
        member = fleet_members(run.site).get(row.get("vehicle_id", ""))
        if member is not None:
            batteries.batteries[member.vehicle_id] = Battery(
                member.vehicle_id, member.model.battery_wh, row.get("battery_end_percent"),
                float(row.get("energy_used_wh") or 0.0), float(row.get("energy_charged_wh") or 0.0))
    return Replayed(_Tracks(run.tracks), batteries, run.start)


@dataclass
class Rebuilt:
    data: dict[str, Any]
    report_path: Path
    map_path: Path


def rebuild(run: RunFolder, out: Path, extra: Mapping[str, Any] | None = None) -> Rebuilt:
    """The report (JSON) and the map of `run`, written to `out` (blocking: run it in a thread)."""
    shop = seen(run)
    rec = replayed(run)
    added = zones_from_events(run.events)
    zones: Sequence[NoFlyZone] = [*run.site.zones, *added]
    meta = {k: run.old[k] for k in _RUN_KEYS if k in run.old}
    data = report.build(shop, rec, run.site, meta, zones) | dict(extra or {})
    data["rebuilt_from"] = {"store": str(run.path / STORE_FILE), "tracks": str(run.path / TRACKS_FILE),
                            "events": len(run.events)}
    title = str(run.old.get("title", "fleetctl run"))
    map_path = report.draw_map(run.site, shop, rec, out / MAP_FILE, map_title(title, run.site, data),
                               added_zones=added)
    data["files"] = {"report": str(out / REPORT_FILE), "map": str(map_path)}
    report_path = report.write_json(data, out / REPORT_FILE)
    return Rebuilt(data, report_path, map_path)
