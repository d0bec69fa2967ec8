"""Which of the site's vehicles take part, and a copy of the site folder whose fleet is just those.

The service serves the fleet its site folder lists, and the simulator numbers vehicles by their place
in that list (system id = place + 1), so a demo with fewer vehicles runs on a copy of the site whose
`[[fleet]]` holds only the chosen ones: the service, its order validation and the simulator then agree
on the fleet, and nothing waits for a vehicle that was never started.
"""

from __future__ import annotations

import shutil
import tomllib
from collections.abc import Sequence
from pathlib import Path

from fleetctl.errors import ConfigError
from planner.site import Site
from planner.vehicle_model import VehicleKind

SITE_TOML = "site.toml"


def by_kind(site: Site, kind: VehicleKind) -> list[str]:
    """The site's vehicles of `kind`, taking each depot in turn (the first of every depot, then the
    second of every depot, ...), so that a few vehicles spread over the depots."""
    per_depot: dict[str, list[str]] = {}
    for entry in site.fleet:
        if site.vehicle_model(entry.model).kind == kind:
            per_depot.setdefault(entry.depot, []).append(entry.vehicle_id)
    order: list[str] = []
    for rank in range(max((len(v) for v in per_depot.values()), default=0)):
        order += [ids[rank] for ids in per_depot.values() if rank < len(ids)]
    return order


def choose_vehicles(site: Site, quads: int | None, robots: int | None,
                    named: Sequence[str] | None = None) -> list[str]:
    """`quads` drones and `robots` robots of the site's fleet (None: all of that kind), or the
    vehicles `named`, in fleet order. ConfigError if the site has fewer than asked, does not know a
    name, or if none is left."""
    if named is not None:
        known = [entry.vehicle_id for entry in site.fleet]
        unknown = [v for v in named if v not in known]
        if unknown:
            raise ConfigError(f"site {site.name!r} has no vehicle {', '.join(unknown)} (it has {', '.join(known)})")
        if not named:
            raise ConfigError("no vehicles: name at least one")
        return [v for v in known if v in named]
    chosen: set[str] = set()
    asked: list[tuple[VehicleKind, str, int | None]] = [("drone", "--quads", quads), ("robot", "--robots", robots)]
    for kind, flag, count in asked:
        have = by_kind(site, kind)
        want = len(have) if count is None else count
        if want > len(have):
            listed = ", ".join(sorted(have)) if have else "none"
            raise ConfigError(f"{flag} {want}: site {site.name!r} has {len(have)} {kind}s ({listed})")
        chosen.update(have[:want])
    if not chosen:
        raise ConfigError("no vehicles: give --quads or --robots more than 0")
    return [entry.vehicle_id for entry in site.fleet if entry.vehicle_id in chosen]


def site_with_fleet(source: Path, vehicle_ids: Sequence[str], dest: Path) -> Path:
    """Copy the site folder `source` to `dest` with only `vehicle_ids` left in its fleet (their
    order and entries as they were); the rest of site.toml is kept byte for byte."""
    shutil.copytree(source, dest)
    text = (source / SITE_TOML).read_text(encoding="utf-8")
    (dest / SITE_TOML).write_text(_keep_fleet(text, set(vehicle_ids)), encoding="utf-8")
    return dest


def _keep_fleet(text: str, keep: set[str]) -> str:
    """site.toml with the [[fleet]] tables of vehicles not in `keep` left out. A table runs from its
    header to the next header line; fleet tables hold only `key = value` lines."""
    out: list[str] = []
    block: list[str] | None = None  # the [[fleet]] table being read

    def flush() -> None:
        if block is not None and _vehicle_id(block) in keep:
            out.extend(block)

    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.startswith("["):
            flush()
            block = [line] if stripped == "[[fleet]]" else None
            if block is None:
                out.append(line)
        elif block is not None:
            block.append(line)
        else:
            out.append(line)
    flush()
    return "".join(out)


def _vehicle_id(block: list[str]) -> str | None:
    try:
        table = tomllib.loads("".join(block[1:]))
    except tomllib.TOMLDecodeError:
        return None
    value = table.get("vehicle_id")
    return value if isinstance(value, str) else None
