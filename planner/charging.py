"""How long a battery takes to charge, and how full it is after a while on a charger.

A lithium pack charges at constant current up to about 80 % (the charger's full power, here
`model.charge_power_w`), then at constant voltage with a current that tapers: the last 20 % take
about as long as the 60 % before them. We model the taper as power falling linearly from full to a
quarter between 80 % and 100 %, which gives that shape with one parameter per vehicle model.
"""

from __future__ import annotations

import math

import numpy as np

from planner.geo import FloatArray
from planner.vehicle_model import VehicleModel

#: State of charge where the charger leaves constant current (fraction of the pack).
CC_LIMIT = 0.8
#: Power at 100 % as a fraction of full power (the end of the taper).
TAPER_END = 0.25


def _taper_k(model: VehicleModel) -> tuple[float, float, float]:
    """(start_wh, span_wh, power slope per wh) of the tapering part."""
    start_wh = CC_LIMIT * model.battery_wh
    span_wh = model.battery_wh - start_wh
    slope = (1.0 - TAPER_END) * model.charge_power_w / span_wh  # W lost per Wh gained
    return start_wh, span_wh, slope


def _time_to(model: VehicleModel, wh: float) -> float:
    """Seconds from empty to `wh` on a charger."""
    return time_to_s(model.battery_wh, model.charge_power_w, wh)


def time_to_s(battery_wh: float, charge_power_w: float, wh: float) -> float:
    """Seconds on a charger from empty to `wh` (`time_to_array` for one vehicle)."""
    p = charge_power_w
    start_wh = CC_LIMIT * battery_wh
    slope = (1.0 - TAPER_END) * p / (battery_wh - start_wh)
    wh = min(max(wh, 0.0), battery_wh)
    if wh <= start_wh:
        return 3600.0 * wh / p
    # P(e) = p - slope * (e - start): dt = de / P  =>  t = ln(p / P(e)) / slope hours
    power_at = p - slope * (wh - start_wh)
    return 3600.0 * (start_wh / p + math.log(p / power_at) / slope)


def charge_time_s(model: VehicleModel, from_wh: float, to_wh: float) -> float:
    """Seconds on a charger to go from `from_wh` to `to_wh` (0 if already there)."""
    if to_wh <= from_wh:
        return 0.0
    return _time_to(model, to_wh) - _time_to(model, from_wh)


def charged_wh(model: VehicleModel, from_wh: float, seconds: float) -> float:
    """Energy in the pack after `seconds` on a charger, starting at `from_wh`."""
    if seconds <= 0:
        return min(from_wh, model.battery_wh)
    t_s = _time_to(model, from_wh) + seconds
    if t_s >= _time_to(model, model.battery_wh):
        return model.battery_wh
    t_h = t_s / 3600.0
    p = model.charge_power_w
    start_wh, _, slope = _taper_k(model)
    cc_h = start_wh / p
    if t_h <= cc_h:
        return t_h * p
    power_at = p * math.exp(-slope * (t_h - cc_h))
    return min(model.battery_wh, start_wh + (p - power_at) / slope)


def charge_time_s_array(battery_wh: FloatArray, charge_power_w: FloatArray, from_wh: FloatArray,
                        to_wh: FloatArray) -> FloatArray:
    """`charge_time_s` elementwise, for many vehicles at once (the solver's inner loop)."""
    return time_to_array(battery_wh, charge_power_w, to_wh) - time_to_array(battery_wh, charge_power_w,
                                                                              np.minimum(from_wh, to_wh))


def time_to_array(battery_wh: FloatArray, p: FloatArray, wh: FloatArray) -> FloatArray:
    """Seconds on a charger from empty to `wh`, elementwise (differences of it are charge times)."""
    start_wh = CC_LIMIT * battery_wh
    slope = (1.0 - TAPER_END) * p / (battery_wh - start_wh)
    wh = np.clip(wh, 0.0, battery_wh)
    cc = wh / p
    power_at = p - slope * np.maximum(wh - start_wh, 0.0)
    taper = start_wh / p + np.log(p / power_at) / slope
    out: FloatArray = 3600.0 * np.where(wh <= start_wh, cc, taper)
    return out
