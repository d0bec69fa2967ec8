"""Sorties: one vehicle delivering one order, planned (`planning`, `plan`) and executed (`runner`)."""

from fleetctl.sorties.plan import SortiePlan, fence_for, geofence, mission
from fleetctl.sorties.planning import VehicleSlot, plan_sortie
from fleetctl.sorties.runner import FINISHED, FLYING, SortieHooks, SortiePhase, SortieRunner, progress

__all__ = ["FINISHED", "FLYING", "SortieHooks", "SortiePhase", "SortiePlan", "SortieRunner", "VehicleSlot", "fence_for",
           "geofence", "mission", "plan_sortie", "progress"]
