"""A local metric frame per site: WGS84 at the edges, metres (east, north) inside.

An azimuthal equidistant projection centred on the site origin keeps distances from the
origin exact and distortion far below a metre over a city-sized area.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from pyproj import Transformer

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LatLon:
    lat_deg: float
    lon_deg: float
    alt_amsl_m: float = 0.0


@dataclass(frozen=True)
class LocalFrame:
    """East-north metres around `origin`. Conversions accept scalars or numpy arrays."""

    origin_lat_deg: float
    origin_lon_deg: float
    _fwd: Any = field(init=False, repr=False, compare=False)
    _inv: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (-90.0 <= self.origin_lat_deg <= 90.0 and -180.0 <= self.origin_lon_deg <= 180.0):
            raise ValueError(f"origin {self.origin_lat_deg}, {self.origin_lon_deg} is not WGS84")
        aeqd = (
            f"+proj=aeqd +lat_0={self.origin_lat_deg} +lon_0={self.origin_lon_deg} "
            "+x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
        )
        object.__setattr__(self, "_fwd", Transformer.from_crs("EPSG:4326", aeqd, always_xy=True))
        object.__setattr__(self, "_inv", Transformer.from_crs(aeqd, "EPSG:4326", always_xy=True))

    @overload
    def to_local(self, lat_deg: float, lon_deg: float) -> tuple[float, float]: ...
    @overload
    def to_local(self, lat_deg: FloatArray, lon_deg: FloatArray) -> tuple[FloatArray, FloatArray]: ...
    def to_local(self, lat_deg: Any, lon_deg: Any) -> tuple[Any, Any]:
        """WGS84 degrees -> (x_east_m, y_north_m)."""
        x, y = self._fwd.transform(lon_deg, lat_deg)
        if np.ndim(x) == 0:
            return float(x), float(y)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    @overload
    def to_wgs84(self, x_east_m: float, y_north_m: float) -> tuple[float, float]: ...
    @overload
    def to_wgs84(self, x_east_m: FloatArray, y_north_m: FloatArray) -> tuple[FloatArray, FloatArray]: ...
    def to_wgs84(self, x_east_m: Any, y_north_m: Any) -> tuple[Any, Any]:
        """(x_east_m, y_north_m) -> (lat_deg, lon_deg)."""
        lon, lat = self._inv.transform(x_east_m, y_north_m)
        if np.ndim(lon) == 0:
            return float(lat), float(lon)
        return np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)

    def points_to_local(self, lat_lon_deg: FloatArray) -> FloatArray:
        """(N, 2) array of (lat, lon) -> (N, 2) array of (x_east_m, y_north_m)."""
        arr = np.asarray(lat_lon_deg, dtype=np.float64).reshape(-1, 2)
        # pyproj takes a length-1 array for a scalar (and warns): give it lists instead.
        x, y = self._fwd.transform(arr[:, 1].tolist(), arr[:, 0].tolist())
        return np.column_stack([x, y]).astype(np.float64)

    def points_to_wgs84(self, xy_m: FloatArray) -> FloatArray:
        """(N, 2) array of (x_east_m, y_north_m) -> (N, 2) array of (lat, lon)."""
        arr = np.asarray(xy_m, dtype=np.float64).reshape(-1, 2)
        lon, lat = self._inv.transform(arr[:, 0].tolist(), arr[:, 1].tolist())
        return np.column_stack([lat, lon]).astype(np.float64)


def haversine_m(lat1_deg: float, lon1_deg: float, lat2_deg: float, lon2_deg: float) -> float:
    """Great-circle distance on the mean Earth sphere; good to ~0.5 % for checks and tests."""
    r_m = 6_371_008.8
    p1, p2 = math.radians(lat1_deg), math.radians(lat2_deg)
    dp = p2 - p1
    dl = math.radians(lon2_deg - lon1_deg)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r_m * math.asin(math.sqrt(a))


def offset_wgs84(lat_deg: float, lon_deg: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point `north_m`, `east_m` away from (lat, lon), exact in a frame centred there."""
    return LocalFrame(lat_deg, lon_deg).to_wgs84(east_m, north_m)
