"""sitl.px4 against a FAKE px4 executable (PX4 is not installed here).

The fake mimics what the launcher relies on: the CLI (-d -i <i> -w <workdir> <etc>), the start-up log line,
PX4-like HEARTBEAT + SYS_STATUS on the API link, a child process in its group (like the start-up shell),
and exiting on SIGTERM. It sends its API link to FAKE_PX4_API_PORT_BASE + its instance (set by the tests), so no
test touches PX4's real ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from sitl._px4_process import build_env, find_build
from sitl.ports import free_udp_block
from sitl.px4 import (
    InstanceBusy,
    InstanceOutOfRange,
    Px4Exited,
    Px4Fleet,
    Px4NotFound,
    Px4StartTimeout,
    specs_from_site,
)

FAKE_PX4 = r'''
import json, os, signal, socket, subprocess, sys, time
from pymavlink.dialects.v20 import development as m

argv = sys.argv[1:]
instance = int(argv[argv.index("-i") + 1])
workdir = argv[argv.index("-w") + 1]
mode = os.environ.get("FAKE_PX4_MODE", "ok")
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
devnull = os.stat("/dev/null")
stdin = os.fstat(0)
record = {
    "argv": argv,
    "cwd": os.getcwd(),
    "env": {k: v for k, v in os.environ.items() if k.startswith(("PX4_", "FLEETCTL_", "FAKE_"))},
    "pid": os.getpid(),
    "pgid": os.getpgid(0),
    "child_pid": child.pid,
    "stdin_is_devnull": (stdin.st_dev, stdin.st_ino) == (devnull.st_dev, devnull.st_ino),
}
with open(os.path.join(workdir, "fake_px4.json"), "w") as f:
    json.dump(record, f)
print(f"INFO  [px4] instance: {instance}", flush=True)
if mode == "crash":
    print("ERROR [px4] simulated crash", flush=True)
    sys.exit(3)
stop = False
def on_term(signum, frame):
    global stop
    stop = True
signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "ignore_term" else on_term)
if mode != "no_startup":
    print("INFO  [init] Startup script returned successfully", flush=True)
port = int(os.environ["FAKE_PX4_API_PORT_BASE"]) + instance
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", 0))
class Out:
    def write(self, buf):
        sock.sendto(buf, ("127.0.0.1", port))
mav = m.MAVLink(Out(), srcSystem=instance + 1, srcComponent=1)
vtype = m.MAV_TYPE_GROUND_ROVER if "rover" in os.environ["PX4_SIM_MODEL"] else m.MAV_TYPE_QUADROTOR
health = 0x0320C83F if mode == "not_ready" else 0x1320C83F
while not stop:
    if mode != "silent":
        mav.heartbeat_send(vtype, m.MAV_AUTOPILOT_PX4, 29, 0x03040000, 3)
        mav.sys_status_send(0x300402F, 0x301402F, health, 0, 16200, -1, 100, 0, 0, 0, 0, 0, 0)
    time.sleep(0.05)
print("INFO  [px4] Exiting NOW.", flush=True)
'''


@dataclass(frozen=True)
class Spec:
    kind: str
    home_lat_deg: float
    home_lon_deg: float
    home_alt_amsl_m: float
    instance: int | None = None


FAKE_PORT_ENV = "FAKE_PX4_API_PORT_BASE"  # the stand-in px4 sends its API link to this + instance
QUAD = Spec("quad", 60.1699, 24.9384, 12.0)
ROVER = Spec("rover", 60.1701, 24.9390, 11.5)


def make_fake_px4(root: Path) -> Path:
    """A PX4-Autopilot-like tree whose build/px4_sitl_default/bin/px4 is the fake."""
    build = root / "PX4-Autopilot" / "build" / "px4_sitl_default"
    (build / "bin").mkdir(parents=True)
    (build / "etc" / "init.d-posix").mkdir(parents=True)
    px4 = build / "bin" / "px4"
    px4.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_PX4))
    px4.chmod(0o755)
    return root / "PX4-Autopilot"


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        await asyncio.sleep(0.05)
    return gone(pid)


@pytest.fixture
def px4_root(tmp_path: Path) -> Path:
    return make_fake_px4(tmp_path)


def fleet(px4_root: Path, tmp_path: Path, specs: list[Spec], **kw: object) -> Px4Fleet:
    kw.setdefault("start_timeout_s", 10.0)
    kw.setdefault("stop_grace_s", 2.0)
    base = free_udp_block(10)
    kw["extra_env"] = {FAKE_PORT_ENV: str(base), **kw.get("extra_env", {})}  # type: ignore[dict-item]
    return Px4Fleet(
        px4_root,
        specs,
        run_dir=tmp_path / "run",
        lock_dir=tmp_path,
        api_port_base=base,
        **kw,  # type: ignore[arg-type]
    )


def records(run_dir: Path) -> dict[int, dict[str, object]]:
    out = {}
    for path in run_dir.glob("instance_*/fake_px4.json"):
        out[int(path.parent.name.split("_")[1])] = json.loads(path.read_text())
    return out


# --- finding the build ------------------------------------------------------------------------------


def test_find_build_accepts_checkout_build_dir_and_env(px4_root: Path) -> None:
    build_dir = px4_root / "build" / "px4_sitl_default"
    assert find_build(px4_root).px4_bin == build_dir / "bin" / "px4"
    assert find_build(build_dir).etc_dir == build_dir / "etc"
    assert find_build(None, {"PX4_DIR": str(px4_root)}).build_dir == build_dir


def test_find_build_missing_raises_px4_not_found(tmp_path: Path) -> None:
    with pytest.raises(Px4NotFound, match="no PX4 SITL build") as err:
        find_build(tmp_path / "nowhere")
    assert any("px4_sitl_default" in str(p) for p in err.value.searched)
    with pytest.raises(Px4NotFound, match="PX4_DIR"):
        find_build(None, {})


def test_find_build_rejects_non_executable(px4_root: Path) -> None:
    (px4_root / "build" / "px4_sitl_default" / "bin" / "px4").chmod(0o644)
    with pytest.raises(Px4NotFound):
        find_build(px4_root)


async def test_fleet_not_found_error_starts_nothing(tmp_path: Path) -> None:
    with pytest.raises(Px4NotFound):
        async with Px4Fleet(tmp_path / "missing", [QUAD], run_dir=tmp_path / "run", lock_dir=tmp_path):
            pass
    assert not (tmp_path / "run").exists()


# --- configuration -------------------------------------------------------------------------------


def test_build_env_quad_and_rover() -> None:
    env = build_env(
        {"PATH": "/bin"},
        kind="rover",
        home_lat_deg=60.5,
        home_lon_deg=24.25,
        home_alt_amsl_m=12.5,
        speed_factor=3.0,
        params={"SDLOG_MODE": -1, "COM_DISARM_PRFLT": 20},
        extra_env={"X": "1"},
    )
    assert env["PATH"] == "/bin"
    assert env["PX4_SYS_AUTOSTART"] == "10045"
    assert env["PX4_SIM_MODEL"] == "sihsim_rover_ackermann"
    assert env["PX4_SIMULATOR"] == "sihsim"
    assert (env["PX4_HOME_LAT"], env["PX4_HOME_LON"], env["PX4_HOME_ALT"]) == ("60.5", "24.25", "12.5")
    assert env["PX4_SIM_SPEED_FACTOR"] == "3"
    assert env["PX4_PARAM_SDLOG_MODE"] == "-1"
    assert env["PX4_PARAM_COM_DISARM_PRFLT"] == "20"
    quad = build_env({}, kind="quad", home_lat_deg=0, home_lon_deg=0, home_alt_amsl_m=0, speed_factor=1,
                     params={}, extra_env={})
    assert (quad["PX4_SYS_AUTOSTART"], quad["PX4_SIM_MODEL"]) == ("10040", "sihsim_quadx")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"kind": "plane"}, "unknown vehicle kind"),
        ({"home_lat_deg": 95.0}, "not WGS84"),
        ({"speed_factor": 0.0}, "speed_factor"),
        ({"params": {"sdlog mode": 1}}, "parameter name"),
    ],
)
def test_build_env_rejects_bad_input(kw: dict[str, object], match: str) -> None:
    args: dict[str, object] = dict(kind="quad", home_lat_deg=1.0, home_lon_deg=1.0, home_alt_amsl_m=0.0,
                                   speed_factor=1.0, params={}, extra_env={})
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        build_env({}, **args)  # type: ignore[arg-type]


def test_instance_ids_above_9_are_refused(px4_root: Path) -> None:
    with pytest.raises(InstanceOutOfRange, match="14549"):
        Px4Fleet(px4_root, [Spec("quad", 1, 1, 0, instance=10)])
    with pytest.raises(InstanceOutOfRange):
        Px4Fleet(px4_root, [QUAD] * 11)
    with pytest.raises(ValueError, match="two vehicles"):
        Px4Fleet(px4_root, [Spec("quad", 1, 1, 0, instance=2), Spec("quad", 1, 1, 0, instance=2)])
    with pytest.raises(ValueError, match="unknown vehicle kind"):
        Px4Fleet(px4_root, [Spec("boat", 1, 1, 0)])
    with pytest.raises(ValueError, match="parameter name"):
        Px4Fleet(px4_root, [QUAD], params={"com disarm": 1})
    with pytest.raises(ValueError, match="speed_factor"):
        Px4Fleet(px4_root, [QUAD], speed_factor=0.0)


async def test_instance_busy_when_lock_held(px4_root: Path, tmp_path: Path) -> None:
    lock_path = tmp_path / "px4_lock-1"
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        with pytest.raises(InstanceBusy, match="instance 1") as err:
            async with fleet(px4_root, tmp_path, [QUAD, QUAD]):
                pass
        assert err.value.lock_path == lock_path
        assert records(tmp_path / "run") == {}  # nothing started
    finally:
        os.close(fd)
    # an unlocked leftover lock file (PX4 never deletes it) does not count as busy
    async with fleet(px4_root, tmp_path, [QUAD, QUAD]) as f:
        assert [v.instance for v in f.vehicles] == [0, 1]


# --- running -------------------------------------------------------------------------------------


async def test_start_ready_and_clean_shutdown(px4_root: Path, tmp_path: Path) -> None:
    ready: list[int] = []
    f = fleet(px4_root, tmp_path, [QUAD, ROVER, Spec("quad", 60.17, 24.94, 13.0, instance=5)],
              speed_factor=2.5, params={"COM_DISARM_PRFLT": 30}, on_ready=lambda v: ready.append(v.instance))
    async with f:
        run_dir = tmp_path / "run"
        vs = f.vehicles
        assert [(v.instance, v.sysid, v.kind) for v in vs] == [(0, 1, "quad"), (1, 2, "rover"), (5, 6, "quad")]
        assert sorted(ready) == [0, 1, 5]
        assert all(v.prearm_verified for v in vs)
        recs = records(run_dir)
        for v in vs:
            rec = recs[v.instance]
            assert v.workdir == run_dir / f"instance_{v.instance}"
            assert v.log_path.parent == v.workdir
            assert "Startup script returned successfully" in v.log_path.read_text()
            etc = str(find_build(px4_root).etc_dir)
            assert rec["argv"] == ["-d", "-i", str(v.instance), "-w", str(v.workdir), etc]
            assert rec["cwd"] == str(v.workdir)
            assert rec["stdin_is_devnull"] is True
            assert rec["pgid"] == rec["pid"] == v.pid  # own process group
            env = rec["env"]
            assert isinstance(env, dict)
            assert env["PX4_SIM_SPEED_FACTOR"] == "2.5"
            assert env["PX4_PARAM_SDLOG_MODE"] == "-1"
            assert env["PX4_PARAM_COM_DISARM_PRFLT"] == "30"
            assert env["PX4_SYS_AUTOSTART"] == ("10045" if v.kind == "rover" else "10040")
            assert float(env["PX4_HOME_ALT"]) == v.home_alt_amsl_m
            assert not gone(v.pid)
        # the readiness listener let go of the API port, so a ground station can bind it
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", vs[0].api_port))
    for rec in recs.values():
        assert await wait_gone(int(rec["pid"]))  # type: ignore[call-overload]
        assert await wait_gone(int(rec["child_pid"]))  # type: ignore[call-overload]
        log = (run_dir / f"instance_{rec['argv'][2]}" / "px4.log").read_text()  # type: ignore[index]
        assert "Exiting NOW." in log  # stopped by SIGTERM, cleanly
    assert f.vehicles == ()


async def test_ulog_on_keeps_sdlog_default(px4_root: Path, tmp_path: Path) -> None:
    async with fleet(px4_root, tmp_path, [QUAD], ulog=True):
        env = records(tmp_path / "run")[0]["env"]
        assert isinstance(env, dict)
        assert "PX4_PARAM_SDLOG_MODE" not in env


async def test_timeout_when_never_ready_to_arm(px4_root: Path, tmp_path: Path) -> None:
    with pytest.raises(Px4StartTimeout, match="pre-arm") as err:
        # long enough for the fake to boot and talk even on a loaded host: the check is what is missing
        async with fleet(px4_root, tmp_path, [QUAD], start_timeout_s=3.0,
                         extra_env={"FAKE_PX4_MODE": "not_ready"}):
            pytest.fail("must not become ready")
    assert err.value.instance == 0
    rec = records(tmp_path / "run")[0]
    assert await wait_gone(int(rec["pid"]))  # type: ignore[call-overload]
    assert await wait_gone(int(rec["child_pid"]))  # type: ignore[call-overload]


@pytest.mark.parametrize(("mode", "match"), [("no_startup", "never printed"), ("silent", "no PX4 HEARTBEAT")])
async def test_timeout_names_what_is_missing(px4_root: Path, tmp_path: Path, mode: str, match: str) -> None:
    with pytest.raises(Px4StartTimeout, match=match):
        async with fleet(px4_root, tmp_path, [QUAD], start_timeout_s=3.0, extra_env={"FAKE_PX4_MODE": mode}):
            pass
    rec = records(tmp_path / "run")[0]
    assert await wait_gone(int(rec["pid"]))  # type: ignore[call-overload]


async def test_one_instance_crashing_stops_the_others(px4_root: Path, tmp_path: Path) -> None:
    f = fleet(px4_root, tmp_path, [QUAD, ROVER], extra_env={"FAKE_PX4_MODE": "crash"})
    with pytest.raises(Px4Exited, match="exited with code 3") as err:
        async with f:
            pass
    assert "simulated crash" in err.value.log_path.read_text()
    for rec in records(tmp_path / "run").values():
        assert await wait_gone(int(rec["pid"]))  # type: ignore[call-overload]
        assert await wait_gone(int(rec["child_pid"]))  # type: ignore[call-overload]


async def test_sigkill_after_grace_when_sigterm_ignored(px4_root: Path, tmp_path: Path) -> None:
    f = fleet(px4_root, tmp_path, [QUAD], stop_grace_s=0.5, extra_env={"FAKE_PX4_MODE": "ignore_term"})
    async with f:
        pid = f.vehicles[0].pid
        log_path = f.vehicles[0].log_path
    assert gone(pid)
    assert "Exiting NOW." not in log_path.read_text()  # it never ran its SIGTERM path: it was killed
    rec = records(tmp_path / "run")[0]
    assert await wait_gone(int(rec["child_pid"]))  # type: ignore[call-overload]


@pytest.fixture
def foreign_px4(px4_root: Path, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process running the very same px4 executable, started by someone else."""
    px4_bin = px4_root / "build" / "px4_sitl_default" / "bin" / "px4"
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    other = subprocess.Popen(
        [str(px4_bin), "-d", "-i", "7", "-w", str(other_dir), "etc"],
        env={**os.environ, FAKE_PORT_ENV: str(free_udp_block(8)), "PX4_SIM_MODEL": "sihsim_quadx"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    yield other
    other.terminate()
    other.wait(5)
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        os.kill(json.loads((other_dir / "fake_px4.json").read_text())["child_pid"], signal.SIGKILL)


async def test_shutdown_spares_processes_it_did_not_start(
    px4_root: Path, tmp_path: Path, foreign_px4: subprocess.Popen[bytes]
) -> None:
    async with fleet(px4_root, tmp_path, [QUAD]) as f:
        mine = f.vehicles[0].pid
    assert await wait_gone(mine)
    assert foreign_px4.poll() is None
    assert not gone(foreign_px4.pid)


async def test_cancel_during_start_cleans_up(px4_root: Path, tmp_path: Path) -> None:
    f = fleet(px4_root, tmp_path, [QUAD], extra_env={"FAKE_PX4_MODE": "not_ready"})

    async def enter() -> None:
        async with f:
            pytest.fail("must not become ready")

    task = asyncio.create_task(enter())
    for _ in range(100):
        if records(tmp_path / "run"):
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    rec = records(tmp_path / "run")[0]
    assert await wait_gone(int(rec["pid"]))  # type: ignore[call-overload]


# --- CLI -----------------------------------------------------------------------------------------


def test_specs_from_site_puts_vehicles_on_depot_pads() -> None:
    def pos(lat: float, lon: float, alt: float = 10.0) -> SimpleNamespace:
        return SimpleNamespace(lat_deg=lat, lon_deg=lon, alt_amsl_m=alt)

    depot_a = SimpleNamespace(position=pos(60.0, 24.0, 15.0),
                              pads=(SimpleNamespace(position=pos(60.0001, 24.0)),))
    depot_b = SimpleNamespace(position=pos(60.1, 24.1, 7.0), pads=())
    site = SimpleNamespace(name="t", depots={"a": depot_a, "b": depot_b})
    specs = specs_from_site(site, quads=3, rovers=1)
    assert [s.kind for s in specs] == ["quad", "quad", "quad", "rover"]
    assert (specs[0].home_lat_deg, specs[0].home_lon_deg, specs[0].home_alt_amsl_m) == (60.0001, 24.0, 15.0)
    assert specs[1].home_alt_amsl_m == 7.0  # second depot
    assert specs[2].home_lat_deg == pytest.approx(60.0)  # depot a's pad is taken: east of the depot
    assert specs[2].home_lon_deg > 24.0
    assert specs[3].home_lon_deg > specs[1].home_lon_deg  # depot b has no pads: offset east
    with pytest.raises(ValueError, match="no depots"):
        specs_from_site(SimpleNamespace(name="x", depots={}), 1, 0)


def test_specs_from_bundled_site_use_distinct_depot_pads() -> None:
    from sitl.px4 import DEFAULT_SITE

    if not (DEFAULT_SITE / "site.toml").is_file():
        pytest.skip("bundled site not built")
    from planner.site import load_site

    site = load_site(DEFAULT_SITE)
    specs = specs_from_site(site, quads=3, rovers=2)
    homes = {(s.home_lat_deg, s.home_lon_deg) for s in specs}
    assert len(homes) == 5  # nobody shares a spot
    pads = {(p.position.lat_deg, p.position.lon_deg) for d in site.depots.values() for p in d.pads}
    depots = list(site.depots.values())
    for k, spec in enumerate(specs):
        depot = depots[k % len(depots)]
        assert spec.home_alt_amsl_m == depot.position.alt_amsl_m
        if len(depot.pads) > k // len(depots):
            assert (spec.home_lat_deg, spec.home_lon_deg) in pads


def test_cli_runs_until_interrupted(px4_root: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "clirun"
    cmd = [
        sys.executable, "-c", "import sys; from sitl.px4 import cli_main; sys.exit(cli_main(sys.argv[1:]))",
        "px4", "--quads", "2", "--rovers", "1", "--home", "60.17,24.94,12", "--px4-dir", str(px4_root),
        "--speed", "2", "--run-dir", str(run_dir), "--api-port-base", str(base := free_udp_block(10)),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2], env={**os.environ, FAKE_PORT_ENV: str(base)})
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("all "):
                break
        assert sum(line.startswith("ready  instance") for line in lines) == 3, lines
        assert any("rover" in line and "sysid 3" in line for line in lines)
        recs = records(run_dir)
        assert sorted(recs) == [0, 1, 2]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for rec in recs.values():
        assert gone(int(rec["pid"]))  # type: ignore[call-overload]


def test_cli_errors_are_reported(px4_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sitl.px4 import cli_main

    assert cli_main(["--quads", "0", "--home", "1,1,0", "--px4-dir", str(px4_root)]) == 2
    assert cli_main(["--quads", "11", "--home", "1,1,0", "--px4-dir", str(px4_root)]) == 2
    assert cli_main(["--quads", "1", "--home", "1,1,0", "--px4-dir", str(tmp_path / "nope"),
                     "--run-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "at least one vehicle" in err
    assert "at most 10" in err
    assert "no PX4 SITL build" in err


RUNNER = """
import asyncio, sys
from dataclasses import dataclass
from sitl.px4 import Px4Fleet

@dataclass(frozen=True)
class Spec:
    kind: str = "quad"
    home_lat_deg: float = 60.17
    home_lon_deg: float = 24.94
    home_alt_amsl_m: float = 12.0

async def main() -> None:
    async with Px4Fleet(sys.argv[1], [Spec()], run_dir=sys.argv[2], lock_dir=sys.argv[2],
                        api_port_base=int(sys.argv[3]),
                        extra_env={"FAKE_PX4_API_PORT_BASE": sys.argv[3]}) as fleet:
        print(fleet.vehicles[0].pid, flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""


def test_px4_dies_with_a_killed_launcher(px4_root: Path, tmp_path: Path) -> None:
    """If the launching process is SIGKILLed (no clean shutdown), px4 still gets SIGTERM (PDEATHSIG)."""
    run_dir = tmp_path / "run"
    runner = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(px4_root), str(run_dir), str(free_udp_block(10))],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert runner.stdout is not None
        px4_pid = int(runner.stdout.readline())
        assert not gone(px4_pid)
        runner.kill()
        runner.wait(5)
        deadline = time.monotonic() + 5
        while not gone(px4_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gone(px4_pid)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        for rec in records(run_dir).values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(rec["pgid"]), signal.SIGKILL)  # type: ignore[call-overload]
