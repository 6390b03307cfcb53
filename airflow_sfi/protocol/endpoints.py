"""
The documented REST endpoints as one table, and the check that turns ``(endpoint, params)`` into a query.

Everything here runs before a call is made, so a typo costs no request of the plan's hourly quota: an
unknown endpoint (the nearest is suggested), an unknown or missing parameter, a day that is not a real
``YYYYMMDD`` date, an empty id, an endpoint the auth mode does not offer. Each is an
:class:`~airflow_sfi.exceptions.SfiConfigError` naming what is wrong. No I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import re
from collections.abc import Mapping

from airflow_sfi.exceptions import SfiConfigError

ALL_PLANS = ("BASIC", "PRO", "ULTRA", "MEGA")
PRO_UP = ("PRO", "ULTRA", "MEGA")
ULTRA_UP = ("ULTRA", "MEGA")

PARAMS: Mapping[str, str] = {
    "i": "an id",
    "d": "a day, YYYYMMDD",
    "p": "a page number, from 1",
    "l": "a language, e.g. en_US",
    "f": "the format: json",
    "c": "a championship id (matches/by) or a country (lists)",
    "m": "a manager id",
    "s": "a stadium id",
    "w": "a window: all, 1y or 6m",
    "x": "a team id",
    "y": "the other team's id",
}
"""Every parameter the vendor documents for the data endpoints, and what its value is."""

ID_PARAMS = frozenset({"i", "c", "m", "s", "x", "y"})
"""Ids (and the lists' country): non-empty strings. They look like 16 hex digits; nothing promises it."""
WINDOWS = ("all", "1y", "6m")
DAY = re.compile(r"\d{8}")


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """
    One documented endpoint.

    :param path: the path after the API's base (and after ``/v1`` in direct mode), with its trailing slash.
    :param allowed: the parameters it takes (the credential aside); ``p`` where it is paginated.
    :param required: the parameters it cannot do without.
    :param paginated: whether its answers come in pages (``p``, and ``pagination`` in the envelope).
    :param plans: the plans whose tokens reach it.
    :param direct_only: offered by the direct API only, not through RapidAPI.
    :param secrets: fields of its result items that are secrets (registered with Airflow's masker).
    """

    path: str
    allowed: frozenset[str] = frozenset()
    required: frozenset[str] = frozenset()
    paginated: bool = False
    plans: tuple[str, ...] = PRO_UP
    direct_only: bool = False
    secrets: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The path without slashes, as the hook takes it: ``matches/view/basic``."""
        return self.path.strip("/")

    def query(self, params: Mapping[str, object]) -> dict[str, str]:
        """
        ``params`` checked and turned into query parameters; a None value counts as not given.

        :param params: the parameters by their vendor names (``i``, ``d``, ``l``...): strings, a
            :class:`datetime.date` for ``d``, an int for ``p``.
        :raises SfiConfigError: naming the first parameter that is unknown, missing or wrong.
        """
        query: dict[str, str] = {}
        for name, value in params.items():
            if value is None:
                continue
            if name not in self.allowed:
                raise _error(f"{self.name} takes no parameter {name!r}; {self._takes()}")
            query[name] = _value(self.name, name, value)
        missing = sorted(self.required - query.keys())
        if missing:
            raise _error(f"{self.name} needs {_names(missing)}; {self._takes()}")
        return query

    def check_mode(self, auth_type: str) -> None:
        """
        Raise :class:`SfiConfigError` when the auth mode does not offer this endpoint.

        :param auth_type: a key of :data:`airflow_sfi.config.AUTH_MODES`.
        """
        if self.direct_only and auth_type != "direct":
            raise _error(
                f"{self.name} is offered by the direct API only, not in {auth_type} mode: "
                "use a connection with the API token (auth_type direct)"
            )

    def _takes(self) -> str:
        if not self.allowed:
            return "it takes none"
        return "it takes " + ", ".join(
            f"{name} ({PARAMS[name]}{', required' if name in self.required else ''})" for name in sorted(self.allowed)
        )


def _endpoint(
    path: str,
    allowed: str = "",
    required: str = "",
    *,
    paginated: bool = False,
    plans: tuple[str, ...] = PRO_UP,
    direct_only: bool = False,
    secrets: tuple[str, ...] = (),
) -> Endpoint:
    allowed_set, required_set = frozenset(allowed.split()), frozenset(required.split())
    return Endpoint(path, allowed_set, required_set, paginated, plans, direct_only, secrets)


_LIST = "p c l f"
_TABLE = (
    _endpoint("ws/new/", secrets=("token", "server")),
    _endpoint("ws/renew/", secrets=("token", "server")),
    _endpoint("token/status/", plans=ALL_PLANS, direct_only=True),
    _endpoint("matches/view/basic/", "i l", "i"),
    _endpoint("matches/view/full/", "i l", "i", plans=ULTRA_UP),
    _endpoint("matches/view/progressive/", "i l f", "i", plans=ULTRA_UP),
    _endpoint("matches/day/basic/", "d p l f", "d", paginated=True),
    _endpoint("matches/day/full/", "d p l f", "d", paginated=True, plans=ULTRA_UP),
    _endpoint("matches/by/basic/", "c m s p l", paginated=True),
    _endpoint("matches/by/full/", "c m s p l", paginated=True, plans=ULTRA_UP),
    _endpoint("matches/odds/", "i", "i", plans=ULTRA_UP),
    _endpoint("live/basic/", "l f"),
    _endpoint("live/full/", "l f", plans=ULTRA_UP),
    *(
        _endpoint(f"{kind}/list/", _LIST, paginated=True, plans=ALL_PLANS)
        for kind in (
            "countries",
            "languages",
            "stadiums",
            "managers",
            "referees",
            "players",
            "teams",
            "championships",
        )
    ),
    *(
        _endpoint(f"{kind}/view/", "i l", "i")
        for kind in ("stadiums", "managers", "referees", "players", "teams", "championships")
    ),
    _endpoint("teams/history/", "i w", "i"),
    _endpoint("teams/versus/", "x y w", "x y"),
)

ENDPOINTS: Mapping[str, Endpoint] = {endpoint.name: endpoint for endpoint in _TABLE}
"""Every documented endpoint, by :attr:`Endpoint.name`."""


def find(name: str) -> Endpoint:
    """
    The endpoint called ``name`` (``matches/view/basic``; slashes around it do not matter).

    :raises SfiConfigError: for an unknown name, suggesting the nearest.
    """
    endpoint = ENDPOINTS.get(name.strip("/")) if isinstance(name, str) else None
    if endpoint is not None:
        return endpoint
    text = name.strip("/") if isinstance(name, str) else ""
    nearest = difflib.get_close_matches(text.removeprefix("v1/"), ENDPOINTS, n=1, cutoff=0.5)
    hint = f"; did you mean {nearest[0]!r}?" if nearest else f"; the documented ones: {', '.join(ENDPOINTS)}"
    shown = repr(text[:60]) if isinstance(name, str) else f"of type {type(name).__name__}"
    raise _error(f"no documented endpoint {shown}{hint}")


def check(name: str, params: Mapping[str, object], *, auth_type: str) -> tuple[Endpoint, dict[str, str]]:
    """
    The endpoint called ``name`` and its query for ``params``, or an :class:`SfiConfigError` before any call.

    :param name: e.g. ``matches/day/basic``.
    :param params: the vendor's parameters (see :meth:`Endpoint.query`).
    :param auth_type: the connection's auth mode.
    """
    endpoint = find(name)
    query = endpoint.query(params)
    endpoint.check_mode(auth_type)
    return endpoint, query


def day(value: object) -> str:
    """
    A day as the API takes it, ``YYYYMMDD``: from a :class:`datetime.date`, or a string already so.

    An aware datetime is taken in UTC, the API's time zone.

    :raises SfiConfigError: for anything else, or a string that is not a real date (``20240230``).
    """
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.strftime("%Y%m%d")
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, str) and DAY.fullmatch(value):
        try:
            datetime.date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            raise _error(f"day {value!r} is not a real date (YYYYMMDD)") from None
        return value
    raise _error(f"a day must be a date or a 'YYYYMMDD' string, got {_shown(value)}")


def _value(endpoint: str, name: str, value: object) -> str:
    where = f"{endpoint}: parameter {name!r}"
    if name == "d":
        try:
            return day(value)
        except SfiConfigError as exc:
            raise _error(f"{where}: {exc.problem}") from None
    if name == "p":
        if isinstance(value, str) and value.isdecimal():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise _error(f"{where} must be a page number from 1, got {_shown(value)}")
        return str(value)
    if not isinstance(value, str):
        kind = "an id: a string" if name in ID_PARAMS else "a string"
        raise _error(f"{where} must be {kind}, got {_shown(value)}")
    if not value.strip():
        raise _error(f"{where} is empty")
    if name == "w" and value not in WINDOWS:
        raise _error(f"{where} must be one of {', '.join(WINDOWS)}, got {value[:20]!r}")
    if name == "f" and value != "json":
        raise _error(f"{where}: the hook reads JSON answers only (f='json'), got {value[:20]!r}")
    return value


def _shown(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{type(value).__name__} {value!r}"
    if isinstance(value, str):
        return repr(value[:30])
    return type(value).__name__


def _names(names: list[str]) -> str:
    return ", ".join(f"{name} ({PARAMS[name]})" for name in names)


def _error(problem: str) -> SfiConfigError:
    return SfiConfigError(problem, problem=problem)
