"""Errors of the real-PX4 SITL launcher (`sitl.px4`).

    Px4LaunchError                 PX4 SITL instances could not be started
     ├── Px4NotFound               no PX4 build (bin/px4 + etc) where the user pointed
     ├── InstanceOutOfRange        an instance id outside 0..9 (PX4's API port scheme breaks above 9)
     ├── InstanceBusy              /tmp/px4_lock-<i> is held: another PX4 runs with that instance id
     ├── Px4Exited                 a px4 process ended before it was ready (names its log)
     └── Px4StartTimeout           an instance did not become ready in time (names what was missing)

`Px4LaunchError` is a branch of the package's one tree, rooted at `sitl.errors.SimError`.
"""

from __future__ import annotations

from pathlib import Path

from sitl.errors import SimError


class Px4LaunchError(SimError):
    """Base of every error raised while launching or stopping PX4 SITL."""


class Px4NotFound(Px4LaunchError):
    def __init__(self, searched: list[Path], hint: str = "") -> None:
        self.searched = searched
        where = ", ".join(str(p) for p in searched) or "(nothing: give --px4-dir or set PX4_DIR)"
        super().__init__(f"no PX4 SITL build (bin/px4 and etc/) found; looked in: {where}{hint}")


class InstanceOutOfRange(Px4LaunchError):
    def __init__(self, instance: int) -> None:
        self.instance = instance
        super().__init__(
            f"PX4 instance id {instance} is outside 0..9: PX4 SITL sends the API link of every "
            "instance above 9 to UDP 14549 (px4-rc.mavlink), so the vehicles could not be told apart; "
            "run at most 10 PX4 instances per host"
        )


class InstanceBusy(Px4LaunchError):
    def __init__(self, instance: int, lock_path: Path) -> None:
        self.instance = instance
        self.lock_path = lock_path
        super().__init__(
            f"PX4 instance {instance} is already running on this host ({lock_path} is locked); "
            "stop it or use another instance id"
        )


class Px4Exited(Px4LaunchError):
    def __init__(self, instance: int, returncode: int | None, log_path: Path) -> None:
        self.instance = instance
        self.returncode = returncode
        self.log_path = log_path
        super().__init__(
            f"px4 instance {instance} exited with code {returncode} before it was ready; see {log_path}"
        )


class Px4StartTimeout(Px4LaunchError):
    def __init__(self, instance: int, timeout_s: float, missing: str, log_path: Path) -> None:
        self.instance = instance
        self.timeout_s = timeout_s
        self.missing = missing
        self.log_path = log_path
        super().__init__(
            f"px4 instance {instance} not ready after {timeout_s:.1f} s: {missing}; see {log_path}"
        )
