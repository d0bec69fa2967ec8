"""No-fly zones from tagged OSM features: rules, matching, buffering, merging."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import shapely
from shapely.geometry import LineString, Point, Polygon

from planner._osm_read import OsmData, TaggedGeometry, slug
from planner.geo import LocalFrame

if TYPE_CHECKING:
    from planner.airspace import NoFlyZone


@dataclass(frozen=True)
class ZoneRule:
    """Features whose tags match all of `tags` ("*" = any value) and none of `exclude`.

    Areas grow by `buffer_m`, nodes become circles of `radius_m`, open ways become
    corridors `corridor_m` either side. `reason` is the human half of the zone's reason;
    the matching tag is appended, e.g. "hospital (amenity=hospital)".
    """

    tags: Mapping[str, str]
    reason: str
    buffer_m: float = 0.0
    radius_m: float = 50.0
    corridor_m: float = 10.0
    floor_m: float = 0.0
    ceiling_m: float = math.inf
    exclude: Mapping[str, str] = field(default_factory=dict)

    def matches(self, tags: Mapping[str, str]) -> bool:
        def hit(key: str, value: str) -> bool:
            return key in tags and (value == "*" or tags[key] == value)

        return all(hit(k, v) for k, v in self.tags.items()) and not any(
            hit(k, v) for k, v in self.exclude.items()
        )

    def tag_text(self, tags: Mapping[str, str]) -> str:
        return " ".join(f"{k}={tags[k]}" for k in self.tags)


@dataclass(frozen=True)
class ZoneCandidate:
    osm_id: str
    osm_tag: str
    reason: str
    name: str
    shape: Polygon
    floor_m: float
    ceiling_m: float
    circle: tuple[float, float, float] | None = None


def candidates_from_osm(data: OsmData, frame: LocalFrame, rules: Sequence[ZoneRule]) -> list[ZoneCandidate]:
    out: list[ZoneCandidate] = []
    for feature in data.features:
        rule = next((r for r in rules if r.matches(feature.tags)), None)
        if rule is None:
            continue
        out.extend(_shapes(feature, frame, rule))
    return out


def _shapes(feature: TaggedGeometry, frame: LocalFrame, rule: ZoneRule) -> list[ZoneCandidate]:
    tag = rule.tag_text(feature.tags)
    name = feature.tags.get("name", "")

    def make(shape: Any, circle: tuple[float, float, float] | None = None) -> list[ZoneCandidate]:
        parts = [g for g in getattr(shape, "geoms", [shape]) if isinstance(g, Polygon) and g.area > 1.0]
        return [
            ZoneCandidate(feature.osm_id, tag, rule.reason, name, p, rule.floor_m, rule.ceiling_m, circle)
            for p in parts
        ]

    if feature.kind == "node" and feature.lat_lon is not None:
        x, y = frame.to_local(float(feature.lat_lon[0, 0]), float(feature.lat_lon[0, 1]))
        return make(Point(x, y).buffer(rule.radius_m, quad_segs=8), (x, y, rule.radius_m))
    if feature.kind == "line" and feature.lat_lon is not None and len(feature.lat_lon) >= 2:
        return make(LineString(frame.points_to_local(feature.lat_lon)).buffer(rule.corridor_m, quad_segs=4))
    shapes = []
    for outer, inners in feature.polygons:
        if len(outer) < 4:
            continue
        poly = Polygon(
            frame.points_to_local(outer), [frame.points_to_local(i) for i in inners if len(i) >= 4]
        )
        shapes.append(shapely.make_valid(poly).buffer(rule.buffer_m, quad_segs=4))
    return make(shapely.unary_union(shapes)) if shapes else []


def build_zones(
    candidates: Sequence[ZoneCandidate], area: Polygon, simplify_m: float
) -> tuple[list[NoFlyZone], dict[str, dict[str, Any]]]:
    """Clip to (near) the area, merge overlaps within one altitude band, keep every reason."""
    from planner.airspace import NoFlyZone

    near = area.buffer(100.0)
    bands: dict[tuple[float, float], list[ZoneCandidate]] = {}
    for cand in candidates:
        if cand.shape.intersects(near):
            bands.setdefault((cand.floor_m, cand.ceiling_m), []).append(cand)
    merged: list[tuple[Polygon, list[ZoneCandidate]]] = []
    for band in bands.values():
        union = shapely.unary_union([c.shape for c in band])
        for part in getattr(union, "geoms", [union]):
            members = [c for c in band if c.shape.intersects(part) and c.shape.intersection(part).area > 1.0]
            merged.append((part, members))

    specs: list[_Spec] = []
    for part, members in merged:
        # The member covering most of the merged zone names it and leads its reason.
        members.sort(key=lambda c: (-round(c.shape.intersection(part).area), c.osm_tag, c.osm_id))
        reason = "; ".join(dict.fromkeys(_reason(c) for c in members))
        tags = list(dict.fromkeys(c.osm_tag for c in members))
        first = members[0]
        props: dict[str, Any] = {
            "osm_tag": "; ".join(tags),
            "osm_ids": ",".join(sorted({c.osm_id for c in members})),
        }
        if len(members) == 1 and first.circle is not None and near.contains(part):
            pieces: list[Polygon] = [part]
        else:
            shape = part.intersection(near).simplify(simplify_m)
            shape = shapely.make_valid(shape) if not shape.is_valid else shape
            pieces = [p for p in getattr(shape, "geoms", [shape]) if isinstance(p, Polygon) and p.area > 1.0]
        for piece in pieces:
            circle = first.circle if piece is part else None
            sort_key = (tags[0], first.osm_id, piece.centroid.x, piece.centroid.y)
            specs.append(_Spec(sort_key, piece, circle, reason, first.floor_m, first.ceiling_m, props))

    specs.sort(key=lambda spec: spec.sort_key)
    out: list[NoFlyZone] = []
    out_props: dict[str, dict[str, Any]] = {}
    counts: dict[str, int] = {}
    for spec in specs:
        prefix = slug(spec.sort_key[0].split(" ")[0])
        counts[prefix] = counts.get(prefix, 0) + 1
        zone_id = f"{prefix}-{counts[prefix]}"
        kw: dict[str, Any] = {"floor_m": spec.floor_m, "ceiling_m": spec.ceiling_m}
        if spec.circle is not None:
            x_m, y_m, radius_m = spec.circle
            out.append(NoFlyZone.make_circle(zone_id, spec.reason, x_m, y_m, radius_m, **kw))
        else:
            out.append(NoFlyZone(zone_id, spec.reason, spec.shape, **kw))
        out_props[zone_id] = dict(spec.props)
    return out, out_props


@dataclass(frozen=True)
class _Spec:
    """A finished zone before ids are handed out (ids follow the sorted order, so are stable)."""

    sort_key: tuple[str, str, float, float]
    shape: Polygon
    circle: tuple[float, float, float] | None
    reason: str
    floor_m: float
    ceiling_m: float
    props: dict[str, Any]


def _reason(c: ZoneCandidate) -> str:
    named = f"{c.reason} {c.name!r}" if c.name else c.reason
    return f"{named} ({c.osm_tag})"
