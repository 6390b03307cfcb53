"""The vendor's times: parsing the vendor's times, and the refresh decision every sensor mode and trigger shares."""

from __future__ import annotations

import datetime

import pendulum
import pytest

from airflow_sfi.protocol.times import parse_utc, refresh_due, seconds_until


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime.datetime(2024, 1, 15, 14, 30), "2024-01-15T14:30:00+00:00"),
        (pendulum.datetime(2024, 1, 15, 15, 30, tz="Europe/Paris"), "2024-01-15T14:30:00+00:00"),
        ("2024-01-15 14:30:00", "2024-01-15T14:30:00+00:00"),
        ("2024-01-15T14:30:00Z", "2024-01-15T14:30:00+00:00"),
        ("2024-01-15T20:00:00+05:30", "2024-01-15T14:30:00+00:00"),
    ],
)
def test_parse_utc(value: object, expected: str) -> None:
    assert parse_utc(value).isoformat() == expected


@pytest.mark.parametrize("value", [None, "", "P1D", 12, "2024-01-15", "14:30", "2024-13-45 99:99"])
def test_parse_utc_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="expires_at"):
        parse_utc(value)


def test_refresh_due_is_inclusive() -> None:
    moment = pendulum.datetime(2024, 1, 15, 14, 25, tz="UTC")
    assert not refresh_due(moment, now=moment.subtract(microseconds=1))
    assert refresh_due(moment, now=moment)
    assert seconds_until(moment, now=moment.subtract(seconds=90)) == 90
