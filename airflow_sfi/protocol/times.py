"""The vendor's times, parsed, and the one refresh decision every sensor mode and trigger shares."""

from __future__ import annotations

import datetime
import re

import pendulum

# A date and a time must both be there: pendulum alone would read "14:30" as today.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def parse_utc(value: object, *, what: str = "expires_at") -> pendulum.DateTime:
    """
    Parse a moment given as an aware or naive datetime or a string, into an aware UTC datetime.

    Accepts the vendor's ``YYYY-MM-DD HH:MM:SS`` (UTC) and ISO 8601 with or without offset; a naive
    value is UTC. Raises :class:`ValueError` naming ``what`` otherwise.

    :param value: the moment.
    :param what: the name to use in the error message.
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


def refresh_due(refresh_at: datetime.datetime, now: datetime.datetime | None = None) -> bool:
    """
    The one decision of every sensor mode and trigger: has ``refresh_at`` come?

    :param refresh_at: when the refresh is due.
    :param now: the current time; defaults to the clock.
    """
    return (now or pendulum.now("UTC")) >= refresh_at


def seconds_until(moment: datetime.datetime, now: datetime.datetime | None = None) -> float:
    """
    Seconds from ``now`` until ``moment`` (negative once past).

    :param moment: an aware datetime.
    :param now: the current time; defaults to the clock.
    """
    return (moment - (now or pendulum.now("UTC"))).total_seconds()
