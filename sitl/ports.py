"""Finding free UDP ports so several fleets (tests, benches, a second site) can run side by side.

Real PX4 SITL has fixed ports; the built-in simulator takes any `SimPorts`, and these helpers
pick blocks nobody is bound to right now on the given host.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Iterable

from sitl.vehicle import SimPorts


def ports_free(ports: Iterable[int], host: str = "127.0.0.1") -> bool:
    """True when every port in `ports` can be bound on `host` right now."""
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in sockets:
            s.close()


def free_udp_block(size: int, host: str = "127.0.0.1", *, avoid: Iterable[int] = (),
                   rng: random.Random | None = None, attempts: int = 300) -> int:
    """First port of `size` consecutive UDP ports that are free on `host` (and not in `avoid`)."""
    if not 1 <= size <= 20_000:
        raise ValueError(f"size must be in 1..20000, got {size}")
    rng = rng or random.Random()
    avoided = set(avoid)
    for _ in range(attempts):
        base = rng.randrange(20_000, 65_000 - size)
        block = range(base, base + size)
        if avoided.isdisjoint(block) and ports_free(block, host):
            return base
    raise OSError(f"no block of {size} free UDP ports on {host}")


def free_sim_ports(n_instances: int, host: str = "127.0.0.1") -> SimPorts:
    """A `SimPorts` for `n_instances` vehicles whose 1 + 3n ports are all free on `host`."""
    base = free_udp_block(1 + 3 * n_instances, host)
    return SimPorts(
        target_host=host,
        gcs_target_port=base,
        api_target_base=base + 1,
        gcs_listen_base=base + 1 + n_instances,
        api_listen_base=base + 1 + 2 * n_instances,
        bind_host=host,
    )
