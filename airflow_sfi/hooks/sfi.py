"""
SfiHook and SfiAsyncHook: the REST API over HTTP, with retries and typed errors, through an Airflow connection.

The two hooks share everything but the transport: the connection (:class:`SfiConfig`), the endpoint
checks (:mod:`airflow_sfi.protocol.endpoints`), the envelope's parser, the retry policy
(:func:`retry_wait`) and the pagination rule (:func:`next_page`). ``SfiHook`` calls through a
requests Session, ``SfiAsyncHook`` (for triggers) through an httpx AsyncClient.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import functools
import http.client
import logging
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import httpx
import pendulum
import requests
import tenacity
import urllib3.exceptions
from airflow.providers.common.compat.sdk import BaseHook, redact
from airflow.sdk.log import mask_secret

from airflow_sfi import defaults
from airflow_sfi.aio import in_thread
from airflow_sfi.config import SfiConfig
from airflow_sfi.exceptions import (
    SfiApiError,
    SfiConfigError,
    SfiError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
)
from airflow_sfi.protocol import endpoints
from airflow_sfi.protocol.endpoints import Endpoint
from airflow_sfi.protocol.envelope import VENDOR, Envelope, RateLimit, parse_envelope, response_error
from airflow_sfi.protocol.token import WsToken

MAX_BODY_BYTES = 1 << 20
# Backoff between retries when the API did not say how long to wait: 0.5 s doubling up to 8 s, plus jitter.
RETRY_BACKOFF = tenacity.wait_exponential(multiplier=0.5, max=8.0) + tenacity.wait_random(0, 0.5)
Item = dict[str, Any]
"""One result item of the API, as it answered it."""


class SfiHook(BaseHook):
    """
    Call the Soccer Football Info API: WebSocket tokens, and every documented REST endpoint.

    The connection's password holds the API token (``auth_type`` ``direct``, the default) or the
    RapidAPI key (``auth_type`` ``rapidapi``). Extras: ``rapidapi_host``, ``timeout`` (seconds),
    ``max_attempts`` and ``max_retry_wait`` (seconds). The connection's host (with schema and port)
    replaces the API's base URL, e.g. to reach the sandbox or a proxy.

    Every call is checked against the documented endpoints before it is made, retried on transport
    failures, 5xx and short 429s, and fails with a typed :class:`~airflow_sfi.exceptions.SfiError`.
    :attr:`last_rate_limit` holds what the latest answer's rate-limit headers said.

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
        self._masked: set[str] = set()

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

    def get(self, endpoint: str, /, **params: object) -> Envelope:
        """
        Call a documented endpoint once (retries aside) and return its checked envelope.

        ``hook.get("matches/view/basic", i=match_id)``; the parameters keep the vendor's names (``i``,
        ``d``, ``p``, ``l``...). The endpoint and parameters are checked before the call: a mistake is an
        :class:`~airflow_sfi.exceptions.SfiConfigError` and costs no request.

        :param endpoint: a key of :data:`airflow_sfi.protocol.endpoints.ENDPOINTS`, e.g. ``live/basic``.
        :param params: the vendor's parameters; a None value counts as not given.
        """
        target, query = self._checked(endpoint, params)
        return self._call(target, query)

    def pages(self, endpoint: str, /, **params: object) -> Iterator[Envelope]:
        """
        The envelope of each page of ``endpoint`` in turn, each with its ``pagination`` and ``rate_limit``.

        The hook asks for page 1, 2, ... (``p`` is its own) and stops after the last page that the
        answers' ``items`` (the total) and ``per_page`` give, or at an empty page; an endpoint that is not
        paginated yields one envelope. Nothing but the page in hand is held. A page that comes back wrong raises an
        :class:`~airflow_sfi.exceptions.SfiResponseError` naming it. The checks run on this call, before
        the first request; the requests run as the iterator is consumed.

        :param endpoint: e.g. ``matches/day/basic``.
        :param params: the vendor's parameters but ``p``.
        """
        target, query = self._checked(endpoint, params, paging=True)
        return self._pages(target, query)

    def paginate(self, endpoint: str, /, **params: object) -> Iterator[Item]:
        """
        Every result item of ``endpoint``, over all its pages (see :meth:`pages`), one page in memory at a time.

        :param endpoint: e.g. ``teams/list``.
        :param params: the vendor's parameters but ``p``.
        """
        return _items(self.pages(endpoint, **params))

    def matches_of_day(self, day: datetime.date | str, *, full: bool = False, **params: object) -> Iterator[Item]:
        """
        Every match of a UTC day, with its events (``matches/day/basic``, or ``full``: ULTRA and MEGA).

        :param day: a date (an aware datetime is taken in UTC) or ``YYYYMMDD``.
        :param full: call ``matches/day/full`` (odds and more).
        :param params: other documented parameters, e.g. ``l="en_US"``.
        """
        return self.paginate(f"matches/day/{'full' if full else 'basic'}", d=day, **params)

    def match(self, match_id: str, *, full: bool = False, **params: object) -> Item:
        """
        One match with its events (``matches/view/basic``, or ``full``: ULTRA and MEGA).

        :param match_id: the match's id, a non-empty string.
        :param full: call ``matches/view/full``.
        :param params: other documented parameters, e.g. ``l="en_US"``.
        """
        return only_item(self.get(f"matches/view/{'full' if full else 'basic'}", i=match_id, **params), "match")

    def live(self, *, full: bool = False, **params: object) -> list[Item]:
        """
        The matches in play now, without events (``live/basic``, or ``full``: ULTRA and MEGA).

        :param full: call ``live/full`` (odds too).
        :param params: other documented parameters, e.g. ``l="en_US"``.
        """
        return self.get(f"live/{'full' if full else 'basic'}", **params).result

    def championships(self, **params: object) -> Iterator[Item]:
        """
        Every championship (``championships/list``, all pages).

        :param params: other documented parameters, e.g. ``c`` (a country) or ``l``.
        """
        return self.paginate("championships/list", **params)

    def championship(self, championship_id: str, **params: object) -> Item:
        """
        One championship with its seasons, groups and tables (``championships/view``).

        :param championship_id: the championship's id.
        :param params: other documented parameters, e.g. ``l="en_US"``.
        """
        return only_item(self.get("championships/view", i=championship_id, **params), "championship")

    def teams(self, **params: object) -> Iterator[Item]:
        """
        Every team (``teams/list``, all pages).

        :param params: other documented parameters, e.g. ``c`` (a country) or ``l``.
        """
        return self.paginate("teams/list", **params)

    def team(self, team_id: str, **params: object) -> Item:
        """
        One team (``teams/view``).

        :param team_id: the team's id.
        :param params: other documented parameters, e.g. ``l="en_US"``.
        """
        return only_item(self.get("teams/view", i=team_id, **params), "team")

    def token_status(self) -> Item:
        """
        The API token's plan, expiry and usage (``token/status``).

        Direct mode only: RapidAPI does not offer it, and a RapidAPI connection fails with an
        :class:`~airflow_sfi.exceptions.SfiConfigError` without a call (RapidAPI's own dashboard shows the quota).
        """
        return only_item(self.get("token/status"), "token status")

    def get_ws_token(self) -> WsToken:
        """Call ``ws/new``: a new WebSocket token, or the active one again (``is_new`` False)."""
        return self._token("ws/new")

    def renew_ws_token(self) -> WsToken:
        """
        Call ``ws/renew`` to extend the active token.

        The vendor names this endpoint without documenting it: it is assumed to take the same
        auth and answer the same envelope as ``ws/new``; any other answer is an :class:`SfiResponseError`.
        """
        return self._token("ws/renew")

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
        envelope = self._call(endpoints.ENDPOINTS[endpoint])
        return WsToken.from_result(envelope.result, envelope.http_status)

    def _checked(
        self, endpoint: str, params: Mapping[str, object], *, paging: bool = False
    ) -> tuple[Endpoint, dict[str, str]]:
        """The endpoint and its query: the parameters first, so a mistake fails even without a connection."""
        if paging:
            refuse_page_param(params)
        target = endpoints.find(endpoint)
        query = target.query(params)
        target.check_mode(self.config.auth_type)
        return target, query

    def _pages(self, endpoint: Endpoint, query: dict[str, str]) -> Iterator[Envelope]:
        page: int | None = 1
        total: int | None = None
        while page is not None:
            try:
                envelope = self._call(endpoint, {**query, "p": str(page)} if endpoint.paginated else query)
                following = next_page(endpoint, page, envelope)
            except SfiResponseError as exc:
                raise page_error(endpoint, page, total, exc) from exc
            total = envelope.pagination.pages if envelope.pagination else None
            yield envelope
            del envelope  # held by nobody here while the next page is fetched
            page = following

    def _call(self, endpoint: Endpoint, query: Mapping[str, str] | None = None) -> Envelope:
        """``endpoint`` with ``query`` (checked), through the retries; secrets in the result go to the masker."""
        transport = self._transport
        params = {**transport.params, **query} if query else transport.params
        url = transport.prefix + endpoint.path
        # The first attempt runs without tenacity's bookkeeping; one that failed in a way worth retrying is
        # handed to tenacity as its attempt 1, which then waits, logs, retries and stops as for any attempt.
        failed: SfiError | None = None
        try:
            envelope = self._call_once(url, params)
        except SfiError as exc:
            if retry_wait(exc, self.config.max_retry_wait) is None:
                raise
            failed = exc
        if failed is not None:  # outside the except block: no attempt's error carries the first as __context__
            envelope = self._retrying(_replay(failed, self._call_once), url, params)
        if endpoint.secrets:
            mask_result(envelope.result, endpoint.secrets, self._masked)
        return envelope

    @functools.cached_property
    def _transport(self) -> _Transport:
        """
        What every call of this hook sends, worked out once.

        requests reads the environment's proxy and CA settings (``HTTPS_PROXY``, ``NO_PROXY``,
        ``REQUESTS_CA_BUNDLE``...) and ``~/.netrc`` again on every call, which costs more than the rest of
        the hook's own work. The hook reads the proxy and CA settings once, for its base URL, and hands them
        to each call; ``~/.netrc`` is not consulted (the credential is the connection's).
        """
        config = self.config
        session = self.session
        params, headers = config.mode.credential(config)
        settings = session.merge_environment_settings(config.url(""), {}, True, None, None)
        session.trust_env = False
        session.headers.update(headers)
        return _Transport(
            prefix=config.url(""),
            params=params,
            options={
                "timeout": config.timeout,
                "stream": True,
                "proxies": settings["proxies"],
                "verify": settings["verify"],
                "cert": settings["cert"],
            },
        )

    @functools.cached_property
    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            sleep=lambda seconds: type(self).retry_sleep(seconds), **retry_policy(self.config, self._log_retry)
        )

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        log_retry(self.log, state, self.config.max_attempts)

    def _call_once(self, url: str, params: dict[str, str]) -> Envelope:
        config = self.config
        failure = None
        try:
            with self.session.get(url, params=params, **self._transport.options) as response:
                body = _read_capped(response)
        except requests.RequestException as exc:
            failure = _describe(exc, config.timeout)
        if failure is not None:
            # Raised outside the except block: requests' own error quotes the URL with its ?t= query,
            # so it must not travel along as __context__ either.
            raise SfiTransportError(f"{VENDOR} at {_netloc(url)}: {failure}")
        return _noted(self, response.status_code, body, response.headers, config.secret)


