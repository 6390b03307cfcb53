"""SfiHook: the ``ws/new`` and ``ws/renew`` endpoints through an Airflow connection, in either auth mode."""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import http.client
import json
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pendulum
import requests
import tenacity
import urllib3.exceptions
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from requests.structures import CaseInsensitiveDict

from airflow_sfi.exceptions import (
    SfiApiError,
    SfiAuthError,
    SfiConfigError,
    SfiError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
)
from airflow_sfi.token import WsToken

if TYPE_CHECKING:
    from airflow.sdk import Connection

DEFAULT_RAPIDAPI_HOST = "soccer-football-info.p.rapidapi.com"
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_MAX_RETRY_WAIT = 60.0
MAX_BODY_BYTES = 1 << 20
_ISSUED_BY = "SFI API"


@dataclasses.dataclass(frozen=True)
class AuthMode:
    """How one auth mode reaches the API: its default base URL, its path prefix and its credential."""

    default_base_url: str
    path_prefix: str
    credential: Callable[[SfiConfig], tuple[dict[str, str], dict[str, str]]]
    """Returns (query parameters, headers) carrying the secret."""


AUTH_MODES: Mapping[str, AuthMode] = {
    "direct": AuthMode(
        default_base_url="https://api.soccerfootball.info",
        path_prefix="/v1",
        credential=lambda cfg: ({"t": cfg.secret}, {}),
    ),
    # RapidAPI drops the /v1 prefix of every path.
    "rapidapi": AuthMode(
        default_base_url=f"https://{DEFAULT_RAPIDAPI_HOST}",
        path_prefix="",
        credential=lambda cfg: ({}, {"X-RapidAPI-Key": cfg.secret, "X-RapidAPI-Host": cfg.rapidapi_host}),
    ),
}


@dataclasses.dataclass(frozen=True, repr=False)
class SfiConfig:
    """The connection, parsed and checked once."""

    auth_type: str
    secret: str
    base_url: str
    rapidapi_host: str = DEFAULT_RAPIDAPI_HOST
    timeout: float = DEFAULT_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT

    def __repr__(self) -> str:
        return (
            f"SfiConfig(auth_type={self.auth_type!r}, base_url={self.base_url!r}, "
            f"rapidapi_host={self.rapidapi_host!r}, timeout={self.timeout}, secret='***')"
        )

    @property
    def mode(self) -> AuthMode:
        return AUTH_MODES[self.auth_type]

    @classmethod
    def from_connection(cls, conn: Connection) -> SfiConfig:
        """Build from an Airflow connection; raise :class:`SfiConfigError` naming the bad field."""
        conn_id = conn.conn_id
        extra = conn.extra_dejson
        auth_type = str(extra.get("auth_type") or "direct").strip().lower()
        if auth_type not in AUTH_MODES:
            raise SfiConfigError(
                f"connection {conn_id!r}: auth_type {auth_type[:30]!r} is not one of {sorted(AUTH_MODES)}"
            )
        secret = (conn.password or "").strip()
        if not secret:
            what = "RapidAPI key" if auth_type == "rapidapi" else "API token"
            raise SfiConfigError(f"connection {conn_id!r} has no password: put the {what} there")
        mask_secret(secret)
        return cls(
            auth_type=auth_type,
            secret=secret,
            base_url=_base_url(conn, AUTH_MODES[auth_type].default_base_url),
            rapidapi_host=str(extra.get("rapidapi_host") or DEFAULT_RAPIDAPI_HOST).strip(),
            timeout=_number(extra, "timeout", DEFAULT_TIMEOUT, conn_id, minimum=0.001),
            max_attempts=int(_number(extra, "max_attempts", DEFAULT_MAX_ATTEMPTS, conn_id, minimum=1)),
            max_retry_wait=_number(extra, "max_retry_wait", DEFAULT_MAX_RETRY_WAIT, conn_id, minimum=0),
        )


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """What the API's rate-limit headers said (any of it may be missing)."""

    limit: int | None
    remaining: int | None
    reset_at: pendulum.DateTime | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        if not isinstance(headers, CaseInsensitiveDict):
            headers = CaseInsensitiveDict(headers)

        def first_int(*names: str) -> int | None:
            for name in names:
                value = headers.get(name)
                if value is not None and value.strip().isdigit():
                    return int(value)
            return None

        reset = first_int("X-Rate-Limit-Reset", "x-ratelimit-requests-reset", "x-ratelimit-reset")
        reset_at = None
        if reset is not None:
            # The vendor documents Reset both as epoch seconds and as seconds left in the window.
            reset_at = (
                pendulum.from_timestamp(reset) if reset > 1_000_000_000 else pendulum.now("UTC").add(seconds=reset)
            )
        return cls(
            limit=first_int("X-Rate-Limit-Limit", "x-ratelimit-requests-limit", "x-ratelimit-limit"),
            remaining=first_int("X-Rate-Limit-Remaining", "x-ratelimit-requests-remaining", "x-ratelimit-remaining"),
            reset_at=reset_at,
        )


