"""`fleetctl serve`: run the delivery service of one site until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from rich.console import Console

from fleetctl.config import ServiceSettings


def add_parser(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the delivery service of a site (orders from MQTT, vehicles over MAVLink)",
        description="Run the delivery service: orders from the broker's orders/new topic, stored before "
                    "they are acknowledged, dispatched to the site's drones and robots over MAVLink, status "
                    "and events published. Settings come from --config (TOML), FLEETCTL_* environment "
                    "variables and the options below (highest first).")
    p.add_argument("--config", type=Path, help="a TOML file (see fleetctl/config.py)")
    p.add_argument("--site", type=Path, help="the site folder")
    p.add_argument("--store", help="sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB")
    p.add_argument("--broker", help="mqtt://HOST:PORT or mqtts://HOST:PORT")
    p.add_argument("--mavlink", help="the MAVLink endpoint every vehicle's GCS link reaches (udpin://0.0.0.0:14550)")
    p.add_argument("--speed", type=float, help="the clock's speed factor (a simulation sped up by this)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.set_defaults(func=run)


def settings_of(args: argparse.Namespace) -> ServiceSettings:
    overrides: dict[str, Any] = {}
    for name in ("site", "store", "mavlink"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.speed is not None:
        overrides["speed_factor"] = args.speed
    settings = ServiceSettings.load(args.config, **overrides)
    if args.broker is not None:
        settings = settings.model_copy(update={"broker": settings.broker.model_copy(update={"url": args.broker})})
    return settings


def run(args: argparse.Namespace, console: Console) -> int:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings_of(args)
    console.print(f"fleetctl serving {settings.site} (store {settings.store}, broker {settings.broker.url}, "
                  f"vehicles on {settings.mavlink})", soft_wrap=True)
    return asyncio.run(_serve(settings))


async def _serve(settings: ServiceSettings) -> int:
    from fleetctl.service import Service

    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, main.cancel)
    try:
        await Service(settings).run()
    except asyncio.CancelledError:
        return 0  # a clean stop: the TaskGroup and every resource have closed
    return 0
