"""One PX4 SITL process: locate the build, start it, watch it become ready, stop it.

`sitl.px4.Px4Fleet` runs several of these. Everything here is per instance.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import functools
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pymavlink.dialects.v20 import development as mavlink2

from sitl.px4_errors import (
    InstanceBusy,
    InstanceOutOfRange,
    Px4Exited,
    Px4LaunchError,
    Px4NotFound,
    Px4StartTimeout,
)

log = logging.getLogger(__name__)

Kind = Literal["quad", "rover"]

STARTUP_MARKER = b"Startup script returned successfully"
MAX_INSTANCE = 9
# PX4's fixed ports (px4-rc.mavlink): API/offboard link sends to 14540+i, GCS link to 14550.
API_TARGET_PORT_BASE = 14540

# airframe id (PX4_SYS_AUTOSTART) and SIH model name per vehicle kind
AIRFRAMES: dict[str, tuple[int, str]] = {
    "quad": (10040, "sihsim_quadx"),
    "rover": (10045, "sihsim_rover_ackermann"),
}

_PARAM_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,15}$")  # PX4 parameter names are at most 16 characters
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Px4Build:
    """A PX4 SITL build: the `px4` executable and the ROMFS `etc` folder it is started with."""

    build_dir: Path
    px4_bin: Path
    etc_dir: Path


def find_build(px4_dir: str | os.PathLike[str] | None, environ: Mapping[str, str] | None = None) -> Px4Build:
    """Find a SITL build under `px4_dir` (or `$PX4_DIR`).

    Accepts the PX4-Autopilot checkout (uses build/px4_sitl_default, else another build/px4_sitl_*),
    or a build folder itself (the one holding bin/px4 and etc/).
    """
    env = os.environ if environ is None else environ
    given = px4_dir if px4_dir is not None else env.get("PX4_DIR")
    if not given:
        raise Px4NotFound([])
    root = Path(given).expanduser().resolve()
    candidates = [root, root / "build" / "px4_sitl_default"]
    build_root = root / "build"
    if build_root.is_dir():
        candidates += sorted(p for p in build_root.glob("px4_sitl*") if p not in candidates)
    for cand in candidates:
        px4_bin = cand / "bin" / "px4"
        etc_dir = cand / "etc"
        if px4_bin.is_file() and os.access(px4_bin, os.X_OK) and etc_dir.is_dir():
            return Px4Build(build_dir=cand, px4_bin=px4_bin, etc_dir=etc_dir)
    hint = "" if root.exists() else f" ({root} does not exist)"
    raise Px4NotFound([c / "bin" / "px4" for c in candidates], hint)


def check_instance_id(instance: int) -> None:
    if not 0 <= instance <= MAX_INSTANCE:
        raise InstanceOutOfRange(instance)


def check_lock_free(instance: int, lock_dir: Path) -> None:
    """Raise InstanceBusy if a running PX4 holds its instance lock.

    PX4 takes an exclusive flock() on /tmp/px4_lock-<i> for its whole life and never deletes the file,
    so only the lock tells: the file existing means nothing.
    """
    lock_path = lock_dir / f"px4_lock-{instance}"
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InstanceBusy(instance, lock_path) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise InstanceBusy(instance, lock_path) from exc
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def check_param_name(name: str) -> None:
    if not _PARAM_NAME.match(name):
        raise ValueError(f"{name!r} is not a PX4 parameter name (upper case, at most 16 characters)")


def build_env(
    base_env: Mapping[str, str],
    *,
    kind: str,
    home_lat_deg: float,
    home_lon_deg: float,
    home_alt_amsl_m: float,
    speed_factor: float,
    params: Mapping[str, float | int | str],
    extra_env: Mapping[str, str],
) -> dict[str, str]:
    """The environment of one px4 process (see px4-notes: "Running PX4 SITL with SIH")."""
    if kind not in AIRFRAMES:
        raise ValueError(f"unknown vehicle kind {kind!r}; PX4 SIH supports {sorted(AIRFRAMES)}")
    if not (-90.0 <= home_lat_deg <= 90.0 and -180.0 <= home_lon_deg <= 180.0):
        raise ValueError(f"home {home_lat_deg}, {home_lon_deg} is not WGS84")
    if not speed_factor > 0.0:
        raise ValueError(f"speed_factor must be > 0, got {speed_factor}")
    autostart, model = AIRFRAMES[kind]
    env = dict(base_env)
    env.update(
        PX4_SYS_AUTOSTART=str(autostart),
        PX4_SIMULATOR="sihsim",
        PX4_SIM_MODEL=model,
        PX4_HOME_LAT=repr(float(home_lat_deg)),
        PX4_HOME_LON=repr(float(home_lon_deg)),
        PX4_HOME_ALT=repr(float(home_alt_amsl_m)),
        PX4_SIM_SPEED_FACTOR=f"{speed_factor:g}",
    )
    for name, value in params.items():
        check_param_name(name)
        env[f"PX4_PARAM_{name}"] = str(value)
    env.update(extra_env)
    return env


def build_argv(build: Px4Build, instance: int, workdir: Path) -> list[str]:
    # -d: no interactive shell; without it px4 spins on stdin EOF and fills the log.
    return [str(build.px4_bin), "-d", "-i", str(instance), "-w", str(workdir), str(build.etc_dir)]


@functools.cache
def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child if the launching thread dies first.

    Resolved once, before any fork: the child must not load libraries between fork and exec.
    """
    libc_name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or libc_name is None:
        return None
    prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    sigterm = int(signal.SIGTERM)

    def _preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm, 0, 0, 0)

    return _preexec


