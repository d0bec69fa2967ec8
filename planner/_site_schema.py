"""Typed readers for the parsed TOML and GeoJSON of a site folder.

Every accessor knows which file and which feature it reads, so a bad value becomes a
`SiteError` that names both instead of a `KeyError` or `TypeError` deep in the loader.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, NoReturn

from planner.errors import SiteError

MISSING: Any = object()


class Table:
    """One TOML table or GeoJSON properties object, read key by key.

    `finish()` rejects keys nobody asked for: a misspelt `cruise_speed_ms` must not
    silently fall back to a default.
    """

    def __init__(self, path: str, feature: str, data: object) -> None:
        self.path = path
        self.feature = feature
        if not isinstance(data, Mapping):
            self.fail(f"expected a table/object, got {type(data).__name__}")
        self._data: Mapping[str, Any] = data
        self._used: set[str] = set()

    def fail(self, message: str) -> NoReturn:
        raise SiteError(self.path, self.feature, message)

    def has(self, key: str) -> bool:
        return key in self._data and self._data[key] is not None

    def raw(self, key: str, default: Any = MISSING) -> Any:
        self._used.add(key)
        value = self._data.get(key)
        if value is None:
            if default is MISSING:
                self.fail(f"missing required key {key!r}")
            return default
        return value

    def text(self, key: str, default: Any = MISSING, *, nonempty: bool = True) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str):
            self.fail(f"{key!r} must be a string, got {value!r}")
        if nonempty and not value.strip():
            self.fail(f"{key!r} must not be empty")
        return value

    def number(
        self,
        key: str,
        default: Any = MISSING,
        *,
        min_value: float | None = None,
        positive: bool = False,
        allow_inf: bool = False,
    ) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(f"{key!r} must be a number, got {value!r}")
        number = float(value)
        if math.isnan(number) or (math.isinf(number) and not allow_inf):
            self.fail(f"{key!r} must be finite, got {value!r}")
        if positive and not number > 0:
            self.fail(f"{key!r} must be > 0, got {value!r}")
        if min_value is not None and number < min_value:
            self.fail(f"{key!r} must be >= {min_value:g}, got {value!r}")
        return number

    def integer(self, key: str, default: Any = MISSING, *, min_value: int | None = None) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{key!r} must be an integer, got {value!r}")
        if min_value is not None and value < min_value:
            self.fail(f"{key!r} must be >= {min_value}, got {value!r}")
        return value

    def flag(self, key: str, default: Any = MISSING) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            self.fail(f"{key!r} must be true or false, got {value!r}")
        return value

    def array(self, key: str, default: Any = MISSING) -> list[Any]:
        value = self.raw(key, default)
        if not isinstance(value, list):
            self.fail(f"{key!r} must be a list, got {type(value).__name__}")
        return value

    def table(self, key: str, feature: str | None = None) -> Table:
        return Table(self.path, feature or key, self.raw(key))

    def tables(self, key: str, name_key: str, what: str) -> Iterator[Table]:
        """The array of tables under `key`, each named after its `name_key` when it has one."""
        for i, item in enumerate(self.array(key, [])):
            label = f"{what} #{i + 1}"
            if isinstance(item, Mapping) and isinstance(item.get(name_key), str):
                label = f"{what} {item[name_key]!r}"
            yield Table(self.path, label, item)

    def time_s(self, key: str) -> float | None:
        """An ISO-8601 timestamp with a UTC offset (or epoch seconds) -> epoch seconds."""
        value = self.raw(key, None)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, str):
            self.fail(f"{key!r} must be an ISO-8601 time, got {value!r}")
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            self.fail(f"{key!r} is not an ISO-8601 time: {value!r}")
        if stamp.tzinfo is None:
            self.fail(f"{key!r} needs a UTC offset (e.g. 2025-06-01T10:00:00Z), got {value!r}")
        return stamp.timestamp()

    def finish(self, ignore_prefixes: tuple[str, ...] = ()) -> None:
        unknown = sorted(k for k in set(self._data) - self._used if not k.startswith(ignore_prefixes))
        if unknown:
            known = ", ".join(sorted(self._used)) or "none"
            self.fail(f"unknown key(s) {', '.join(map(repr, unknown))} (known here: {known})")


def check_lat_lon(path: str, feature: str, lat_deg: float, lon_deg: float) -> None:
    if not (-90.0 <= lat_deg <= 90.0):
        raise SiteError(path, feature, f"latitude {lat_deg} is outside [-90, 90]")
    if not (-180.0 <= lon_deg <= 180.0):
        raise SiteError(path, feature, f"longitude {lon_deg} is outside [-180, 180]")


def position(path: str, feature: str, coords: object) -> tuple[float, float]:
    """A GeoJSON position [lon, lat] (altitude ignored) -> (lat_deg, lon_deg)."""
    if (
        not isinstance(coords, list | tuple)
        or len(coords) < 2
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords[:2])
    ):
        raise SiteError(path, feature, f"a position must be [lon, lat], got {coords!r}")
    lon_deg, lat_deg = float(coords[0]), float(coords[1])
    if not (math.isfinite(lat_deg) and math.isfinite(lon_deg)):
        raise SiteError(path, feature, f"position {coords!r} is not finite")
    check_lat_lon(path, feature, lat_deg, lon_deg)
    return lat_deg, lon_deg


def positions(path: str, feature: str, coords: object, min_count: int) -> list[tuple[float, float]]:
    if not isinstance(coords, list) or len(coords) < min_count:
        raise SiteError(path, feature, f"needs a list of at least {min_count} positions")
    return [position(path, feature, c) for c in coords]
