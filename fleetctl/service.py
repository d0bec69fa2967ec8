"""`fleetctl serve`: the delivery service of one site, one asyncio process, one TaskGroup.

    store (SQLite / PostgreSQL) <── intake <── MQTT orders/new
          │                         dispatcher ──> sortie tasks ──> vehicles (MAVLink)
          └── event publisher ──> MQTT events, orders/<id>/status      vehicle states ──> MQTT

Start-up: open the store (migrations), the broker connection, the MAVLink endpoint; register the
fleet; resume every open sortie from where its vehicle is (recovery after a crash: nothing is
delivered twice, nothing lost); then take orders. A task that fails takes the service down loudly;
a vehicle or an order that fails does not. Stopping (SIGTERM) leaves vehicles in the air to their
own failsafes and missions: a restarted service picks them up again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fleetctl.assigner import AssignmentRule
from fleetctl.bus import Bus
from fleetctl.clock import Clock, ScaledClock, WallClock
from fleetctl.config import ServiceSettings
from fleetctl.control.handlers import Handlers
from fleetctl.control.server import ControlServer
from fleetctl.control.zones import ZoneBook
from fleetctl.dispatch import Dispatcher
from fleetctl.fleet_view import by_sysid, fleet_members
from fleetctl.intake import Intake
from fleetctl.operator import Operator
from fleetctl.orders.validate import OrderValidator
from fleetctl.publisher import EventPublisher
from fleetctl.sortie_manager import SortieManager
from fleetctl.store import Store
from fleetctl.telemetry import VehicleStatePublisher
from planner.site import Site, load_site
from vehicles.mavsdk_backend import MavsdkFleet

log = logging.getLogger(__name__)


@dataclass
class Running:
    """What a running service exposes to its owner (tests, the demo, the console backend)."""

    site: Site
    site_id: str
    store: Store
    bus: Bus
    fleet: MavsdkFleet
    intake: Intake
    publisher: EventPublisher
    dispatcher: Dispatcher
    rule: AssignmentRule
    sorties: SortieManager
    vehicle_states: VehicleStatePublisher
    recovered_sorties: int = 0
    operator: Operator | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Service:
    def __init__(self, settings: ServiceSettings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock or (WallClock() if settings.speed_factor == 1.0
                               else ScaledClock(settings.speed_factor, settings.sim_epoch))
        self.running: Running | None = None
        self.ready = asyncio.Event()

    async def run(self) -> None:
        """Serve until cancelled (SIGTERM cancels it in `fleetctl serve`)."""
        settings, clock = self.settings, self.clock
        site = await asyncio.to_thread(load_site, settings.site)
        site_id = settings.site_id or site.name
        validator = await asyncio.to_thread(OrderValidator, site, site_id=site_id)
        members = fleet_members(site, settings.sysids)
        async with (Store.open(settings.store, clock=clock, schema=settings.store_schema) as store,
                    Bus(settings.broker, site_id, intake=True) as bus,
                    MavsdkFleet(settings.mavlink, fleet_config=by_sysid(members.values())) as fleet,
                    asyncio.TaskGroup() as tasks):
            def spawn(coro: Coroutine[Any, Any, None], name: str) -> None:
                tasks.create_task(coro, name=name)

            for member in members.values():
                await store.upsert_vehicle(member.vehicle_id, sysid=member.sysid, kind=member.kind,
                                           model=member.model.name, depot=member.depot)
            publisher = EventPublisher(bus, store)
            dispatcher: Dispatcher | None = None
            rule: AssignmentRule | None = None

            def vehicle_freed(vehicle_id: str) -> None:
                publisher.wake()
                if rule is not None:
                    rule.sortie_ended(vehicle_id)
                if dispatcher is not None:
                    dispatcher.wake(f"{vehicle_id} free")

            sorties = SortieManager(site, store, fleet, members, clock, spawn, vehicle_freed,
                                    policy=settings.contingencies)
            await sorties.load_grounded()
            rule = AssignmentRule(site, store, fleet, members, sorties, clock)
            dispatcher = Dispatcher(rule, clock, tick_s=settings.dispatch_tick_s)
            rule.retry_soon = dispatcher.wake_after
            def orders_accepted() -> None:
                publisher.wake()
                if dispatcher is not None:
                    dispatcher.wake("new order")

            intake = Intake(bus, store, validator, clock, batch_max=settings.intake_batch, on_accepted=orders_accepted,
                            on_handoff=sorties.offer_pin)
            states = VehicleStatePublisher(bus, store, fleet, members, clock,
                                           lambda v: p.sortie_id if (p := sorties.active.get(v)) else None,
                                           rate_hz=settings.vehicle_state_hz)
            recovered = await sorties.recover()
            await store.append_event("service", site_id, "service.started",
                                     {"recovered_sorties": recovered, "store": store.dialect})
            tasks.create_task(publisher.run(), name="event-publisher")
            tasks.create_task(intake.run(), name="intake")
            tasks.create_task(dispatcher.run(), name="dispatcher")
            tasks.create_task(states.run(), name="vehicle-states")
            tasks.create_task(states.log_events(), name="vehicle-events")
            zones = ZoneBook(site, bus, clock)
            operator = Operator(store, dispatcher, rule, sorties, members, zone_book=zones)
            self.running = Running(site, site_id, store, bus, fleet, intake, publisher, dispatcher, rule, sorties,
                                   states, recovered, operator)
            control = ControlServer(bus, Handlers(site, site_id, store, bus, fleet, members, operator, dispatcher,
                                                  sorties, clock, zones, settings.control,
                                                  settings.control.role_of), settings.control)
            self.running.extra["control"] = control
            self.running.extra["zones"] = zones  # what fleet/<site>/zones shows (Operator keeps it current)
            tasks.create_task(zones.run(), name="zones")
            tasks.create_task(control.run(), name="control")
            dispatcher.wake("service started")
            log.info("serving site %s: %d vehicles, %d sorties resumed, store %s, broker %s", site_id,
                     len(members), recovered, store.dialect, settings.broker.url)
            self.ready.set()
            await asyncio.Future()  # until cancelled
