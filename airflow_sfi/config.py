"""The Airflow connection, parsed and checked once into a frozen :class:`SfiConfig`."""

from __future__ import annotations

import dataclasses
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.sdk.log import mask_secret

from airflow_sfi import defaults
from airflow_sfi.exceptions import SfiConfigError

if TYPE_CHECKING:
    from airflow.sdk import Connection


@dataclasses.dataclass(frozen=True)
class AuthMode:
    """How one auth mode reaches the API: its default base URL, its path prefix and its credential."""

    default_base_url: str
    path_prefix: str
    credential: Callable[[SfiConfig], tuple[dict[str, str], dict[str, str]]] = dataclasses.field(repr=False)
    """Returns (query parameters, headers) carrying the secret."""
    secret_name: str = "API token"  # noqa: S105 - a label, not a secret


AUTH_MODES: Mapping[str, AuthMode] = {
    "direct": AuthMode(
        default_base_url="https://api.soccerfootball.info",
        path_prefix="/v1",
        credential=lambda cfg: ({"t": cfg.secret}, {}),
    ),
    # RapidAPI drops the /v1 prefix of every path.
    "rapidapi": AuthMode(
        default_base_url=f"https://{defaults.RAPIDAPI_HOST}",
        path_prefix="",
        credential=lambda cfg: ({}, {"X-RapidAPI-Key": cfg.secret, "X-RapidAPI-Host": cfg.rapidapi_host}),
        secret_name="RapidAPI key",  # noqa: S106 - a label, not a secret
    ),
}


@dataclasses.dataclass(frozen=True)
class SfiConfig:
    """
    The connection, parsed and checked once.

    :param auth_type: a key of :data:`AUTH_MODES`.
    :param secret: the API token or RapidAPI key (never in the repr).
    :param base_url: scheme, host, port and path prefix of a proxy or sandbox, without a trailing slash.
    :param rapidapi_host: the ``X-RapidAPI-Host`` header.
    :param timeout: connect and read timeout of each call, in seconds.
    :param max_attempts: attempts per call, retries included.
    :param max_retry_wait: the longest ``Retry-After`` of a 429 that a call sleeps out, in seconds.
    """

    auth_type: str
    secret: str = dataclasses.field(repr=False)
    base_url: str
    rapidapi_host: str = defaults.RAPIDAPI_HOST
    timeout: float = defaults.TIMEOUT
    max_attempts: int = defaults.MAX_ATTEMPTS
    max_retry_wait: float = defaults.MAX_RETRY_WAIT

    @property
    def mode(self) -> AuthMode:
        return AUTH_MODES[self.auth_type]

    def url(self, endpoint: str) -> str:
        """The full URL of ``endpoint`` (e.g. ``ws/new/``), without the credential."""
        return f"{self.base_url}{self.mode.path_prefix}/{endpoint}"

    @classmethod
    def from_connection(cls, conn: Connection) -> SfiConfig:
        """Build from an Airflow connection; raise :class:`SfiConfigError` naming the bad field."""
        extra = conn.extra_dejson
        auth_type = str(extra.get("auth_type") or "direct").strip().lower()
        if auth_type not in AUTH_MODES:
            raise _invalid(conn, f"auth_type {auth_type[:30]!r} is not one of {sorted(AUTH_MODES)}")
        mode = AUTH_MODES[auth_type]
        secret = (conn.password or "").strip()
        if not secret:
            raise _invalid(conn, f"no password: put the {mode.secret_name} there")
        # As it is sent in a query string too (urllib3 logs request lines at DEBUG).
        for form in {secret, urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}:
            mask_secret(form)
        return cls(
            auth_type=auth_type,
            secret=secret,
            base_url=_base_url(conn, mode.default_base_url),
            rapidapi_host=str(extra.get("rapidapi_host") or defaults.RAPIDAPI_HOST).strip(),
            timeout=_number(conn, "timeout", defaults.TIMEOUT, minimum=0.001),
            max_attempts=int(_number(conn, "max_attempts", defaults.MAX_ATTEMPTS, minimum=1)),
            max_retry_wait=_number(conn, "max_retry_wait", defaults.MAX_RETRY_WAIT, minimum=0),
        )


def _invalid(conn: Connection, problem: str) -> SfiConfigError:
    return SfiConfigError(f"connection {conn.conn_id!r}: {problem}", problem=problem)


def _base_url(conn: Connection, default: str) -> str:
    host = (conn.host or "").strip()
    if not host:
        return default
    if "://" not in host:
        host = f"{(conn.schema or 'https').strip()}://{host}"
    parts = urllib.parse.urlsplit(host)
    try:
        # Airflow's UI sends port 0 for an empty Port field: 0 means "none".
        port = parts.port or conn.port or None
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or port == -1 or parts.query:
        raise _invalid(
            conn,
            f"host {parts.hostname or host[:60]!r} is not a valid http(s) host or base URL "
            "(expected e.g. 'api.example.com' or 'http://127.0.0.1:8080')",
        )
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return urllib.parse.urlunsplit(
        (parts.scheme, f"{netloc}:{port}" if port else netloc, parts.path.rstrip("/"), "", "")
    )


def _number(conn: Connection, name: str, default: float, *, minimum: float) -> float:
    value: Any = conn.extra_dejson.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not number >= minimum or number == float("inf"):
        raise _invalid(conn, f"extra {name!r} must be a number of at least {minimum:g}, got {str(value)[:30]!r}")
    return number
