"""Checks of DAG-parse arguments: templates, channels, event types, margins and expiries."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
import pytest

from airflow_sfi.arguments import (
    channel_list,
    check_renew_margin,
    event_type_list,
    expiry_of,
    expiry_only,
    is_template,
    status_list,
)
from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.protocol.token import WsToken
from tests.helpers import token_item


def test_expiry_of_every_form_the_sensor_accepts() -> None:
    expected = pendulum.datetime(2024, 1, 15, 14, 30, tz="UTC")
    item = token_item("secret-ws-token", "2024-01-15 14:30:00")
    for value in (
        "2024-01-15 14:30:00",
        expected,
        item,
        {"expires_at": "2024-01-15T14:30:00+00:00"},
        WsToken.from_dict(item),
    ):
        assert expiry_of(value) == expected
    with pytest.raises(SfiConfigError, match="dict without an 'expires_at' key"):
        expiry_of({"token": "secret-ws-token"})


def test_expiry_only_keeps_no_secret_of_a_token_dict() -> None:
    item = token_item("secret-ws-token", "2024-01-15 14:30:00")
    assert expiry_only(item) == {"expires_at": "2024-01-15 14:30:00"}
    assert expiry_only("2024-01-15 14:30:00") == "2024-01-15 14:30:00"


def test_templates_are_told_from_literals() -> None:
    assert is_template("{{ ds }}") and is_template("{% if x %}") and is_template("{# note #}")
    assert not is_template("2024-01-15 14:30:00") and not is_template(None)


def test_channel_and_event_type_lists_normalise_and_name_what_is_unknown() -> None:
    assert channel_list(" main, stats ", "t") == ["MAIN", "STATS"]
    with pytest.raises(SfiConfigError, match="t: unknown channel\\(s\\) FOO"):
        channel_list(["MAIN", "foo"], "t")
    assert event_type_list("goal", "t") == ["goal"] and event_type_list(None, "t") == []
    with pytest.raises(SfiConfigError, match="t: unknown event type\\(s\\) gaol"):
        event_type_list(["gaol"], "t")


@pytest.mark.parametrize("margin", [datetime.timedelta(seconds=-1), 300, "5m", None])
def test_a_renew_margin_must_be_a_non_negative_timedelta(margin: object) -> None:
    with pytest.raises(SfiConfigError, match="t: renew_margin must be a non-negative timedelta"):
        check_renew_margin(margin, "t")
    assert check_renew_margin(datetime.timedelta(0), "t") == datetime.timedelta(0)


@pytest.mark.parametrize("status", ["", "  ", [], [""], ["ENDED", " "], 5, None, [1]])
def test_an_empty_or_non_string_status_is_a_configuration_error(status: Any) -> None:
    with pytest.raises(SfiConfigError, match="t: status"):
        status_list(status, "t")
