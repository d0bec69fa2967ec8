"""Reference profiles of real PX4 SITL (ground truth the simulator is checked against).

The captures live beside the checkout, in `<repo>/../shared/data/px4/{quad,rover}_profile.json`
(see the README there). `PX4_PROFILE_DIR` overrides the folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

ProfileKind = Literal["quad", "rover"]

_ENV_DIR = "PX4_PROFILE_DIR"


def profile_dir() -> Path:
    """Folder holding the reference captures (it may not exist on every machine)."""
    override = os.environ.get(_ENV_DIR)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "px4"


def profile_path(kind: ProfileKind) -> Path:
    return profile_dir() / f"{kind}_profile.json"


def has_profile(kind: ProfileKind) -> bool:
    return profile_path(kind).is_file()


def load_profile(kind: ProfileKind) -> dict[str, Any]:
    """The parsed profile; raises FileNotFoundError (naming the path) when it is absent."""
    path = profile_path(kind)
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


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
