"""Delivery orders: the model producers send, its validation against the site, its lifecycle."""

from fleetctl.orders.lifecycle import FINAL, ON_BOARD, OrderState, check_transition, settled
from fleetctl.orders.model import Handoff, LatLon, Order, Priority, SizeClass, TimeWindow
from fleetctl.orders.validate import Acceptance, OrderValidator, RejectReason, parse_order

__all__ = ["FINAL", "ON_BOARD", "Acceptance", "Handoff", "LatLon", "Order", "OrderState", "OrderValidator",
           "Priority", "RejectReason", "SizeClass", "TimeWindow", "check_transition", "parse_order", "settled"]
