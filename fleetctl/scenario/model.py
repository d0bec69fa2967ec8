"""A scenario file (TOML), as typed models. Times are simulated seconds after the order stream starts.

    name = "gripper-jam"
    description = "quad-1's gripper jams: its parcel comes back, nothing is delivered twice"
    site = "helsinki"              # a bundled site, or a site folder (relative to this file)
    speed = 20.0                   # simulated seconds per wall second (--speed overrides)
    backend = "builtin"            # or "px4" (then --px4-dir is needed)
    drain_min = 30.0               # after the last order and action, wait this long at most

    [fleet]                        # quads = N, robots = N (the demo's choice), or:
    vehicles = ["quad-1"]

    [orders]                       # per_hour + hours (+ seed): the synthetic stream; or
    [[orders.items]]               # explicit orders (or file = "orders.jsonl", one item a line)
    id = "J-1"
    at_s = 0
    dropoff = "mikonkatu-1"
    weight_kg = 1.0
    window_min = 60
    handoff = "drone_release"

    [[actions]]
    at_s = 0
    do = "gripper_jam"
    vehicle = "quad-1"             # or carrying = "J-1": the vehicle that carries that order

    [contingencies]                # the service's policy (fleetctl.sorties.policy), e.g.
    handoff_timeout_s = 120.0

    [expect]
    all_orders_terminal = true
    no_double_delivery = true
    orders = { J-1 = ["returned", "failed"] }

`load_scenario` reads and checks a file; every mistake is a `ScenarioError` naming the file and the
dotted key. What needs the site (drop point and vehicle names) is checked by `fleetctl.scenario.run`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fleetctl.errors import ScenarioError
from fleetctl.orders.lifecycle import OrderState
from fleetctl.orders.model import ORDER_ID_PATTERN, Handoff, Priority, SizeClass
from fleetctl.sorties.policy import ContingencySettings

OrderId = Annotated[str, Field(pattern=ORDER_ID_PATTERN)]
#: How long an `in_flight` action waits for its vehicle or order to be flying, by default.
IN_FLIGHT_WITHIN_S = 1800.0


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- the fleet and the orders ------------------------------------------------------------------


class FleetSpec(_Model):
    """Which of the site's vehicles take part: `quads` and `robots` counts (None: all of that kind),
    or the `vehicles` by name."""

    quads: int | None = Field(default=None, ge=0)
    robots: int | None = Field(default=None, ge=0)
    vehicles: list[str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_way(self) -> FleetSpec:
        if self.vehicles is not None and (self.quads is not None or self.robots is not None):
            raise ValueError("give vehicles, or quads and robots, not both")
        return self


class OrderItem(_Model):
    """One order the shop sends at `at_s`; its window opens then and closes `window_min` later."""

    id: OrderId
    at_s: float = Field(ge=0.0)
    dropoff: str = Field(min_length=1)
    weight_kg: float = Field(gt=0.0, le=1000.0)
    window_min: float = Field(default=60.0, gt=0.0)
    size: SizeClass = SizeClass.SMALL
    priority: Priority = Priority.STANDARD
    handoff: Handoff | None = None  # None: the service's default
    handoff_pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")  # with handoff "pin"


class OrdersSpec(_Model):
    """The synthetic stream (`per_hour`, `hours`, `seed`), or explicit `items`, or a `file` of them
    (JSON lines, relative to the scenario file): exactly one."""

    per_hour: float | None = Field(default=None, gt=0.0)
    hours: float | None = Field(default=None, gt=0.0)
    seed: int = 0
    items: list[OrderItem] | None = Field(default=None, min_length=1)
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OrdersSpec:
        synthetic = self.per_hour is not None or self.hours is not None
        if synthetic and (self.per_hour is None or self.hours is None):
            raise ValueError("the synthetic stream needs both per_hour and hours")
        if sum((synthetic, self.items is not None, self.file is not None)) != 1:
            raise ValueError("give exactly one of: per_hour + hours (synthetic), items, file")
        if self.items is not None:
            ids = [o.id for o in self.items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"order ids must be unique: {sorted({i for i in ids if ids.count(i) > 1})}")
        return self

    @property
    def synthetic(self) -> bool:
        return self.per_hour is not None


# ---- the timeline ------------------------------------------------------------------------------


class _Action(_Model):
    at_s: float = Field(default=0.0, ge=0.0)
    #: "at": at `at_s`. "in_flight": the first moment from `at_s` on that its vehicle is flying (a
    #: drone above the cruise check height, a robot under way) or its order is in transit, waiting
    #: at most `within_s`.
    when: Literal["at", "in_flight"] = "at"
    within_s: float = Field(default=IN_FLIGHT_WITHIN_S, gt=0.0)


class _OnVehicle(_Action):
    """An action on one vehicle: named, or the one that carries the order `carrying`."""

    vehicle: str | None = None
    carrying: OrderId | None = None

    @model_validator(mode="after")
    def _one_target(self) -> _OnVehicle:
        if (self.vehicle is None) == (self.carrying is None):
            raise ValueError("give exactly one of vehicle, carrying (an order id)")
        if self.carrying is not None and self.when == "at":
            raise ValueError('carrying needs when = "in_flight" (the order has no vehicle before)')
        return self


class XY(_Model):
    """A point: local metres in the site's frame, a drop point's name, or WGS84."""

    x_m: float | None = None
    y_m: float | None = None
    drop_point: str | None = None
    lat_deg: float | None = Field(default=None, ge=-90.0, le=90.0)
    lon_deg: float | None = Field(default=None, ge=-180.0, le=180.0)

    @model_validator(mode="after")
    def _one_way(self) -> XY:
        ways = [self.x_m is not None and self.y_m is not None, self.drop_point is not None,
                self.lat_deg is not None and self.lon_deg is not None]
        given = [v for v in (self.x_m, self.y_m, self.drop_point, self.lat_deg, self.lon_deg) if v is not None]
        if sum(ways) != 1 or len(given) != (1 if self.drop_point is not None else 2):
            raise ValueError("give x_m and y_m, or drop_point, or lat_deg and lon_deg")
        return self


class Circle(XY):
    radius_m: float = Field(gt=0.0)


class AddZone(_Action):
    do: Literal["add_zone"]
    zone_id: str = Field(min_length=1, max_length=64)
    reason: str = "added by the scenario"
    circle: Circle | None = None
    polygon_xy_m: list[tuple[float, float]] | None = Field(default=None, min_length=3)
    floor_m: float = Field(default=0.0, ge=0.0)
    ceiling_m: float | None = Field(default=None, gt=0.0)
    vehicle: str | None = None  # with when = "in_flight": once this vehicle flies

    @model_validator(mode="after")
    def _one_shape(self) -> AddZone:
        if (self.circle is None) == (self.polygon_xy_m is None):
            raise ValueError("give exactly one of circle, polygon_xy_m")
        return self


class RemoveZone(_Action):
    do: Literal["remove_zone"]
    zone_id: str = Field(min_length=1)
    vehicle: str | None = None  # with when = "in_flight": once this vehicle flies


class LinkLoss(_OnVehicle):
    do: Literal["link_loss"]
    duration_s: float = Field(gt=0.0)


class GripperJam(_OnVehicle):
    do: Literal["gripper_jam"]
    on: bool = True


class BatteryDrop(_OnVehicle):
    do: Literal["battery_drop"]
    percent: float = Field(gt=0.0, le=100.0)


class GpsLoss(_OnVehicle):
    do: Literal["gps_loss"]
    duration_s: float = Field(gt=0.0)


class RefuseArm(_OnVehicle):
    do: Literal["refuse_arm"]
    on: bool = True  # false lifts the refusal
    reason: str = Field(default="refused by the scenario", min_length=1)


class Wind(_Action):
    """A wind on every vehicle (or `vehicle`): `speed_m_s` from `from_deg` for `duration_s`."""

    do: Literal["wind"]
    speed_m_s: float = Field(ge=0.0, le=40.0)
    from_deg: float = Field(ge=0.0, lt=360.0)
    duration_s: float = Field(default=3600.0, gt=0.0)
    vehicle: str | None = None


class Cancel(_Action):
    """The operator cancels `order` (when = "in_flight": once it is in transit)."""

    do: Literal["cancel"]
    order: OrderId
    reason: str = "cancelled by the scenario"


class Ground(_Action):
    do: Literal["ground", "unground"]
    vehicle: str


class Dispatch(_Action):
    do: Literal["pause_dispatch", "resume_dispatch"]


class EnterPin(_Action):
    """The recipient of `order` enters a PIN (on the order's hand-off topic, as a recipient's app
    does) once the robot waits at the door (the order is delivering), from `at_s` on, waiting at
    most `within_s`, and then `after_s` more (a second try comes after the first). `pin`: what is
    entered (default: the order's own `handoff_pin`; another one is a wrong PIN)."""

    do: Literal["enter_pin"]
    order: OrderId
    pin: str | None = Field(default=None, pattern=r"^[0-9]{4,8}$")
    after_s: float = Field(default=0.0, ge=0.0)


Action = Annotated[AddZone | RemoveZone | LinkLoss | GripperJam | BatteryDrop | GpsLoss | RefuseArm | Wind | Cancel
                   | Ground | Dispatch | EnterPin, Field(discriminator="do")]
#: Actions the built-in simulator does (a fault); the rest go through the service's Operator.
FAULTS = frozenset({"link_loss", "gripper_jam", "battery_drop", "gps_loss", "refuse_arm", "wind"})


# ---- the expectations --------------------------------------------------------------------------

Final = Literal["delivered", "failed", "returned", "cancelled", "rejected"]


class Expect(_Model):
    """What must hold at the end; each is one JUnit test case. Defaults are what every run must show."""

    all_orders_terminal: bool = True  # every order in a final state (delivered, failed, returned, ...)
    no_double_delivery: bool = True  # no order has two delivered events
    no_zone_incursion: bool = True  # no drone inside an active no-fly zone (zones added included)
    #: A zone added during the run counts this long after it was added: what flew inside then was
    #: already there (the replan and its upload take a few simulated seconds).
    zone_grace_s: float = Field(default=30.0, ge=0.0)
    on_time_min: float | None = Field(default=None, ge=0.0, le=1.0)  # on time / delivered
    delivered_min: int | None = Field(default=None, ge=0)
    #: Least horizontal distance of two airborne drones within 10 m of each other's height.
    min_separation_m: float | None = Field(default=None, gt=0.0)
    #: Per order: its final state, one of a list.
    orders: dict[str, Final | list[Final]] = Field(default_factory=dict)
    #: Per order: states its story must have passed through (e.g. ["returning"]).
    orders_went_through: dict[str, list[OrderState]] = Field(default_factory=dict)


class Scenario(_Model):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    site: str = "helsinki"
    speed: float = Field(default=20.0, gt=0.0, le=100.0)
    backend: Literal["builtin", "px4"] = "builtin"
    drain_min: float = Field(default=30.0, ge=0.0)
    fleet: FleetSpec = FleetSpec()
    orders: OrdersSpec
    actions: list[Action] = Field(default_factory=list)
    #: The service's policy for what goes wrong (fleetctl.sorties.policy): hand-off timeout, retries.
    contingencies: ContingencySettings = ContingencySettings()
    expect: Expect = Expect()
    #: Where the file was read from (relative site folders and order files are from there).
    source: Path = Field(default=Path("scenario.toml"), exclude=True)

    def order_items(self) -> list[OrderItem]:
        """The explicit orders, from the file or the list ([] for the synthetic stream)."""
        if self.orders.items is not None:
            return list(self.orders.items)
        if self.orders.file is None:
            return []
        return _read_order_file(self.source, self.source.parent / self.orders.file)


def load_scenario(path: Path) -> Scenario:
    """The scenario in `path`; ScenarioError (file, dotted key, why) when it is not a valid one."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ScenarioError(where, "", f"cannot be read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(where, "", f"not valid TOML: {e}") from None
    scenario = parse_scenario(raw, where)
    scenario = scenario.model_copy(update={"source": path})
    scenario.order_items()  # a broken order file is the scenario's error too
    return scenario


def parse_scenario(raw: dict[str, Any], where: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise _error(where, e, raw) from None


def _error(where: str, e: ValidationError, raw: Any) -> ScenarioError:
    first = e.errors(include_url=False)[0]
    more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
    return ScenarioError(where, _key(raw, first["loc"]), f"{first['msg']}{more}")


def _key(raw: Any, loc: tuple[int | str, ...]) -> str:
    """The dotted key of the file that an error's location points at: without pydantic's own steps
    (an action's `do` tag, a union member's name)."""
    parts: list[str] = []
    node = raw
    for part in loc:
        tag = isinstance(node, dict) and part not in node and node.get("do") == part
        if tag or "[" in str(part) or str(part).startswith("function-"):
            continue
        parts.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        else:
            node = node[part] if isinstance(node, list) and isinstance(part, int) and part < len(node) else None
    return ".".join(parts)


def _read_order_file(scenario: Path, path: Path) -> list[OrderItem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ScenarioError(str(scenario), "orders.file", f"{path} cannot be read: {e.strerror or e}") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            items.append(OrderItem.model_validate(json.loads(line)))
        except json.JSONDecodeError as e:
            raise ScenarioError(str(path), f"line {number}", f"not JSON: {e.msg}") from None
        except ValidationError as e:
            raise _error(f"{path}: line {number}", e, None) from None
    if not items:
        raise ScenarioError(str(scenario), "orders.file", f"{path} holds no orders")
    ids = [o.id for o in items]
    if len(set(ids)) != len(ids):
        raise ScenarioError(str(path), "id", "order ids must be unique")
    return items