class SfiHook(BaseHook):
    """
    Get WebSocket tokens from the Soccer Football Info API.

    The connection's password holds the API token (``auth_type`` ``direct``, the default) or the
    RapidAPI key (``auth_type`` ``rapidapi``). Extras: ``rapidapi_host``, ``timeout`` (seconds),
    ``max_attempts`` and ``max_retry_wait`` (seconds). The connection's host (with schema and port)
    replaces the API's base URL, e.g. to reach the sandbox or a proxy.

    :param sfi_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "sfi_conn_id"
    default_conn_name = "sfi_default"
    conn_type = "sfi"
    hook_name = "Soccer Football Info"

    def __init__(self, sfi_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.sfi_conn_id = sfi_conn_id
        self.last_rate_limit: RateLimit | None = None
        self._masked_token: str | None = None

    def __repr__(self) -> str:
        return f"SfiHook(sfi_conn_id={self.sfi_conn_id!r})"

    @functools.cached_property
    def config(self) -> SfiConfig:
        """The connection, read and checked on first use."""
        return SfiConfig.from_connection(self.get_connection(self.sfi_conn_id))

    @functools.cached_property
    def session(self) -> requests.Session:
        """One session per hook, so calls reuse the connection."""
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        return session

    def get_ws_token(self) -> WsToken:
        """Call ``ws/new``: a new WebSocket token, or the active one again (``is_new`` False)."""
        return self._call("ws/new/")

    def renew_ws_token(self) -> WsToken:
        """
        Call ``ws/renew`` to extend the active token.

        The vendor names this endpoint without documenting it: it is assumed to take the same
        auth and answer the same envelope as ``ws/new``; any other answer is an :class:`SfiResponseError`.
        """
        return self._call("ws/renew/")

    def test_connection(self) -> tuple[bool, str]:
        """Make one ``ws/new`` call (it reuses an active token) and report the plan's channels."""
        try:
            token = self.get_ws_token()
        except SfiError as exc:
            return False, str(exc)
        return True, (
            f"Connected ({self.config.auth_type}): channels {', '.join(token.allowed_channels) or 'none'}, "
            f"token expires at {token.expires_at.isoformat()}"
        )

    def _call(self, endpoint: str) -> WsToken:
        config = self.config
        url = f"{config.base_url}{config.mode.path_prefix}/{endpoint}"
        params, headers = config.mode.credential(config)
        return self._retrying(self._call_once, url, params, headers)

    @functools.cached_property
    def _retrying(self) -> tenacity.Retrying:
        max_retry_wait = self.config.max_retry_wait
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.max_attempts),
            retry=tenacity.retry_if_exception(lambda exc: _retry_wait(exc, max_retry_wait) is not None),
            wait=_wait,
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self.log.warning(
            "%s; retrying in %.1f s (attempt %d of %d)",
            state.outcome.exception() if state.outcome else "failed",
            state.upcoming_sleep,
            state.attempt_number + 1,
            self.config.max_attempts,
        )

    def _call_once(self, url: str, params: dict[str, str], headers: dict[str, str]) -> WsToken:
        config = self.config
        failure = None
        try:
            with self.session.get(url, params=params, headers=headers, timeout=config.timeout, stream=True) as response:
                body = _read_capped(response)
        except requests.RequestException as exc:
            failure = _describe(exc, config.timeout)
        if failure is not None:
            # Raised outside the except block: requests' own error quotes the URL with its ?t= query,
            # so it must not travel along as __context__ either.
            raise SfiTransportError(f"{_ISSUED_BY} at {_netloc(url)}: {failure}")
        self.last_rate_limit = RateLimit.from_headers(response.headers)
        token = parse_ws_token_response(
            response.status_code, body, response.headers, scrub=lambda text: text.replace(config.secret, "***")
        )
        if token.token != self._masked_token:  # the same active token comes back until it expires
            mask_secret(token.token)
            mask_secret(token.server)
            self._masked_token = token.token
        return token


