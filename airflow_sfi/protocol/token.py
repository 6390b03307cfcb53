"""The WebSocket token as a small, frozen, typed value."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pendulum

from airflow_sfi.exceptions import SfiChannelError, SfiResponseError
from airflow_sfi.protocol.envelope import json_type, parse_envelope, response_error
from airflow_sfi.protocol.times import parse_utc

CHANNELS = frozenset({"MAIN", "MAIN_REALTIME", "STATS", "ODDS", "STATS_REALTIME", "ODDS_REALTIME"})


@dataclasses.dataclass(frozen=True)
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

    token: str = dataclasses.field(repr=False)
    server: str = dataclasses.field(repr=False)
    is_new: bool
    max_connections: int
    max_subscribe_per_connection: int
    allowed_channels: tuple[str, ...]
    expires_at: pendulum.DateTime

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
            raise SfiResponseError(f"token data must be a JSON object, got {json_type(data)}")

        def field(name: str, kind: type) -> Any:
            if name not in data:
                raise SfiResponseError(f"token field {name!r} is missing")
            value = data[name]
            # bool is an int subclass: an int field must not accept true/false
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SfiResponseError(f"token field {name!r} must be {json_type(kind())}, got {json_type(value)}")
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

    @classmethod
    def from_result(cls, result: list[Any], http_status: int = 200) -> WsToken:
        """
        The token in a ``ws/new`` or ``ws/renew`` envelope's ``result``: exactly one, not yet expired.

        :param result: the envelope's result items.
        :param http_status: the answer's HTTP status, for the error message.
        """
        if len(result) != 1:
            raise response_error(http_status, f"with {len(result)} results instead of exactly one token")
        token = cls.from_dict(result[0])
        if token.seconds_left() <= 0:
            raise response_error(
                http_status,
                f"with a token that expired at {token.expires_at.isoformat()} (is this machine's clock right?)",
            )
        return token

    def check_channels(self, required: Sequence[str]) -> None:
        """
        Raise :class:`SfiChannelError` naming the required channels this token does not grant.

        :param required: normalised channel names.
        """
        missing = [channel for channel in required if channel not in self.allowed_channels]
        if missing:
            raise SfiChannelError(
                f"the token does not grant {', '.join(missing)}; the plan allows "
                f"{', '.join(self.allowed_channels) or 'no channel'}"
            )


def parse_ws_token_response(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    scrub: Callable[[str], str] = lambda text: text,
) -> WsToken:
    """
    Turn one HTTP answer of ``ws/new`` or ``ws/renew`` into a :class:`WsToken` or a typed error.

    :param http_status: the HTTP status code.
    :param body: the raw body.
    :param headers: the response headers.
    :param scrub: applied to any text from the body before it goes into an error message.
    """
    return WsToken.from_result(parse_envelope(http_status, body, headers, scrub=scrub).result, http_status)
