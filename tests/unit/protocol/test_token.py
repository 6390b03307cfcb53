from __future__ import annotations

import dataclasses
import datetime
import json

import pendulum
import pytest

from airflow_sfi.exceptions import SfiResponseError
from airflow_sfi.protocol.token import WsToken
from tests.helpers import token_item

SECRET = "ws-secret-token-0123456789"


def item(**changes: object) -> dict[str, object]:
    return token_item(SECRET, "2024-01-15 14:30:00", **changes)


def test_vendor_expires_at_is_utc() -> None:
    token = WsToken.from_dict(item())
    assert token.expires_at == pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC")
    assert token.expires_at.utcoffset() == datetime.timedelta(0)


def test_round_trip_through_json() -> None:
    token = WsToken.from_dict(item())
    data = json.loads(json.dumps(token.to_dict()))
    assert data["expires_at"] == "2024-01-15T14:30:00+00:00"
    assert data["allowed_channels"] == ["MAIN"]
    assert WsToken.from_dict(data) == token


def test_offset_is_converted_to_utc() -> None:
    token = WsToken.from_dict(item(expires_at="2024-01-15T16:30:00+02:00"))
    assert token.expires_at == pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC")


def test_seconds_left() -> None:
    token = WsToken.from_dict(item())
    assert token.seconds_left(now=pendulum.datetime(2024, 1, 15, 14, 25, tz="UTC")) == 300
    assert token.seconds_left(now=datetime.datetime(2024, 1, 15, 14, 31)) == -60  # naive is UTC
    assert token.seconds_left() < 0


def test_repr_and_str_hide_the_token_and_server() -> None:
    token = WsToken.from_dict(item())
    for text in (repr(token), str(token), f"{token}", f"{[token]}"):
        assert SECRET not in text
        shown = [f.name for f in dataclasses.fields(WsToken) if f"{f.name}=" in text]
        assert shown == ["is_new", "max_connections", "max_subscribe_per_connection", "allowed_channels", "expires_at"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"token": ...}, "'token' is missing"),
        ({"token": None}, "'token' must be a string, got null"),
        ({"token": "  "}, "'token' is empty"),
        ({"server": 5}, "'server' must be a string, got an integer"),
        ({"server": "https://x/?token=a"}, "not a ws:// or wss:// URL"),
        ({"is_new": "true"}, "'is_new' must be a boolean, got a string"),
        ({"max_connections": True}, "'max_connections' must be an integer, got a boolean"),
        ({"max_connections": 2.5}, "'max_connections' must be an integer, got a number"),
        ({"max_subscribe_per_connection": ...}, "'max_subscribe_per_connection' is missing"),
        ({"allowed_channels": "MAIN"}, "'allowed_channels' must be a list, got a string"),
        ({"allowed_channels": ["MAIN", 1]}, "list of strings"),
        ({"expires_at": "soon"}, "'expires_at' is not a 'YYYY-MM-DD HH:MM:SS' or ISO 8601"),
        ({"expires_at": "2024-13-45 99:00:00"}, "'expires_at' is not a"),
        ({"expires_at": "14:30"}, "'expires_at' is not a"),
        ({"expires_at": 1705329000}, "'expires_at' must be a string, got an integer"),
    ],
)
def test_bad_fields_name_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SfiResponseError, match=message.replace("(", r"\(")) as caught:
        WsToken.from_dict(item(**changes))
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize("data", [None, [], "token", 3])
def test_non_object_is_rejected(data: object) -> None:
    with pytest.raises(SfiResponseError, match="must be a JSON object"):
        WsToken.from_dict(data)


def test_token_is_frozen() -> None:
    token = WsToken.from_dict(item())
    with pytest.raises(AttributeError):
        token.token = "other"  # type: ignore[misc]
