"""Bundled sites (site folders `planner.site.load_site` reads), one folder per site."""

from __future__ import annotations

from pathlib import Path

from planner.errors import UnknownPlace

_HERE = Path(__file__).resolve().parent


def bundled_sites() -> list[str]:
    """Names of the bundled sites (folders here that hold a site.toml)."""
    return sorted(p.name for p in _HERE.iterdir() if (p / "site.toml").is_file())


def bundled_site_path(name: str = "helsinki") -> Path:
    """The folder of bundled site `name`; raises UnknownPlace naming the ones there are."""
    path = _HERE / name
    if not (path / "site.toml").is_file():
        raise UnknownPlace("bundled site", name, bundled_sites())
    return path
