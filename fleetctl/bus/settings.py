"""How to reach the broker: `BrokerSettings`, a pydantic model the service's configuration nests.

    [broker]
    url = "mqtts://broker.example.com:8883"
    username = "service-helsinki"
    password = "..."
    client_id = "fleetctl-helsinki"     # stable: the broker keeps our session (and queued orders) under it
    tls = { ca_file = "/etc/fleetctl/ca.pem" }

``mqtt://`` is plain TCP (default port 1883), ``mqtts://`` is TLS (default port 8883). TLS is
verified against the system's CAs, or `tls.ca_file`; `tls.cert_file`/`key_file` add a client
certificate; `tls.insecure` skips verification (a test broker with a self-signed certificate only).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from fleetctl.errors import ConfigError

_DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails. paho 2.2 does not close the socket of a failed
    handshake (an untrusted certificate, say), so every reconnect attempt would leak a file
    descriptor until the garbage collector finds it."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class TlsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(default=False, description="skip certificate and host name verification")

    @model_validator(mode="after")
    def _key_with_cert(self) -> TlsSettings:
        if self.key_file is not None and self.cert_file is None:
            raise ValueError("tls.key_file needs tls.cert_file")
        return self

    def context(self) -> ssl.SSLContext:
        """A client SSLContext. Reads the certificate files: call it off the event loop."""
        try:
            context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file is not None:
                context.load_cert_chain(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"broker TLS settings: {e}") from e
        context.sslsocket_class = _ClosingSSLSocket  # documented hook: the class wrap_socket returns
        if self.insecure:
            # Order matters: hostname checking must be off before verification can be.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


class BrokerSettings(BaseModel):
    """The broker and how the service talks to it. The defaults suit a local Mosquitto."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = Field(default=None, description="default: fleetctl-<site>")
    persistent_session: bool = Field(default=True, description="clean_session=False: the broker keeps "
                                     "our subscriptions and queues QoS 1 messages while we are away")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT 5 is optional; nothing "
                                            "here needs it")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0, description="MQTT 5 only: how long the "
                                  "broker keeps our session while we are away (3.1.1: until it restarts "
                                  "without persistence)")
    tls: TlsSettings | None = None
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    connect_timeout_s: float = Field(default=10.0, gt=0.0)
    reconnect_min_s: float = Field(default=0.5, gt=0.0, description="first reconnect delay")
    reconnect_max_s: float = Field(default=10.0, gt=0.0, description="the backoff's cap")
    publish_timeout_s: float = Field(default=10.0, gt=0.0, description="how long `Bus.publish` waits for "
                                     "the broker by default")
    max_queued: int = Field(default=10_000, ge=1, description="messages waiting for the broker, at most")
    max_inflight: int = Field(default=100, ge=1, description="QoS 1 publishes awaiting PUBACK, at most")
    intake_queue: int = Field(default=256, ge=1, description="received orders not yet taken, at most")

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"broker url must start with mqtt:// or mqtts://, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"broker url {url!r} has no host")
        try:
            _ = parts.port
        except ValueError as e:
            raise ValueError(f"broker url {url!r}: {e}") from None
        if parts.path not in ("", "/") or parts.query or parts.username or parts.password:
            raise ValueError(f"broker url {url!r}: give only scheme, host and port (credentials are "
                             "username and password)")
        return url

    @model_validator(mode="after")
    def _check(self) -> BrokerSettings:
        if self.reconnect_min_s > self.reconnect_max_s:
            raise ValueError("reconnect_min_s must not exceed reconnect_max_s")
        if self.tls is not None and not self.uses_tls:
            raise ValueError("tls settings need an mqtts:// url")
        if self.client_id is not None and not 1 <= len(self.client_id.encode()) <= 256:
            raise ValueError("client_id must be 1 to 256 bytes")
        return self

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked by the validator
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or _DEFAULT_PORTS[parts.scheme]

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def client_id_for(self, site: str) -> str:
        return self.client_id or f"fleetctl-{site}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for an mqtts:// url (None for mqtt://). Reads certificate files: call it
        off the event loop."""
        if not self.uses_tls:
            return None
        return (self.tls or TlsSettings()).context()