class SfiAsyncHook(BaseHook):
    """
    The REST calls of :class:`SfiHook` for triggers and other coroutines, without blocking the event loop.

    The same connection, endpoint checks, envelope parser, retry policy and pagination as :class:`SfiHook`,
    over httpx. The connection is read in a thread (:func:`~airflow_sfi.aio.in_thread`). Used as
    ``async with SfiAsyncHook() as hook:``, every call reuses one HTTP client (and its connections);
    otherwise each :meth:`get`, :meth:`pages` or :meth:`paginate` opens and closes its own.

    :param sfi_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "sfi_conn_id"
    default_conn_name = defaults.CONN_ID
    conn_type = defaults.CONN_TYPE
    hook_name = "Soccer Football Info (async)"
    # How retries wait; replaceable in tests.
    retry_sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(self, sfi_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.sfi_conn_id = sfi_conn_id
        self.last_rate_limit: RateLimit | None = None
        self._config: SfiConfig | None = None
        self._client: httpx.AsyncClient | None = None
        self._masked: set[str] = set()

    async def get_config(self) -> SfiConfig:
        """The connection, read (in a thread) and checked on first use."""
        if self._config is None:
            self._config = await in_thread(_read_config, self)
        return self._config

    async def __aenter__(self) -> SfiAsyncHook:
        if self._client is None:
            self._client = _async_client(await self.get_config())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client that ``async with`` opened, if it is open."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def get(self, endpoint: str, /, **params: object) -> Envelope:
        """
        Call a documented endpoint once (retries aside) and return its checked envelope: see :meth:`SfiHook.get`.

        :param endpoint: e.g. ``matches/view/basic``.
        :param params: the vendor's parameters; a None value counts as not given.
        """
        target = endpoints.find(endpoint)
        query = target.query(params)
        async with self._session(target) as client:
            return await self._call(client, target, query)

    def pages(self, endpoint: str, /, **params: object) -> AsyncIterator[Envelope]:
        """
        The envelope of each page in turn (``async for``): see :meth:`SfiHook.pages`.

        The endpoint and parameters are checked on this call, the auth mode on the first iteration.

        :param endpoint: e.g. ``matches/day/basic``.
        :param params: the vendor's parameters but ``p``.
        """
        refuse_page_param(params)
        target = endpoints.find(endpoint)
        return self._pages(target, target.query(params))

    def paginate(self, endpoint: str, /, **params: object) -> AsyncIterator[Item]:
        """
        Every result item of ``endpoint`` over all its pages (``async for``), one page in memory at a time.

        The endpoint and parameters are checked on this call, the auth mode on the first iteration.

        :param endpoint: e.g. ``teams/list``.
        :param params: the vendor's parameters but ``p``.
        """
        return _aitems(self.pages(endpoint, **params))

    async def _pages(self, endpoint: Endpoint, query: dict[str, str]) -> AsyncIterator[Envelope]:
        async with self._session(endpoint) as client:
            page: int | None = 1
            total: int | None = None
            while page is not None:
                try:
                    envelope = await self._call(
                        client, endpoint, {**query, "p": str(page)} if endpoint.paginated else query
                    )
                    following = next_page(endpoint, page, envelope)
                except SfiResponseError as exc:
                    raise page_error(endpoint, page, total, exc) from exc
                total = envelope.pagination.pages if envelope.pagination else None
                yield envelope
                del envelope
                page = following

    @contextlib.asynccontextmanager
    async def _session(self, endpoint: Endpoint) -> AsyncIterator[httpx.AsyncClient]:
        """The shared client (``async with`` the hook), else one for this call; the auth mode checked first."""
        config = await self.get_config()
        endpoint.check_mode(config.auth_type)
        if self._client is not None:
            yield self._client
            return
        async with _async_client(config) as client:
            yield client

    async def _call(self, client: httpx.AsyncClient, endpoint: Endpoint, query: Mapping[str, str]) -> Envelope:
        config = await self.get_config()
        params = {**config.mode.credential(config)[0], **query}
        retrying = tenacity.AsyncRetrying(
            sleep=lambda seconds: type(self).retry_sleep(seconds),
            **retry_policy(config, lambda state: log_retry(self.log, state, config.max_attempts)),
        )
        envelope: Envelope = await retrying(self._call_once, client, config, config.url(endpoint.path), params)
        if endpoint.secrets:
            mask_result(envelope.result, endpoint.secrets, self._masked)
        return envelope

    async def _call_once(
        self, client: httpx.AsyncClient, config: SfiConfig, url: str, params: dict[str, str]
    ) -> Envelope:
        failure = None
        try:
            async with client.stream("GET", url, params=params) as response:
                body = await _aread_capped(response)
        except httpx.HTTPError as exc:
            failure = _describe(exc, config.timeout)
        if failure is not None:
            # Raised outside the except block: httpx's errors carry the request, whose URL holds ?t=.
            raise SfiTransportError(f"{VENDOR} at {_netloc(url)}: {failure}")
        return _noted(self, response.status_code, body, response.headers, config.secret)


@dataclasses.dataclass(frozen=True)
class _Transport:
    """What every call of one :class:`SfiHook` sends: the URL prefix, the credential's query and the request options."""

    prefix: str
    params: dict[str, str] = dataclasses.field(repr=False)
    options: dict[str, Any]


