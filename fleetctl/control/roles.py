"""Who may do what on the control topics: two roles, and the service's map from client to role.

A request arrives on `fleet/<site>/control/<client>/request`; `<client>` is who asks. The broker is
what makes that name trustworthy: its ACL lets each account publish only under its own name (see
fleetctl/bus/examples/acl.example), so the service can take the topic level as the identity. The
service's configuration then maps names to roles::

    [control]
    default_role = "viewer"          # a client not listed below (the safe default)
    [control.clients]
    anna = "operator"
    wall-display = "viewer"

- viewer: queries only (vehicles, orders, an order's story, zones, KPIs, recent events).
- operator: everything, including commands that change orders, vehicles, zones and dispatch.
"""

from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"


class ControlSettings(BaseModel):
    """The `[control]` table of the service's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    clients: dict[str, Role] = Field(default_factory=dict, description="control client name (the topic "
                                     "level, i.e. the broker account under an ACL) -> role")
    default_role: Role = Field(default=Role.VIEWER, description="the role of a client not in `clients`")
    concurrency: int = Field(default=8, ge=1, le=64, description="requests carried out at once, at most")
    vehicle_command_timeout_s: float = Field(default=15.0, gt=0.0, description="wall seconds a vehicle "
                                             "command (rtl, land, pause, resume) may take")

    def role_of(self, client: str) -> Role:
        return self.clients.get(client, self.default_role)


def may_run(role: Role, *, mutates: bool) -> bool:
    """Whether `role` may run a command (one that changes something when `mutates`)."""
    return role is Role.OPERATOR or not mutates
