"""Fixtures of the bus tests: a Mosquitto of the test's own (from fleetctl/bus/examples), TLS files."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bus_harness import Mosquitto, TlsFiles, make_tls_files, running_mosquitto


def _need(binary: str) -> None:
    if shutil.which(binary) is None:
        pytest.skip(f"{binary} is not installed")


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Mosquitto]:
    """A Mosquitto of this test's own, with the example ACL and accounts (see bus_harness.PASSWORDS)."""
    _need("mosquitto")
    _need("mosquitto_passwd")
    async with running_mosquitto(tmp_path / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    _need("openssl")
    return make_tls_files(tmp_path_factory.mktemp("tls"))