def _read_config(hook: SfiAsyncHook) -> SfiConfig:
    return SfiConfig.from_connection(hook.get_connection(hook.sfi_conn_id))


def _async_client(config: SfiConfig) -> httpx.AsyncClient:
    _UrlLogRedactor.install()
    return httpx.AsyncClient(
        headers={"Accept": "application/json", **config.mode.credential(config)[1]},
        timeout=config.timeout,
        follow_redirects=True,  # as requests does for the sync hook
    )


def retry_policy(config: SfiConfig, before_sleep: Callable[[tenacity.RetryCallState], None]) -> dict[str, Any]:
    """
    The retry policy both hooks give tenacity, but for how to sleep: see :func:`retry_wait`.

    :param config: the connection (``max_attempts``, ``max_retry_wait``).
    :param before_sleep: called before each wait, to log it.
    """
    max_retry_wait = config.max_retry_wait
    return {
        "stop": tenacity.stop_after_attempt(config.max_attempts),
        "retry": tenacity.retry_if_exception(lambda exc: retry_wait(exc, max_retry_wait) is not None),
        "wait": _wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }


def log_retry(log: Any, state: tenacity.RetryCallState, max_attempts: int) -> None:
    """Log one failed attempt and the wait before the next."""
    log.warning(
        "%s; retrying in %.1f s (attempt %d of %d)",
        state.outcome.exception() if state.outcome else "failed",
        state.upcoming_sleep,
        state.attempt_number + 1,
        max_attempts,
    )


