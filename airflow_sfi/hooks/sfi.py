"""SfiHook: the REST API over HTTP, with retries and typed errors, through an Airflow connection."""

from __future__ import annotations

import functools
import http.client
import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping

import pendulum
import requests
import tenacity
import urllib3.exceptions
from airflow.providers.common.compat.sdk import BaseHook, redact
from airflow.sdk.log import mask_secret

from airflow_sfi import defaults
from airflow_sfi.config import SfiConfig
from airflow_sfi.exceptions import (
    SfiApiError,
    SfiConfigError,
    SfiError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
)
from airflow_sfi.protocol.envelope import VENDOR, Envelope, RateLimit, parse_envelope
from airflow_sfi.protocol.token import WsToken

MAX_BODY_BYTES = 1 << 20
# Backoff between retries when the API did not say how long to wait: 0.5 s doubling up to 8 s, plus jitter.
RETRY_BACKOFF = tenacity.wait_exponential(multiplier=0.5, max=8.0) + tenacity.wait_random(0, 0.5)


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
    default_conn_name = defaults.CONN_ID
    conn_type = defaults.CONN_TYPE
    hook_name = "Soccer Football Info"
    # How retries wait; replaceable in tests.
    retry_sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(self, sfi_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.sfi_conn_id = sfi_conn_id
        self.last_rate_limit: RateLimit | None = None
        self._masked_token: str | None = None

    @functools.cached_property
    def config(self) -> SfiConfig:
        """The connection, read and checked on first use."""
        return SfiConfig.from_connection(self.get_connection(self.sfi_conn_id))

    @functools.cached_property
    def session(self) -> requests.Session:
        """One session per hook, so calls reuse the connection."""
        _UrlLogRedactor.install()
        session = requests.Session()
        session.headers["Accept"] = "application/json"
        return session

    def get_ws_token(self) -> WsToken:
        """Call ``ws/new``: a new WebSocket token, or the active one again (``is_new`` False)."""
        return self._token("ws/new/")

    def renew_ws_token(self) -> WsToken:
        """
        Call ``ws/renew`` to extend the active token.

        The vendor names this endpoint without documenting it: it is assumed to take the same
        auth and answer the same envelope as ``ws/new``; any other answer is an :class:`SfiResponseError`.
        """
        return self._token("ws/renew/")

    def test_connection(self) -> tuple[bool, str]:
        """Make one ``ws/new`` call (it reuses an active token) and report the plan's channels."""
        try:
            token = self.get_ws_token()
        except SfiConfigError as exc:
            # The UI tests a form under a temporary connection id: name the field, not the id.
            return False, f"Invalid connection: {exc.problem}"
        except SfiError as exc:
            return False, str(exc)
        return True, (
            f"Connected ({self.config.auth_type}): channels {', '.join(token.allowed_channels) or 'none'}, "
            f"token expires at {token.expires_at.isoformat()}"
        )

    def _token(self, endpoint: str) -> WsToken:
        envelope = self._call(endpoint)
        token = WsToken.from_result(envelope.result, envelope.http_status)
        if token.token != self._masked_token:  # the same active token comes back until it expires
            mask_secret(token.token)
            mask_secret(token.server)
            self._masked_token = token.token
        return token

    def _call(self, endpoint: str) -> Envelope:
        config = self.config
        params, headers = config.mode.credential(config)
        envelope: Envelope = self._retrying(self._call_once, config.url(endpoint), params, headers)
        return envelope

    @functools.cached_property
    def _retrying(self) -> tenacity.Retrying:
        max_retry_wait = self.config.max_retry_wait
        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.config.max_attempts),
            retry=tenacity.retry_if_exception(lambda exc: retry_wait(exc, max_retry_wait) is not None),
            wait=_wait,
            sleep=lambda seconds: type(self).retry_sleep(seconds),
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

    def _call_once(self, url: str, params: dict[str, str], headers: dict[str, str]) -> Envelope:
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
            raise SfiTransportError(f"{VENDOR} at {_netloc(url)}: {failure}")
        self.last_rate_limit = RateLimit.from_headers(response.headers)
        return _parse(response.status_code, body, response.headers, config.secret)


def _parse(status: int, body: bytes, headers: Mapping[str, str], secret: str) -> Envelope:
    try:
        return parse_envelope(status, body, headers, scrub=lambda text: text.replace(secret, "***"))
    except SfiError:
        raise
    except Exception as exc:  # a parser bug or a body no table foresaw must still be an SfiError
        # Chained for its traceback; the message names only the exception's type.
        raise SfiResponseError(
            f"{VENDOR} answered HTTP {status} with a body that could not be read ({type(exc).__name__})"
        ) from exc


def retry_wait(exc: BaseException, max_retry_wait: float) -> float | None:
    """
    Seconds the API asked to wait before a retry (0 for "back off as usual"), or None: do not retry.

    Only the idempotent GET is retried, and only on transport failures, 5xx and 429; a 429 whose
    wait exceeds ``max_retry_wait`` is raised so the task can wait without holding a worker.

    :param exc: what the last attempt raised.
    :param max_retry_wait: the longest wait, in seconds, worth sleeping out.
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
    asked = retry_wait(exc, float("inf")) if exc else None
    return asked if asked else RETRY_BACKOFF(state)


def _read_capped(response: requests.Response) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SfiResponseError(
                f"{VENDOR} answered with a body over {MAX_BODY_BYTES} bytes", http_status=response.status_code
            )
    return b"".join(chunks)


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


class _UrlLogRedactor(logging.Filter):
    """Runs the records of urllib3's loggers, which quote request URLs at DEBUG, through Airflow's masker."""

    LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry")

    @classmethod
    def install(cls) -> None:
        """Add the filter to urllib3's loggers, once per process."""
        for name in cls.LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, cls) for f in logger.filters):
                logger.addFilter(cls())

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the handler's to report; never break the request
            return True
        redacted = str(redact(message))
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
