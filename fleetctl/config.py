"""The service's configuration: a TOML file, overridden by `FLEETCTL_` environment variables.

    # fleet.toml
    site = "sitl/worlds/helsinki"             # the site folder (relative to this file)
    store = "sqlite+aiosqlite:///fleet.db"    # or postgresql+asyncpg://user@host/db
    mavlink = "udpin://0.0.0.0:14550"         # where every vehicle's GCS link arrives
    speed_factor = 1.0                        # the clock: >1 for a sped-up simulation

    [broker]
    url = "mqtt://127.0.0.1:1883"             # mqtts:// with [broker.tls] for TLS
    username = "fleetctl"
    password = "..."

    [control]                                 # the console's control topics (fleetctl.control.roles)
    default_role = "viewer"                   # clients not listed: queries only
    clients = { anna = "operator" }           # client name (= broker account under the ACL) -> role

Environment: `FLEETCTL_STORE=...`, `FLEETCTL_BROKER__URL=...` (nested keys joined by `__`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fleetctl.bus.settings import BrokerSettings
from fleetctl.control.roles import ControlSettings
from fleetctl.errors import ConfigError
from fleetctl.sorties.policy import ContingencySettings


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLEETCTL_", env_nested_delimiter="__", extra="forbid",
                                      frozen=True)

    site: Path = Field(description="the site folder (site.toml + GeoJSON)")
    site_id: str | None = Field(default=None, description="the site's name on the bus and in orders "
                                "(default: the site's own name)")
    store: str = "sqlite+aiosqlite:///fleetctl.db"
    store_schema: str | None = Field(default=None, description="PostgreSQL: the schema of this site's tables "
                                     "(sites sharing one database each keep their own)")
    broker: BrokerSettings = BrokerSettings()
    mavlink: str = "udpin://0.0.0.0:14550"
    speed_factor: float = Field(default=1.0, gt=0.0, description="the service clock's speed (a simulation's "
                                "--speed); vehicles' own rates are measured")
    sim_epoch: AwareDatetime | None = Field(default=None, description="with speed_factor != 1: the wall "
                                            "instant the simulation started, so every process (and a "
                                            "restarted service) reads the same simulated time")
    sysids: dict[str, int] = Field(default_factory=dict, description="vehicle id -> MAVLink system id, "
                                   "where it is not its place in the site's fleet list + 1")
    intake_batch: int = Field(default=200, ge=1, le=5000, description="orders stored per transaction, at most")
    dispatch_tick_s: float = Field(default=30.0, gt=0.0)
    vehicle_state_hz: float = Field(default=1.0, gt=0.0, le=10.0, description="published per vehicle, at most")
    control: ControlSettings = Field(default_factory=ControlSettings, description="who may run which "
                                     "console command: unknown clients are viewers")
    contingencies: ContingencySettings = ContingencySettings()

    @field_validator("site")
    @classmethod
    def _site_exists(cls, site: Path) -> Path:
        if not (site / "site.toml").is_file():
            raise ValueError(f"{site} is not a site folder (no site.toml)")
        return site

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> ServiceSettings:
        """From `path` (TOML; relative paths in it are relative to the file), the environment and
        `overrides` (highest first: overrides, environment, file). ConfigError when invalid."""
        toml: dict[str, Any] = {}
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"no config file {path}")
            toml = dict(TomlConfigSettingsSource(cls, toml_file=path)())
            if "site" in toml:
                toml["site"] = (path.parent / str(toml["site"])).resolve()
        try:
            return _with_file(toml)(**overrides)
        except ValidationError as e:
            where = f" ({path})" if path else ""
            problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '-'}: {err['msg']}" for err in e.errors())
            raise ConfigError(f"invalid configuration{where}: {problems}") from None


def _with_file(toml: dict[str, Any]) -> type[ServiceSettings]:
    """ServiceSettings whose lowest-priority source is the (already read) file."""

    class _Settings(ServiceSettings):
        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                       init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource,
                                       dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource,
                                       ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _Fixed(settings_cls, toml))

    return _Settings


class _Fixed(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], values: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = values

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)