def refuse_page_param(params: Mapping[str, object]) -> None:
    """Pagination sets ``p`` itself: raise :class:`SfiConfigError` when the caller gave one."""
    if "p" in params:
        problem = "p is set by the pagination itself: leave it out (or call get() for one page)"
        raise SfiConfigError(problem, problem=problem)


def next_page(endpoint: Endpoint, page: int, envelope: Envelope) -> int | None:
    """
    The page to ask for after ``page`` answered ``envelope``, or None: that was the last.

    The last page is the one the answer's ``items`` (the total) and ``per_page`` give; an empty page
    ends too. An answer without pagination is one page, unless it comes after page 1.

    :raises SfiResponseError: when the answer is not the page asked for.
    """
    pagination = envelope.pagination
    if pagination is None:
        if page > 1:
            raise response_error(envelope.http_status, "without its pagination")
        return None
    if pagination.page != page:
        raise response_error(envelope.http_status, f"with page {pagination.page} instead")
    if not endpoint.paginated or not envelope.result or pagination.is_last:
        return None
    return page + 1


def page_error(endpoint: Endpoint, page: int, pages: int | None, exc: SfiResponseError) -> SfiResponseError:
    """``exc`` from one page of ``endpoint``, naming the page (and how many there are, when known)."""
    where = f"{endpoint.name} page {page}" + (f" of {pages}" if pages else "")
    return SfiResponseError(
        f"{where}: {exc}",
        http_status=exc.http_status,
        api_status=exc.api_status,
        code=exc.code,
        vendor_message=exc.vendor_message,
    )