class _LinkWatch(asyncio.DatagramProtocol):
    """Reads the instance's API link until it shows a HEARTBEAT and a healthy pre-arm check."""

    def __init__(self, sysid: int) -> None:
        self.sysid = sysid
        self.heartbeat_seen = False
        self.prearm_ok = False
        self.ready = asyncio.Event()
        self._mav = mavlink2.MAVLink(None)
        self._mav.robust_parsing = True

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        try:
            msgs = self._mav.parse_buffer(data) or []
        except mavlink2.MAVError:
            return
        for msg in msgs:
            if msg.get_srcSystem() != self.sysid or msg.get_srcComponent() != 1:
                continue
            mtype = msg.get_type()
            if mtype == "HEARTBEAT" and msg.autopilot == mavlink2.MAV_AUTOPILOT_PX4:
                self.heartbeat_seen = True
            elif mtype == "SYS_STATUS":
                # PX4 sets the PREARM_CHECK bit in `health` only (not in present/enabled) once arming is allowed
                self.prearm_ok = bool(
                    msg.onboard_control_sensors_health & mavlink2.MAV_SYS_STATUS_PREARM_CHECK
                )
        if self.heartbeat_seen and self.prearm_ok:
            self.ready.set()


class _ConsoleTee(asyncio.SubprocessProtocol):
    """Copies px4's console to its log file, spots the start-up marker, notes the exit.

    The exit is taken from process_exited(), not from the pipe closing: a shell px4 started may
    keep the pipe open after px4 itself is gone (asyncio's Process.wait() would hang on it).
    """

    def __init__(self, log_path: Path) -> None:
        self._log_file = log_path.open("wb")
        self._tail = b""
        self.startup_seen = asyncio.Event()
        self.exited = asyncio.Event()
        self.closed = asyncio.Event()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self._log_file.write(data)
        self._log_file.flush()
        if not self.startup_seen.is_set():
            window = self._tail + data
            if STARTUP_MARKER in window:
                self.startup_seen.set()
            self._tail = window[-len(STARTUP_MARKER) :]

    def process_exited(self) -> None:
        self.exited.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._log_file.close()
        self.closed.set()


