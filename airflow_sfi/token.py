"""The WebSocket token as a small, frozen, typed value."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping
from typing import Any

import pendulum

from airflow_sfi.exceptions import SfiResponseError

# A date and a time must both be there: pendulum alone would read "14:30" as today.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")

CHANNELS = frozenset({"MAIN", "MAIN_REALTIME", "STATS", "ODDS", "STATS_REALTIME", "ODDS_REALTIME"})


def is_template(value: object) -> bool:
    """Whether ``value`` is a Jinja template string, to be checked only once rendered."""
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


def parse_utc(value: object, *, what: str = "expires_at") -> pendulum.DateTime:
    """
    Parse a moment given as an aware or naive datetime or a string, into an aware UTC datetime.

    Accepts the vendor's ``YYYY-MM-DD HH:MM:SS`` (UTC) and ISO 8601 with or without offset; a naive
    value is UTC. Raises :class:`ValueError` naming ``what`` otherwise.
    """
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
        return pendulum.instance(moment).in_timezone("UTC")
    if isinstance(value, str) and _DATE_TIME.match(value.strip()):
        try:
            parsed = pendulum.parse(value.strip(), tz="UTC")
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{what} {value[:40]!r} is not a date and time: {exc}") from None
        if isinstance(parsed, pendulum.DateTime):
            return parsed.in_timezone("UTC")
        raise ValueError(f"{what} {value[:40]!r} is not a date and time (it parses as a {type(parsed).__name__})")
    if isinstance(value, str):
        raise ValueError(f"{what} {value[:40]!r} is not a 'YYYY-MM-DD HH:MM:SS' or ISO 8601 date and time")
    raise ValueError(f"{what} must be a datetime or a date-time string, got {type(value).__name__}")


@dataclasses.dataclass(frozen=True, repr=False)
class WsToken:
    """
    A WebSocket token as ``ws/new`` returns it.

    ``token`` and ``server`` (which embeds the token) are secrets: ``repr`` and ``str`` leave them out.

    :param token: the WebSocket token.
    :param server: the full ``wss://`` URL to connect to, token included.
    :param is_new: False when the API returned the still-active token again.
    :param max_connections: simultaneous connections allowed.
    :param max_subscribe_per_connection: subscriptions allowed per connection.
    :param allowed_channels: channels the plan grants.
    :param expires_at: expiry, an aware UTC datetime.
    """

    token: str
    server: str
    is_new: bool
    max_connections: int
    max_subscribe_per_connection: int
    allowed_channels: tuple[str, ...]
    expires_at: pendulum.DateTime

    def __repr__(self) -> str:
        return (
            f"WsToken(is_new={self.is_new}, allowed_channels={list(self.allowed_channels)}, "
            f"max_connections={self.max_connections}, "
            f"max_subscribe_per_connection={self.max_subscribe_per_connection}, "
            f"expires_at={self.expires_at.isoformat()}, token='***', server='***')"
        )

    __str__ = __repr__

    def seconds_left(self, now: datetime.datetime | None = None) -> float:
        """Seconds until ``expires_at`` (negative once expired); ``now`` defaults to the current time."""
        return (self.expires_at - parse_utc(now or pendulum.now("UTC"), what="now")).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict for XCom, ``expires_at`` as ISO 8601 with offset."""
        return {
            "is_new": self.is_new,
            "token": self.token,
            "server": self.server,
            "max_connections": self.max_connections,
            "max_subscribe_per_connection": self.max_subscribe_per_connection,
            "allowed_channels": list(self.allowed_channels),
            "expires_at": self.expires_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: object) -> WsToken:
        """
        Build from an API result item or from :meth:`to_dict` output.

        Raises :class:`SfiResponseError` naming the first missing or wrongly typed field.
        """
        if not isinstance(data, Mapping):
            raise SfiResponseError(f"token data must be a JSON object, got {_json_type(data)}")

        def field(name: str, kind: type) -> Any:
            if name not in data:
                raise SfiResponseError(f"token field {name!r} is missing")
            value = data[name]
            # bool is an int subclass: an int field must not accept true/false
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SfiResponseError(f"token field {name!r} must be {_kind_name(kind)}, got {_json_type(value)}")
            return value

        token = field("token", str)
        server = field("server", str)
        if not token.strip():
            raise SfiResponseError("token field 'token' is empty")
        if not server.startswith(("wss://", "ws://")):
            raise SfiResponseError("token field 'server' is not a ws:// or wss:// URL")
        channels = field("allowed_channels", list)
        if not all(isinstance(c, str) for c in channels):
            raise SfiResponseError("token field 'allowed_channels' must be a list of strings")
        try:
            expires_at = parse_utc(field("expires_at", str))
        except ValueError:
            # The value itself is not quoted: a response that puts a secret in the wrong field must not leak it.
            raise SfiResponseError(
                "token field 'expires_at' is not a 'YYYY-MM-DD HH:MM:SS' or ISO 8601 date and time"
            ) from None
        return cls(
            token=token,
            server=server,
            is_new=field("is_new", bool),
            max_connections=field("max_connections", int),
            max_subscribe_per_connection=field("max_subscribe_per_connection", int),
            allowed_channels=tuple(channels),
            expires_at=expires_at,
        )


_JSON_NAMES: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _kind_name(kind: type) -> str:
    return _JSON_NAMES.get(kind, kind.__name__)


def _json_type(value: object) -> str:
    return _kind_name(type(value))