def only_item(envelope: Envelope, what: str) -> Item:
    """The single result item of ``envelope``, which must be an object; else :class:`SfiResponseError`."""
    if len(envelope.result) != 1 or not isinstance(envelope.result[0], dict):
        shape = f"{len(envelope.result)} results" if len(envelope.result) != 1 else "a result that is not an object"
        raise response_error(envelope.http_status, f"with {shape} instead of one {what}")
    item: Item = envelope.result[0]
    return item


def mask_result(result: list[Any], fields: tuple[str, ...], masked: set[str]) -> None:
    """Register ``fields`` of each result item with Airflow's masker, once per value (``masked`` remembers)."""
    for item in result:
        if not isinstance(item, dict):
            continue
        for field in fields:
            value = item.get(field)
            if isinstance(value, str) and value and value not in masked:
                mask_secret(value)
                masked.add(value)


def _replay(failure: SfiError, attempt: Callable[..., Envelope]) -> Callable[..., Envelope]:
    """``attempt``, but its first call raises ``failure`` (what the attempt already made outside tenacity raised)."""
    pending = [failure]

    def replaying(*args: Any) -> Envelope:
        if pending:
            raise pending.pop()
        return attempt(*args)

    return replaying


async def _aitems(pages: AsyncIterator[Envelope]) -> AsyncIterator[Item]:
    async for envelope in pages:
        items = envelope.result
        del envelope
        for item in items:
            yield item
        del items


