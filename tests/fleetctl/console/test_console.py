"""`fleetctl console` and its commands against a real service (the built-in simulator, Mosquitto,
SQLite): non-interactive commands through `fleetctl.cli.main` (output captured, exit status checked),
roles (an unknown client is a viewer and is refused commands), and a headless prompt_toolkit session
on a pipe."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console
from service_harness import BROKER, helsinki, near_drop_point, running_service, settings_for, site_sim
from vehicles_harness import SitlChoice

from fleetctl.bus import BrokerSettings
from fleetctl.bus.payloads import ControlRequest, ControlResponse, OrderStatus
from fleetctl.cli import main
from fleetctl.console.app import ConsoleApp
from fleetctl.console.client import ControlClient
from fleetctl.control import ControlSettings, Role
from fleetctl.service import Running

pytestmark = [pytest.mark.sitl, pytest.mark.asyncio(loop_scope="module")]
SITE = helsinki()
VEHICLES = ["quad-1", "quad-2"]  # both at erottaja
DROP = near_drop_point(SITE, "erottaja", "drone")


@dataclass
class Served:
    service: Running
    site_id: str

    async def cli(self, capsys: pytest.CaptureFixture[str], *argv: str, client: str = "anna",
                  ) -> tuple[int, str, str]:
        """`fleetctl ARGV --site .. --client-id CLIENT`, as a user runs it (its own event loop, in a thread)."""
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*argv, "--broker", BROKER, "--site", self.site_id,
                                              "--client-id", client, "--timeout", "15"])
        out, err = capsys.readouterr()
        return code, out, err

    async def ok_json(self, capsys: pytest.CaptureFixture[str], *argv: str, client: str = "anna") -> Any:
        code, out, err = await self.cli(capsys, *argv, "--json", client=client)
        assert code == 0, err
        return json.loads(out)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(sitl_options: SitlChoice, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with site_sim(sitl_options, SITE, VEHICLES) as sim:
        settings = settings_for(tmp_path_factory.mktemp("console"), sim,
                                control=ControlSettings(clients={"anna": Role.OPERATOR}))
        async with running_service(settings) as service:
            yield Served(service, settings.site_id or "")


async def test_queries(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    me = await served.ok_json(capsys, "whoami")
    assert me == {"client": "anna", "role": "operator", "site": served.site_id}
    vehicles = await served.ok_json(capsys, "vehicles")  # the site's whole fleet; two of them simulated
    assert [v["vehicle_id"] for v in vehicles] == [f.vehicle_id for f in SITE.fleet]
    assert {v["vehicle_id"] for v in vehicles if v["linked"]} <= set(VEHICLES)
    zones = await served.ok_json(capsys, "nofly", "list")
    assert {z["zone_id"] for z in zones} == {z.zone_id for z in SITE.zones}
    kpi = await served.ok_json(capsys, "kpi")
    assert kpi["vehicles"] == len(SITE.fleet)
    code, out, _ = await served.cli(capsys, "vehicles")  # the rich table
    assert code == 0
    assert "quad-1" in out
    assert "quad-2" in out


async def test_viewer_is_refused_commands(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await served.cli(capsys, "dispatch", "pause", client="wall-display")
    assert code == 2
    assert "'wall-display' has the viewer role, which may not run pause_dispatch" in err
    assert "[forbidden]" in err
    assert not served.service.dispatcher.paused
    assert (await served.ok_json(capsys, "whoami", client="wall-display"))["role"] == "viewer"
    assert len(await served.ok_json(capsys, "vehicles", client="wall-display")) == len(SITE.fleet)  # queries are fine


async def test_failures_exit_non_zero_with_the_reason(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await served.cli(capsys, "vehicle", "rtl", "quad-9")
    assert code == 2
    assert "unknown vehicle 'quad-9' (known: quad-1, quad-2, quad-3" in err
    assert "[unknown_vehicle]" in err
    code, _, err = await served.cli(capsys, "order", "show", "nope")
    assert (code, "[unknown_order]" in err) == (2, True)
    code, _, err = await served.cli(capsys, "fleet", "rtl")  # not interactive: needs --yes
    assert code == 2
    assert "add --yes" in err
    code, _, err = await served.cli(capsys, "nofly", "add", "circle", "60.17", "24.94", "50", "--until", "soon")
    assert (code, "[bad_args]" in err) == (2, True)
    code, _, err = await served.cli(capsys, "order", "add", "X-1", "no-such-place")
    assert code == 2
    assert "[order_rejected]" in err


async def test_operator_commands(served: Served, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = served.service.store
    assert (await served.ok_json(capsys, "dispatch", "pause")) == {"dispatch_paused": True}
    status = await served.ok_json(capsys, "order", "add", "C-1", DROP, "--weight", "0.5")
    assert status["state"] == "accepted"
    code, _, err = await served.cli(capsys, "order", "add", "C-1", DROP, "--weight", "0.5", "--within", "60")
    assert code == 2  # another window: another order under a taken id
    assert "[conflict]" in err
    window = ["--earliest", status["updated_at"], "--latest", "2099-01-01T00:00:00Z"]
    code, _, err = await served.cli(capsys, "order", "add", "C-2", DROP, *window)
    assert code == 0, err
    again = await served.ok_json(capsys, "order", "add", "C-2", DROP, *window)  # the same order: idempotent
    assert again["duplicate"] is True
    await served.ok_json(capsys, "order", "cancel", "C-2")
    listed = await served.ok_json(capsys, "orders", "--state", "accepted")
    assert [o["order_id"] for o in listed] == ["C-1"]
    assert (await served.ok_json(capsys, "order", "pin", "C-1", "quad-2"))["pinned_vehicle"] == "quad-2"
    assert (await served.ok_json(capsys, "vehicle", "ground", "quad-1", "--reason", "rotor check"))["grounded"]
    assert not (await served.ok_json(capsys, "vehicle", "unground", "quad-1"))["grounded"]
    lat, lon = SITE.frame.to_wgs84(*SITE.depots["kruununhaka"].xy_m)
    added = await served.ok_json(capsys, "nofly", "add", "circle", str(lat + 0.003), str(lon), "80",
                                 "--until", "30m", "--id", "heli", "--reason", "helicopter")
    assert added["zones"][0]["zone_id"] == "heli"
    assert added["zones"][0]["active_until"] is not None
    assert "heli" in {z["zone_id"] for z in await served.ok_json(capsys, "nofly", "list")}
    assert (await served.ok_json(capsys, "nofly", "remove", "heli"))["zone_id"] == "heli"
    square = [[lon - 0.001, lat - 0.004], [lon + 0.001, lat - 0.004], [lon + 0.001, lat - 0.003],
              [lon - 0.001, lat - 0.003], [lon - 0.001, lat - 0.004]]
    geojson = tmp_path / "zones.geojson"
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"id": "works", "reason": "crane"},
         "geometry": {"type": "Polygon", "coordinates": [square]}},
        {"type": "Feature", "properties": {"radius_m": 40}, "geometry": {"type": "Point", "coordinates": [lon, lat + 0.005]}},
    ]}))
    added = await served.ok_json(capsys, "nofly", "add", "geojson", str(geojson), "--until", "1h")
    ids = [z["zone_id"] for z in added["zones"]]
    assert ids[0] == "works"
    assert added["zones"][1]["circle"]["radius_m"] == 40
    for zone_id in ids:
        await served.ok_json(capsys, "nofly", "remove", zone_id)
    code, _, err = await served.cli(capsys, "nofly", "remove", "works")
    assert (code, "[unknown_zone]" in err) == (2, True)
    shown = await served.ok_json(capsys, "order", "show", "C-1")
    assert "operator.pin" in [e["kind"] for e in shown["events"]]
    assert (await served.ok_json(capsys, "order", "cancel", "C-1"))["state"] == "cancelled"
    assert (await served.ok_json(capsys, "dispatch", "resume")) == {"dispatch_paused": False}
    recent = await served.ok_json(capsys, "events", "--limit", "200")
    kinds = {e["kind"] for e in recent}
    assert {"dispatch.paused", "operator.order_added", "zone.added", "zone.removed", "dispatch.resumed"} <= kinds
    by = {e.kind: e.data.get("by") for e in await store.events_after(0, limit=10_000)}
    assert by["dispatch.paused"] == by["zone.added"] == by["operator.pin"] == "anna"


async def test_headless_console_session(served: Served) -> None:
    broker = BrokerSettings(url=BROKER)
    out = io.StringIO()
    lines = ["whoami", "vehicles", "watch", "events --follow", "dispatch pause --json", "vehicle rtl quad-9",
             "fleet land", "n", "bogus", "dispatch resume"]
    with create_pipe_input() as pipe:
        pipe.send_text("".join(f"{line}\r" for line in lines))
        async with ControlClient(broker, served.site_id, "anna", timeout_s=15.0) as client:
            app = ConsoleApp(client, Console(file=out, width=160), input=pipe, output=DummyOutput())
            session = asyncio.create_task(app.run(), name="console-session")
            async with asyncio.timeout(30):
                # Typed ahead; the events come as the service publishes them.
                # (and the vehicles' states: the first comes within a vehicle second of the service's start)
                while "dispatch.resumed" not in out.getvalue() or "quad-1" not in app.live.vehicles:
                    app.live.changed.clear()
                    await app.live.changed.wait()
                toolbar = app._toolbar().value  # what `watch` shows under the prompt
                completer = app.session.completer
                assert completer is not None
                offered = [c.text for c in completer.get_completions(Document("vehicle rtl quad-"), CompleteEvent())]
                pipe.send_text("exit\r")
                failures = await session
    text = out.getvalue()
    assert "operator" in text
    assert "quad-1" in text
    assert "watching" in text
    assert '"dispatch_paused": true' in text
    assert "unknown vehicle 'quad-9'" in text
    assert "land not confirmed: nothing sent" in text
    assert "invalid choice: 'bogus'" in text
    assert "dispatch.paused" in text  # followed: the event printed as it came
    assert failures == 2
    assert "quad-1" in toolbar
    assert "quad-1" in offered  # vehicle ids complete, from the live topics
    assert not served.service.dispatcher.paused


async def test_vehicle_commands_in_flight(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """A sortie under way: paused and resumed by the operator, each confirmed by the vehicle and logged
    with who asked; `fleet rtl --yes` calls every vehicle under way home and leaves the others be."""
    store = served.service.store
    async with ControlClient(BrokerSettings(url=BROKER), served.site_id, "viewer-of-tests") as watcher:
        with contextlib.closing(watcher.watch(watcher.topics.order_status("F-1"))) as statuses:
            await served.ok_json(capsys, "order", "add", "F-1", DROP)
            async with asyncio.timeout(60):
                async for message in statuses:
                    if OrderStatus.model_validate_json(message.payload).state == "in_transit":
                        break
    flying = (await store.get_order("F-1")).vehicle_id
    assert flying in VEHICLES
    assert (await served.ok_json(capsys, "vehicle", "pause", flying))["done"] == "pause"
    assert (await served.ok_json(capsys, "vehicle", "resume", flying))["done"] == "resume"
    fleet = await served.ok_json(capsys, "fleet", "rtl", "--yes")
    assert fleet["vehicles"][flying] == "ok"
    assert all(v.startswith("skipped") for k, v in fleet["vehicles"].items() if k != flying)
    logged = [(e.kind, e.data.get("by"), e.data.get("ok")) for e in await store.events_after(0, limit=10_000)
              if e.entity_id == flying and e.kind.startswith("operator.")]
    assert logged == [("operator.pause", "anna", True), ("operator.resume", "anna", True), ("operator.rtl", "anna", True)]


async def test_late_and_redelivered_requests(served: Served) -> None:
    """A request delivered after its expires_at is not carried out; one delivered twice (QoS 1 is
    at-least-once) is carried out once and answered twice."""
    store = served.service.store
    async with ControlClient(BrokerSettings(url=BROKER), served.site_id, "anna") as client:
        topic = client.topics.control_request("anna")
        with contextlib.closing(client.watch(client.topics.control_response("anna"))) as responses:
            paused_before = sum(1 for e in await store.events_after(0, limit=10_000) if e.kind == "dispatch.paused")
            late = ControlRequest(correlation_id="late-1", command="pause_dispatch",
                                  expires_at=datetime.now(UTC) - timedelta(seconds=1))
            await client.bus.publish(topic, late)
            twice = ControlRequest(correlation_id="twice-1", command="pause_dispatch")
            await client.bus.publish(topic, twice)
            await client.bus.publish(topic, twice)
            async with asyncio.timeout(10):
                answers = [ControlResponse.model_validate_json((await responses.get()).payload) for _ in range(3)]
        await client.request("resume_dispatch")
    by_id = {(a.correlation_id, a.ok, a.code) for a in answers}
    assert by_id == {("late-1", False, "expired"), ("twice-1", True, None)}
    paused = sum(1 for e in await store.events_after(0, limit=10_000) if e.kind == "dispatch.paused")
    assert paused == paused_before + 1
