"""Reference captures of real PX4 SITL (ground truth the simulator is checked against).

The captures are vendored in the repository, `tests/sitl/data/px4/` (their README says where they come
from): per airframe a JSON profile of the first run (`quad_profile.json`), the raw telemetry log of that
same run (`quad.tlog`), and a profile of a later run of the same PX4 commit (`quad_profile_b.json`) with
two more probes. Two runs of one PX4 are what tells real behaviour from run-to-run noise.
`PX4_PROFILE_DIR` overrides the folder (e.g. with fresh captures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

ProfileKind = Literal["quad", "rover"]
# "a": the first run (the one the .tlog recorded); "b": the later run with the extra probes.
ProfileRun = Literal["a", "b"]
RUNS: tuple[ProfileRun, ...] = ("a", "b")

_ENV_DIR = "PX4_PROFILE_DIR"
_VENDORED = Path(__file__).resolve().parent.parent / "tests" / "sitl" / "data" / "px4"


def profile_dir() -> Path:
    """Folder holding the reference captures (absent in an installed package without the tests)."""
    override = os.environ.get(_ENV_DIR)
    return Path(override) if override else _VENDORED


def profile_path(kind: ProfileKind, run: ProfileRun = "a") -> Path:
    suffix = "" if run == "a" else f"_{run}"
    return profile_dir() / f"{kind}_profile{suffix}.json"


def has_profile(kind: ProfileKind, run: ProfileRun = "a") -> bool:
    return profile_path(kind, run).is_file()


def load_profile(kind: ProfileKind, run: ProfileRun = "a") -> dict[str, Any]:
    """The parsed profile; raises FileNotFoundError (naming the path) when it is absent."""
    path = profile_path(kind, run)
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def tlog_path(kind: ProfileKind) -> Path:
    """The telemetry log of run "a" (both directions, thinned outside the passive window)."""
    return profile_dir() / f"{kind}.tlog"


def has_tlog(kind: ProfileKind) -> bool:
    return tlog_path(kind).is_file()


def mode_name(custom_mode: int) -> str:
    """PX4's name for a custom_mode, as the profiles spell it (e.g. 0x03040000 -> AUTO.LOITER)."""
    main = (custom_mode >> 16) & 0xFF
    sub = (custom_mode >> 24) & 0xFF
    if main == 4:
        auto = {1: "READY", 2: "TAKEOFF", 3: "LOITER", 4: "MISSION", 5: "RTL", 6: "LAND",
                7: "RTGS", 8: "FOLLOW_TARGET", 9: "PRECLAND", 10: "VTOL_TAKEOFF"}
        return f"AUTO.{auto.get(sub, str(sub))}"
    names = {1: "MANUAL", 2: "ALTCTL", 3: "POSCTL", 5: "ACRO", 6: "OFFBOARD", 7: "STABILIZED",
             8: "RATTITUDE", 9: "ALTCTL_CRUISE", 10: "TERMINATION", 11: "ALTITUDE_CRUISE"}
    name = names.get(main, f"MAIN{main}")
    if main == 3 and sub:
        return f"{name}.{sub}"
    return name