def _items(pages: Iterator[Envelope]) -> Iterator[Item]:
    for envelope in pages:
        items = envelope.result
        del envelope  # only the page in hand is held, not its envelope too
        yield from items
        del items


def _noted(hook: SfiHook | SfiAsyncHook, status: int, body: bytes, headers: Mapping[str, str], secret: str) -> Envelope:
    """Parse an answer, and note its rate limit on ``hook`` whether it is an error or not."""
    try:
        envelope = _parse(status, body, headers, secret)
    except SfiError:
        hook.last_rate_limit = RateLimit.from_headers(headers)
        raise
    hook.last_rate_limit = envelope.rate_limit
    return envelope


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
            raise _too_big(response.status_code)
    return b"".join(chunks)


async def _aread_capped(response: httpx.Response) -> bytes:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_big(response.status_code)
    return b"".join(chunks)


def _too_big(status: int) -> SfiResponseError:
    return SfiResponseError(f"{VENDOR} answered with a body over {MAX_BODY_BYTES} bytes", http_status=status)


def _describe(exc: requests.RequestException | httpx.HTTPError, timeout: float) -> str:
    """Name the cause of a transport failure (of requests or httpx) without quoting the request URL."""
    if isinstance(exc, (requests.ConnectTimeout, httpx.ConnectTimeout)):
        return f"connect timed out after {timeout:g} s"
    if isinstance(exc, (requests.ReadTimeout, httpx.ReadTimeout)):
        return f"no response within the read timeout of {timeout:g} s"
    seen: list[BaseException] = []
    pending: list[BaseException] = [exc]
    while pending:  # the chain of causes, and the members of an exception group (anyio's connect)
        cause = pending.pop(0)
        if cause in seen:
            continue
        seen.append(cause)
        following = getattr(cause, "reason", None) or cause.__cause__ or cause.__context__
        pending += [*([following] if isinstance(following, BaseException) else []), *getattr(cause, "exceptions", ())]
    for error in seen:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ConnectionResetError):
            return "connection reset by peer"
        if isinstance(error, (TimeoutError, httpx.TimeoutException)):
            return f"timed out after {timeout:g} s"
        if isinstance(error, (urllib3.exceptions.NameResolutionError, socket.gaierror)):
            return "host name could not be resolved"
        if isinstance(error, (urllib3.exceptions.ProtocolError, http.client.HTTPException, httpx.RemoteProtocolError)):
            return "connection closed without a complete response"
    return f"request failed ({type(seen[-1]).__name__})"


def _netloc(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


class _UrlLogRedactor(logging.Filter):
    """
    Runs the records of the HTTP libraries' loggers through Airflow's masker: they quote request URLs
    (urllib3 at DEBUG, httpx at INFO), whose ``?t=`` holds a direct-mode token.
    """

    LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "httpx")

    @classmethod
    def install(cls) -> None:
        """Add the filter to those loggers, once per process."""
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