def parse_ws_token_response(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    scrub: Callable[[str], str] = lambda text: text,
) -> WsToken:
    """
    Turn one HTTP answer of ``ws/new`` or ``ws/renew`` into a :class:`WsToken` or an :class:`SfiError`.

    :param http_status: the HTTP status code.
    :param body: the raw body.
    :param headers: the response headers (for 429's ``Retry-After`` and rate-limit reset).
    :param scrub: applied to any text from the body before it goes into an error message.
    """
    headers = headers or {}
    try:
        payload: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        kind = _describe_body(body)
        if http_status >= 400:
            raise _status_error(http_status, headers, note=f"and {kind}") from None
        raise SfiResponseError(
            f"{_ISSUED_BY} answered HTTP {http_status} with {kind}", http_status=http_status
        ) from None

    if isinstance(payload, dict) and "message" in payload and "status" not in payload:
        # RapidAPI's own proxy answers {"message": ...} instead of the envelope.
        message = scrub(str(payload["message"]))[:200]
        if http_status >= 400:
            raise _status_error(http_status, headers, vendor_message=message)
        raise SfiResponseError(f"{_ISSUED_BY} answered HTTP {http_status} with a message and no data: {message}")

    if not isinstance(payload, dict):
        raise SfiResponseError(
            f"{_ISSUED_BY} answered HTTP {http_status} with JSON that is not an envelope object "
            f"(got {type(payload).__name__})",
            http_status=http_status,
        )
    api_status = payload.get("status")
    errors = payload.get("errors", [])
    if not isinstance(api_status, int) or isinstance(api_status, bool):
        if http_status >= 400:
            raise _status_error(http_status, headers, note="and no envelope status")
        raise SfiResponseError(f"{_ISSUED_BY} envelope has no integer 'status'", http_status=http_status)
    if not isinstance(errors, list):
        raise SfiResponseError(f"{_ISSUED_BY} envelope 'errors' must be a list", http_status=http_status)

    if http_status >= 400 or api_status != 200 or errors:
        code, vendor_message = _first_error(errors, scrub)
        raise _status_error(
            http_status if http_status >= 400 else api_status,
            headers,
            http_status=http_status,
            api_status=api_status,
            code=code,
            vendor_message=vendor_message,
        )

    result = payload.get("result")
    if not isinstance(result, list):
        raise SfiResponseError(f"{_ISSUED_BY} envelope 'result' must be a list", http_status=http_status)
    if len(result) != 1:
        raise SfiResponseError(
            f"{_ISSUED_BY} envelope 'result' must hold exactly one token, got {len(result)}", http_status=http_status
        )
    token = WsToken.from_dict(result[0])
    if token.seconds_left() <= 0:
        raise SfiResponseError(
            f"{_ISSUED_BY} returned a token that expired at {token.expires_at.isoformat()} "
            "(is this machine's clock right?)",
            http_status=http_status,
        )
    return token


def _status_error(
    status: int,
    headers: Mapping[str, str],
    *,
    http_status: int | None = None,
    api_status: int | None = None,
    code: int | None = None,
    vendor_message: str | None = None,
    note: str | None = None,
) -> SfiError:
    """The typed error for ``status`` (HTTP, or the envelope's under HTTP 200); ``note`` says what the body was."""
    http_status = status if http_status is None else http_status
    text = vendor_message or note
    detail = f"HTTP {http_status}" + (f", status {api_status}" if api_status not in (None, http_status) else "")
    detail += (f", code {code}" if code is not None else "") + (f": {text}" if text else "")
    fields: dict[str, Any] = {
        "http_status": http_status,
        "api_status": api_status,
        "code": code,
        "vendor_message": vendor_message,
    }
    if status in (401, 403):
        return SfiAuthError(f"{_ISSUED_BY} refused the credential ({detail})", **fields)
    if status == 429:
        headers = CaseInsensitiveDict(headers)
        retry_after = _retry_after(headers)
        reset_at = RateLimit.from_headers(headers).reset_at
        if reset_at is None and retry_after is not None:
            reset_at = pendulum.now("UTC").add(seconds=retry_after)
        when = f"; retry at {reset_at.isoformat()}" if reset_at else ""
        return SfiRateLimitError(
            f"{_ISSUED_BY} rate limit reached ({detail}){when}", retry_after=retry_after, reset_at=reset_at, **fields
        )
    return SfiApiError(f"{_ISSUED_BY} error ({detail})", **fields)


