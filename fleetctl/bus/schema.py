"""Checks a message against the AsyncAPI document: which channel its topic belongs to (by the
channel's address pattern), and whether its payload passes that channel's JSON Schema.

    from fleetctl.bus.schema import validate_message
    validate_message("fleet/helsinki/orders/A-1/status", payload)   # -> "orderStatus", or SchemaMismatch

For tests, tools and a debugging tap on the broker; the service itself validates with the pydantic
models. Needs jsonschema and pyyaml (the `test` extra).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from fleetctl.errors import SchemaMismatch

_BASE_URI: Final = "urn:fleetctl:bus:asyncapi"
_DEFAULT_PATH: Final = Path(__file__).with_name("asyncapi.yaml")


@dataclass(frozen=True)
class Match:
    """A topic resolved to its channel: the channel id, the values of its parameters, and the name of
    its message."""

    channel: str
    parameters: dict[str, str]
    message: str


@dataclass(frozen=True)
class _Channel:
    channel: str
    pattern: re.Pattern[str]
    message: str
    validator: jsonschema.protocols.Validator


def _address_pattern(address: str) -> re.Pattern[str]:
    # Each {parameter} is exactly one topic level: anything but '/', and never a wildcard.
    parts = re.split(r"\{([A-Za-z0-9_]+)\}", address)
    regex = "".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/+#]+)" for i, part in enumerate(parts))
    return re.compile(f"^{regex}$")


class AsyncApiDocument:
    """A loaded AsyncAPI 3.0 document, ready to resolve topics and validate payloads."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        registry: Registry[Any] = Registry().with_resource(_BASE_URI, resource)
        self._channels: list[_Channel] = []
        for channel_id, channel in document["channels"].items():
            (name, message), *others = channel["messages"].items()
            if others:
                raise SchemaMismatch(channel["address"], "a channel with several messages: not supported here")
            payload_ref = self._resolve(message)["payload"]["$ref"]
            validator = jsonschema.Draft202012Validator(
                {"$ref": _BASE_URI + payload_ref}, registry=registry,
                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
            self._channels.append(_Channel(channel_id, _address_pattern(channel["address"]), name, validator))

    @classmethod
    def load(cls, path: Path | None = None) -> AsyncApiDocument:
        """Read a document (default: the one shipped with fleetctl). Reads a file: not on the event loop."""
        with (path or _DEFAULT_PATH).open(encoding="utf-8") as f:
            return cls(yaml.safe_load(f))

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """Follow a local $ref ("#/a/b") to the object it names."""
        while "$ref" in node:
            ref: str = node["$ref"]
            if not ref.startswith("#/"):
                raise SchemaMismatch(ref, "only local references are supported")
            target: Any = self.document
            for key in ref[2:].split("/"):
                target = target[key.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def match(self, topic: str) -> Match:
        """The channel of `topic`; SchemaMismatch if no channel's address matches."""
        for channel in self._channels:
            found = channel.pattern.match(topic)
            if found:
                return Match(channel.channel, found.groupdict(), channel.message)
        raise SchemaMismatch(topic, "no channel has this address")

    def validate(self, topic: str, payload: bytes | str) -> Match:
        """Resolve the channel and validate the JSON payload against its schema; SchemaMismatch if
        either fails (the message says which field and why)."""
        match = self.match(topic)
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise SchemaMismatch(topic, f"payload is not JSON: {e}") from None
        channel = next(c for c in self._channels if c.channel == match.channel)
        error = jsonschema.exceptions.best_match(channel.validator.iter_errors(data))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(root)"
            raise SchemaMismatch(topic, f"{match.message} at {where}: {error.message}")
        return match


@functools.cache
def default_document() -> AsyncApiDocument:
    """The document shipped with fleetctl, loaded once."""
    return AsyncApiDocument.load()


def validate_message(topic: str, payload: bytes | str) -> str:
    """Validate one message against the shipped document; the channel id, or SchemaMismatch."""
    return default_document().validate(topic, payload).channel
