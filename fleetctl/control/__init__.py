"""The control topics, service side: operators' commands and queries from `fleetctl console` (or any
client speaking ControlRequest/ControlResponse), checked against the client's role and carried out
on the running service.

    commands.py   the command table: wire names, argument models, error codes
    roles.py      viewer / operator, and the configured map from client name to role
    handlers.py   what each command does (Operator, store, fleet, zones)
    zones.py      the no-fly zones in force, published retained on fleet/<site>/zones
    server.py     requests in, answers out: expiry, redelivery, roles, errors -> codes
"""

from fleetctl.control.commands import COMMANDS, Command, ErrorCode
from fleetctl.control.roles import ControlSettings, Role

__all__ = ["COMMANDS", "Command", "ControlSettings", "ErrorCode", "Role"]