class Px4Process:
    """One px4 process in its own working directory and process group."""

    def __init__(
        self,
        *,
        instance: int,
        kind: str,
        workdir: Path,
        log_path: Path,
        argv: list[str],
        env: Mapping[str, str],
        api_port: int,
    ) -> None:
        self.instance = instance
        self.kind = kind
        self.sysid = instance + 1  # px4-rc sets MAV_SYS_ID = instance + 1
        self.workdir = workdir
        self.log_path = log_path
        self.api_port = api_port
        self.prearm_verified = False
        self._argv = argv
        self._env = dict(env)
        self._proc: asyncio.SubprocessTransport | None = None
        self._console: _ConsoleTee | None = None
        self._link: _LinkWatch | None = None
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.get_pid()

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.get_returncode()

    async def start(self) -> None:
        """Start listening on the API port, then start px4 (so its first messages are not missed)."""
        loop = asyncio.get_running_loop()
        link = _LinkWatch(self.sysid)
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: link, local_addr=("127.0.0.1", self.api_port)
            )
            self._transport = transport
            self._link = link
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            # A ground station already owns the port: readiness falls back to the start-up log line.
            log.warning(
                "UDP %d is in use (a ground station?); instance %d readiness checks the log only",
                self.api_port,
                self.instance,
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        console = _ConsoleTee(self.log_path)
        try:
            self._proc, _ = await loop.subprocess_exec(
                lambda: console,
                *self._argv,
                cwd=self.workdir,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() signals px4 and the shells it runs
                preexec_fn=_die_with_parent(),
            )
        except OSError as exc:
            console.connection_lost(exc)
            self._close_link()
            raise Px4LaunchError(f"could not start px4 instance {self.instance} ({self._argv[0]}): {exc}") from exc
        self._console = console

    async def wait_ready(self, timeout_s: float) -> None:
        """Wait until the start-up script succeeded and the API link reports pre-arm healthy."""
        assert self._console is not None
        console = self._console
        link = self._link

        async def both() -> None:
            await console.startup_seen.wait()
            if link is not None:
                await link.ready.wait()

        ready_task = asyncio.create_task(both(), name=f"px4-{self.instance}-ready")
        exit_task = asyncio.create_task(console.exited.wait(), name=f"px4-{self.instance}-exit")
        try:
            done, _ = await asyncio.wait(
                {ready_task, exit_task}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (ready_task, exit_task):
                task.cancel()
            await asyncio.gather(ready_task, exit_task, return_exceptions=True)
        if ready_task in done:
            self.prearm_verified = link is not None
            self._close_link()  # free the API port for the ground station
            return
        if exit_task in done:
            raise Px4Exited(self.instance, self.returncode, self.log_path)
        raise Px4StartTimeout(self.instance, timeout_s, self._missing(), self.log_path)

    def _missing(self) -> str:
        assert self._console is not None
        if not self._console.startup_seen.is_set():
            return f"the log never printed {STARTUP_MARKER.decode()!r}"
        link = self._link
        if link is None:
            return "unknown"
        if not link.heartbeat_seen:
            return f"no PX4 HEARTBEAT from system {self.sysid} on UDP 127.0.0.1:{self.api_port}"
        return "SYS_STATUS never reported the pre-arm check healthy (not ready to arm)"

    def _close_link(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def _signal_group(self, sig: signal.Signals) -> None:
        pid = self.pid
        if pid is None:
            return
        # pgid == pid: start_new_session made px4 the leader of a group holding only what it started
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    async def stop(self, grace_s: float) -> None:
        """SIGTERM px4's process group, SIGKILL it after `grace_s`; idempotent."""
        self._close_link()
        if self._proc is None or self._console is None:
            return
        console = self._console
        if not console.exited.is_set():
            self._signal_group(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace_s):
                    await console.exited.wait()
            except TimeoutError:
                log.warning("px4 instance %d ignored SIGTERM for %.1f s: SIGKILL", self.instance, grace_s)
                self._signal_group(signal.SIGKILL)
                await console.exited.wait()
        # whatever px4 left behind in its group (a start-up shell, a client) goes too
        self._signal_group(signal.SIGKILL)
        try:
            async with asyncio.timeout(2.0):
                await console.closed.wait()  # the console pipe drained: the log is complete
        except TimeoutError:
            log.warning("px4 instance %d: console pipe still open after stop", self.instance)
        self._proc.close()

    async def wait_exit(self) -> int | None:
        assert self._console is not None
        await self._console.exited.wait()
        return self.returncode
