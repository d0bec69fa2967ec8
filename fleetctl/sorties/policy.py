"""What a sortie does when a delivery cannot be made as planned: how long a robot waits for the
recipient, whether a parcel that came back is tried again, when a low battery turns a vehicle round.
One settings object (`ServiceSettings.contingencies`), so an operator sets the policy in one place."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Reasons a parcel came back for the vehicle's sake, not the recipient's: tried again at once.
VEHICLE_REASONS = frozenset({"low_battery", "vehicle_failsafe", "gripper_jam", "release_unconfirmed",
                             "zone_closed_route"})


class ContingencySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    handoff_timeout_s: float = Field(default=300.0, gt=0.0, description="how long a robot waits at the drop "
                                     "point for the recipient's PIN (vehicle seconds)")
    handoff_pin_attempts: int = Field(default=3, ge=1, description="wrong PINs before the hand-off is given up")
    failed_handoff: Literal["retry", "fail"] = Field(
        default="retry", description="a parcel brought back because nobody took it: 'retry' in a new window "
        "(`retry_after_s` later, as long as the first), or 'fail' (the order ends returned, with the reason)")
    retry_after_s: float = Field(default=3600.0, ge=0.0, description="a failed hand-off's new window opens "
                                 "this long after the parcel is back (seconds)")
    redispatch: bool = Field(default=True, description="a parcel brought back for the vehicle's sake (low "
                             "battery, a failsafe, a jammed gripper) goes back to dispatch at once")
    low_battery_margin_percent: float = Field(default=5.0, ge=0.0, description="a vehicle turns back when its "
                                              "charge falls below what the rest of the sortie needs plus its "
                                              "reserve plus this margin (percentage points)")
