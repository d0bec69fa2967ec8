"""Rebuild the bundled demo site `sitl/worlds/helsinki/` from the OSM extract.

    python tools/build_demo_site.py [EXTRACT] [OUT_FOLDER]

Defaults: `<repo>/../shared/data/osm/helsinki.osm.pbf` and `<repo>/sitl/worlds/helsinki`.
Same as `python -m planner.osm EXTRACT OUT_FOLDER` (the Helsinki demo configuration in
`planner.osm.HELSINKI_DEMO`), with a progress bar. Deterministic: the same extract gives the
same files. The folder's README.md (attribution) is left alone.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_EXTRACT = REPO.parent / "shared" / "data" / "osm" / "helsinki.osm.pbf"
DEFAULT_OUT = REPO / "sitl" / "worlds" / "helsinki"


def main(argv: list[str]) -> int:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # run from a checkout without installing
    from planner.osm import main as osm_main

    extract = argv[0] if argv else str(DEFAULT_EXTRACT)
    out = argv[1] if len(argv) > 1 else str(DEFAULT_OUT)
    return osm_main([extract, out, *argv[2:]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
