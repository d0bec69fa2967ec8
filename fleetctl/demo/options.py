"""What one demo run is asked to do. Everything has a default: `fleetctl demo` alone is a 2-hour
simulated day of the bundled Helsinki site at 20x."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fleetctl.errors import ConfigError
from sitl.worlds import bundled_site_path

DEFAULT_SPEED = 20.0
DEFAULT_HOURS = 2.0
DEFAULT_ORDERS_PER_HOUR = 12.0
#: After the stream ends, wait at most this long (simulated minutes) for every order to end.
DEFAULT_DRAIN_MIN = 60.0


@dataclass(frozen=True)
class DemoOptions:
    speed: float = DEFAULT_SPEED
    hours: float = DEFAULT_HOURS
    orders_per_hour: float = DEFAULT_ORDERS_PER_HOUR
    seed: int = 0
    quads: int | None = None  # None: every drone of the site's fleet
    robots: int | None = None  # None: every robot of the site's fleet
    vehicles: tuple[str, ...] | None = None  # these vehicles of the site's fleet (then quads/robots are unused)
    out: Path | None = None  # None: ./demo-run-<timestamp>/
    broker: str | None = None  # None: the embedded broker
    store: str | None = None  # None: SQLite in the output folder
    px4_dir: Path | None = None  # None: the built-in simulator
    site: Path | None = None  # None: the bundled Helsinki site
    drain_min: float = DEFAULT_DRAIN_MIN
    live: bool | None = None  # None: a live view when stdout is a terminal, plain lines otherwise

    def checked(self) -> DemoOptions:
        """These options, or ConfigError naming the first that is wrong."""
        for name, value, low in (("--speed", self.speed, 0.0), ("--hours", self.hours, 0.0)):
            if not (math.isfinite(value) and value > low):
                raise ConfigError(f"{name} must be a positive number, not {value}")
        if not (math.isfinite(self.orders_per_hour) and self.orders_per_hour >= 0.0):
            raise ConfigError(f"--orders-per-hour must be zero or more, not {self.orders_per_hour}")
        if not (math.isfinite(self.drain_min) and self.drain_min >= 0.0):
            raise ConfigError(f"--drain must be zero or more minutes, not {self.drain_min}")
        for name, count in (("--quads", self.quads), ("--robots", self.robots)):
            if count is not None and count < 0:
                raise ConfigError(f"{name} must be zero or more, not {count}")
        if self.px4_dir is not None and not self.px4_dir.exists():
            raise ConfigError(f"--px4-dir {self.px4_dir} does not exist")
        if self.store is not None and not self.store.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ConfigError(f"--store must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL, not {self.store!r}")
        site = self.site_dir
        if not (site / "site.toml").is_file():
            raise ConfigError(f"{site} is not a site folder (no site.toml)")
        return self

    @property
    def site_dir(self) -> Path:
        return self.site if self.site is not None else bundled_site_path("helsinki")

    def out_dir(self, started: datetime) -> Path:
        return self.out if self.out is not None else Path(f"demo-run-{started:%Y%m%d-%H%M%S}")
