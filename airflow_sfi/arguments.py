"""
Checks of the arguments users give operators, sensors and triggers: each bad one is an
:class:`~airflow_sfi.exceptions.SfiConfigError` naming it, raised at DAG parse when it is a literal.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

import pendulum

from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.protocol.messages import EVENT_TYPES
from airflow_sfi.protocol.times import parse_utc
from airflow_sfi.protocol.token import CHANNELS


def is_template(value: object) -> bool:
    """
    Whether ``value`` is a Jinja template string, to be checked only once rendered.

    :param value: an operator argument.
    """
    return isinstance(value, str) and any(mark in value for mark in ("{{", "{%", "{#"))


def channel_list(channels: Sequence[str] | str, owner: str) -> list[str]:
    """
    Normalise channel names (a list or a comma-separated string) and reject unknown ones.

    :param channels: the names, e.g. ``["MAIN", "STATS"]`` or ``"MAIN,STATS"``.
    :param owner: who gave them (a task id), for the error message.
    """
    names = channels.split(",") if isinstance(channels, str) else list(channels)
    if not all(isinstance(name, str) for name in names):
        raise SfiConfigError(f"{owner}: required_channels must be channel names, got {channels!r}")
    names = [name.strip().upper() for name in names if name.strip()]
    unknown = sorted(set(names) - CHANNELS)
    if unknown:
        raise SfiConfigError(
            f"{owner}: unknown channel(s) {', '.join(unknown)} in required_channels; "
            f"valid: {', '.join(sorted(CHANNELS))}"
        )
    return names


def event_type_list(event_types: Sequence[str] | str | None, owner: str) -> list[str]:
    """
    Check event type names (``goal``, ``match_end``, ``stats_update``...); empty means every type.

    :param event_types: the names, a list or one name.
    :param owner: who gave them, for the error message.
    """
    names = [event_types] if isinstance(event_types, str) else list(event_types or [])
    unknown = sorted(str(name) for name in names if name not in EVENT_TYPES)
    if unknown:
        raise SfiConfigError(
            f"{owner}: unknown event type(s) {', '.join(unknown)}; valid: {', '.join(sorted(EVENT_TYPES))}"
        )
    return names


def check_renew_margin(value: object, owner: str) -> datetime.timedelta:
    """
    Check a ``renew_margin``: a non-negative :class:`datetime.timedelta`.

    :param value: the argument.
    :param owner: who gave it, for the error message.
    """
    if not isinstance(value, datetime.timedelta) or value < datetime.timedelta(0):
        raise SfiConfigError(f"{owner}: renew_margin must be a non-negative timedelta, got {value!r}")
    return value


def expiry_of(value: object) -> pendulum.DateTime:
    """
    A token's expiry from an aware or naive (UTC) datetime, an ISO or ``YYYY-MM-DD HH:MM:SS`` string,
    a :class:`~airflow_sfi.protocol.token.WsToken`, or the operator's XCom dict; :class:`SfiConfigError` otherwise.

    :param value: the expiry, or something holding it as ``expires_at``.
    """
    if isinstance(value, Mapping):
        if "expires_at" not in value:
            raise SfiConfigError("expires_at was given a dict without an 'expires_at' key")
        value = value["expires_at"]
    elif isinstance(getattr(value, "expires_at", None), datetime.datetime):
        value = value.expires_at  # type: ignore[attr-defined]
    try:
        return parse_utc(value)
    except ValueError as exc:
        raise SfiConfigError(str(exc)) from None


def expiry_only(value: object) -> object:
    """
    ``value`` with a token dict reduced to its expiry, so that a rendered template field holds no secret.

    :param value: a rendered ``expires_at`` argument.
    """
    if isinstance(value, Mapping):
        return {key: item for key, item in value.items() if key == "expires_at"}
    return value


def normalise_status(value: object) -> str:
    """
    A status as compared: upper case, ``_`` read as a space, runs of spaces as one (``in_play`` is ``IN PLAY``).

    :param value: a status given by a user or found in a match record.
    """
    return " ".join(str(value).replace("_", " ").split()).upper()


def status_list(status: str | Sequence[str], owner: str) -> list[str]:
    """
    The statuses to wait for, normalised, each once; :class:`SfiConfigError` naming ``status`` otherwise.

    The vendor documents only ``ENDED``; any non-empty string is accepted (the sandbox also answers
    ``NOT STARTED`` and ``IN PLAY``).

    :param status: one status or several, e.g. ``"ENDED"`` or ``["IN PLAY", "ENDED"]``.
    :param owner: who gave them (a task id), for the error message.
    """
    names = [status] if isinstance(status, str) else status
    if not isinstance(names, Sequence) or not names or not all(isinstance(name, str) for name in names):
        raise SfiConfigError(
            f"{owner}: status must be a status such as 'ENDED' or a non-empty list of them, got {status!r}"
        )
    statuses = list(dict.fromkeys(normalise_status(name) for name in names))
    if "" in statuses:
        raise SfiConfigError(f"{owner}: status holds an empty status: {status!r}")
    return statuses


def checked_match_id(value: object, owner: str) -> str:
    """
    A match id as sent: a non-empty string, stripped; :class:`SfiConfigError` naming ``match_id`` otherwise.

    :param value: the (rendered) argument.
    :param owner: who gave it (a task id), for the error message.
    """
    if not isinstance(value, str) or not value.strip():
        raise SfiConfigError(f"{owner}: match_id must be a non-empty string, got {value!r}")
    return value.strip()
