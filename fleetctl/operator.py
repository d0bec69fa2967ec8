"""What an operator may tell dispatch: pin an order to a vehicle, ground or unground a vehicle,
pause or resume dispatch, cancel an order. Each is one call (the console's control topics call
them), each is checked (typed errors from `fleetctl.errors`) and each is recorded as an event with
who asked.
"""

from __future__ import annotations

from fleetctl.assigner import AssignmentRule
from fleetctl.control.zones import ZoneBook
from fleetctl.dispatch import Dispatcher
from fleetctl.errors import IllegalTransition, UnknownVehicleId
from fleetctl.fleet_view import FleetMember
from fleetctl.orders.lifecycle import OrderState
from fleetctl.sortie_manager import SortieManager
from fleetctl.store import Store
from fleetctl.store.records import OrderRecord, VehicleRecord
from planner.airspace import NoFlyZone

S = OrderState
#: An order in one of these has no vehicle yet: cancelling it just ends it.
_WAITING = frozenset({S.RECEIVED, S.ACCEPTED})
#: An order in one of these is on a vehicle (or being loaded): cancelling it recalls the vehicle.
_RECALLABLE = frozenset({S.ASSIGNED, S.LOADING, S.IN_TRANSIT})


class Operator:
    """The operator's overrides on one running service."""

    def __init__(self, store: Store, dispatcher: Dispatcher, rule: AssignmentRule, sorties: SortieManager,
                 members: dict[str, FleetMember], *, zone_book: ZoneBook | None = None) -> None:
        self._zone_book = zone_book  # what fleet/<site>/zones shows
        self._store = store
        self._rule = rule
        self._dispatcher = dispatcher
        self._sorties = sorties
        self._members = members

    def _member(self, vehicle_id: str) -> FleetMember:
        try:
            return self._members[vehicle_id]
        except KeyError:
            raise UnknownVehicleId(vehicle_id) from None

    async def pin(self, order_id: str, vehicle_id: str | None, *, by: str = "operator") -> OrderRecord:
        """Only `vehicle_id` may deliver the order (None: any again). The vehicle must be able to:
        its kind must serve the drop-off."""
        if vehicle_id is not None:
            member = self._member(vehicle_id)
            order = await self._store.get_order(order_id)
            if member.kind not in order.kinds:
                raise IllegalTransition(f"order {order_id}", order.state.value,
                                        f"pinned to {vehicle_id}: a {member.kind} cannot serve its drop-off "
                                        f"(served by: {', '.join(order.kinds) or 'none'})")
        record = await self._store.pin_order(order_id, vehicle_id)
        await self._store.append_event("order", order_id, "operator.pin", {"vehicle_id": vehicle_id, "by": by})
        self._dispatcher.wake(f"order {order_id} pinned")
        return record

    async def ground(self, vehicle_id: str, *, reason: str = "", by: str = "operator") -> VehicleRecord:
        """Dispatch gives the vehicle nothing new (a sortie it flies goes on: the operator can
        recall it separately)."""
        self._member(vehicle_id)
        record = await self._store.set_grounded(vehicle_id, True, reason=reason or f"grounded by {by}")
        self._sorties.grounded.add(vehicle_id)
        self._dispatcher.wake(f"{vehicle_id} grounded")
        return record

    async def unground(self, vehicle_id: str, *, by: str = "operator") -> VehicleRecord:
        self._member(vehicle_id)
        record = await self._store.set_grounded(vehicle_id, False, reason=f"cleared by {by}")
        self._sorties.grounded.discard(vehicle_id)
        self._dispatcher.wake(f"{vehicle_id} ungrounded")
        return record

    async def pause_dispatch(self, *, by: str = "operator") -> None:
        """No new sorties start (those flying go on; orders are still taken in)."""
        self._dispatcher.pause()
        await self._store.append_event("service", "dispatch", "dispatch.paused", {"by": by})

    async def resume_dispatch(self, *, by: str = "operator") -> None:
        self._dispatcher.resume()
        await self._store.append_event("service", "dispatch", "dispatch.resumed", {"by": by})

    async def add_zone(self, zone: NoFlyZone, *, by: str = "operator") -> int:
        """A no-fly zone from now on: every drone flying towards it is rerouted around it in flight
        (a drop point inside it: the parcel comes home), and every new decision avoids it. Returns
        how many trip prices it changed. ValueError if its id is taken."""
        # Drones in flight first (an emergency zone may be seconds ahead of one), prices after.
        await self._rule.add_zone_to_paths(zone)
        if self._zone_book is not None:
            self._zone_book.added(zone)
        rerouted = await self._sorties.zones_changed(flight, [zone]) if (flight := self._rule.flight) else []
        changed = await self._rule.add_zone_to_prices(zone)
        await self._store.append_event("zone", zone.zone_id, "zone.added", {
            "by": by, "reason": zone.reason, "floor_m": zone.floor_m,
            "ceiling_m": zone.ceiling_m if zone.ceiling_m != float("inf") else None, "prices_changed": changed,
            "shape_xy_m": [[float(x), float(y)] for x, y in zone.shape.exterior.coords]})
        if rerouted:
            await self._store.append_event("zone", zone.zone_id, "zone.sorties_rerouted", {"by": by, "sorties": rerouted})
        self._dispatcher.wake(f"zone {zone.zone_id} added")
        return changed

    async def remove_zone(self, zone_id: str, *, by: str = "operator") -> int:
        """UnknownZone (a PlanningError) if there is none."""
        changed = await self._rule.remove_zone(zone_id)
        if self._zone_book is not None:
            self._zone_book.removed(zone_id)
        if (flight := self._rule.flight) is not None:
            self._sorties.airspace = flight.airspace  # (flights under way keep their longer way round)
        await self._store.append_event("zone", zone_id, "zone.removed", {"by": by, "prices_changed": changed})
        self._dispatcher.wake(f"zone {zone_id} removed")
        return changed

    async def cancel(self, order_id: str, *, reason: str = "cancelled by the operator",
                     by: str = "operator") -> OrderRecord:
        """Cancel an order. One no vehicle holds ends now; one on its way is recalled: its vehicle
        comes home with the parcel, and the order goes cancelled -> returning -> returned as it does
        (the record returned is the order as it stands now). IllegalTransition once the parcel is
        being handed over or later."""
        order = await self._store.get_order(order_id)
        if order.state in _RECALLABLE:
            await self._sorties.recall(order_id, f"{reason} ({by})")
            await self._store.append_event("order", order_id, "operator.recall", {"by": by, "reason": reason})
            return order
        if order.state not in _WAITING:
            raise IllegalTransition(f"order {order_id}", order.state.value,
                                    "cancelled (the parcel is being handed over, or the order is over)")
        record = await self._store.transition(order_id, S.CANCELLED, reason="cancelled",
                                              detail=f"{reason} ({by})", expect=order.state)
        self._dispatcher.wake(f"order {order_id} cancelled")
        return record
