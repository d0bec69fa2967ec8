"""Suite-wide options (here at the repository root, so `python -m pytest --sitl px4` works with no
test path): which simulator the `sitl`-marked tests fly against.

    pytest                                        # the built-in simulator (default)
    pytest --sitl px4 --px4-dir=~/PX4-Autopilot   # real PX4 SITL (SIH)
    PX4_DIR=~/PX4-Autopilot pytest --sitl px4     # the same

Give the PX4 path as `--px4-dir=PATH` (one word) or in PX4_DIR: pytest picks its rootdir (and so finds
this file and pyproject.toml) before it knows our options, and a separate existing path outside the
repository would be taken for a test path and move the rootdir out of it.

Tests read the choice through the session fixture `sitl_options` (a `SitlOptions`: `.backend`,
`.px4_dir`, `.px4_skip_reason()`). Several conftest.py files exist, so `import conftest` is ambiguous:
type the fixture by shape instead (e.g. `tests/vehicles/vehicles_harness.SitlChoice`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

SitlBackend = Literal["builtin", "px4"]


@dataclass(frozen=True)
class SitlOptions:
    backend: SitlBackend
    px4_dir: Path | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> SitlOptions:
        backend = config.getoption("--sitl")
        px4_dir = config.getoption("--px4-dir")
        return cls(backend, Path(px4_dir).expanduser() if px4_dir else None)

    def px4_skip_reason(self) -> str | None:
        """Why real-PX4 runs cannot happen here (None when they can)."""
        if self.backend != "px4":
            return None
        if self.px4_dir is None:
            return "--sitl px4 needs a PX4 build: pass --px4-dir PATH or set PX4_DIR"
        if not self.px4_dir.exists():
            return f"--px4-dir {self.px4_dir} does not exist"
        return None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sitl", "simulator for tests marked `sitl`")
    group.addoption("--sitl", choices=("builtin", "px4"), default="builtin",
                    help="fly against the built-in simulator (default) or real PX4 SITL")
    group.addoption("--soak", action="store_true", default=False,
                    help="also run the long soak variants (marked `soak`; minutes each)")
    group.addoption("--px4-dir", default=os.environ.get("PX4_DIR") or None, metavar="PATH",
                    help="PX4-Autopilot checkout or build dir for --sitl px4 (default: $PX4_DIR)")


def pytest_report_header(config: pytest.Config) -> str:
    options = SitlOptions.from_config(config)
    reason = options.px4_skip_reason()
    where = f", px4-dir {options.px4_dir}" if options.px4_dir else ""
    return f"sitl: {options.backend}{where}" + (f" (SKIPPING px4 tests: {reason})" if reason else "")


@pytest.fixture(scope="session")
def sitl_options(pytestconfig: pytest.Config) -> SitlOptions:
    return SitlOptions.from_config(pytestconfig)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--soak"):
        return
    skip = pytest.mark.skip(reason="a soak run: pass --soak to run it (its figures go into the closing note)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