def _first_error(errors: list[Any], scrub: Callable[[str], str]) -> tuple[int | None, str | None]:
    """The vendor's errors are documented both as ``{"code", "message"}`` objects and as strings."""
    if not errors:
        return None, None
    first = errors[0]
    if isinstance(first, dict):
        code = first.get("code")
        message = first.get("message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            scrub(str(message))[:200] if message is not None else None,
        )
    return None, scrub(str(first))[:200]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (pendulum.instance(moment) - pendulum.now("UTC")).total_seconds())


_backoff = tenacity.wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5)


def _retry_wait(exc: BaseException, max_retry_wait: float) -> float | None:
    """
    Seconds the API asked to wait before a retry (0 for "back off as usual"), or None: do not retry.

    Only the idempotent GET is retried, and only on transport failures, 5xx and 429; a 429 whose
    wait exceeds ``max_retry_wait`` is raised so the task can wait without holding a worker.
    """
    if isinstance(exc, SfiRateLimitError):
        wait = exc.retry_after
        if wait is None and exc.reset_at is not None:
            wait = max(0.0, (exc.reset_at - pendulum.now("UTC")).total_seconds())
        if wait is None:
            return 0.0
        return wait if wait <= max_retry_wait else None
    if isinstance(exc, SfiTransportError) or (isinstance(exc, SfiApiError) and (exc.http_status or 0) >= 500):
        return 0.0
    return None


def _wait(state: tenacity.RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    asked = _retry_wait(exc, float("inf")) if exc else None
    return asked if asked else _backoff(state)


def _read_capped(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SfiResponseError(
                f"{_ISSUED_BY} answered with a body over {MAX_BODY_BYTES} bytes", http_status=response.status_code
            )
    return b"".join(chunks)


def _describe_body(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if not head:
        return "an empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page instead of JSON"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not UTF-8"
    return "a body that is not JSON"


def _describe(exc: requests.RequestException, timeout: float) -> str:
    """Name the cause of a transport failure without quoting the request URL."""
    if isinstance(exc, requests.ConnectTimeout):
        return f"connect timed out after {timeout:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"no response within the read timeout of {timeout:g} s"
    seen: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and cause not in seen:
        seen.append(cause)
        cause = getattr(cause, "reason", None) or cause.__cause__ or cause.__context__
    for error in seen:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(error, TimeoutError):
            return f"timed out after {timeout:g} s"
        if isinstance(error, urllib3.exceptions.NameResolutionError):
            return "host name could not be resolved"
        if isinstance(error, (urllib3.exceptions.ProtocolError, http.client.HTTPException)):
            return "connection closed without a complete response"
    return f"request failed ({type(seen[-1]).__name__})"


def _netloc(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _base_url(conn: Connection, default: str) -> str:
    host = (conn.host or "").strip()
    if not host:
        return default
    if "://" not in host:
        host = f"{(conn.schema or 'https').strip()}://{host}"
    parts = urllib.parse.urlsplit(host)
    try:
        port = parts.port or conn.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or port == -1 or parts.query:
        raise SfiConfigError(
            f"connection {conn.conn_id!r}: host {parts.hostname or host[:60]!r} is not a valid http(s) "
            "host or base URL (expected e.g. 'api.example.com' or 'http://127.0.0.1:8080')"
        )
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return urllib.parse.urlunsplit(
        (parts.scheme, f"{netloc}:{port}" if port else netloc, parts.path.rstrip("/"), "", "")
    )


def _number(extra: Mapping[str, Any], name: str, default: float, conn_id: str, *, minimum: float) -> float:
    value = extra.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number >= minimum or number == float("inf"):
        raise SfiConfigError(
            f"connection {conn_id!r}: extra {name!r} must be a number of at least {minimum:g}, got {str(value)[:30]!r}"
        )
    return number
