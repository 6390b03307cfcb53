"""SfiFeedHook: the vendor's live WebSocket, kept open, subscribed, renewed and deduplicated."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import tenacity
from airflow.providers.common.compat.sdk import BaseHook
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from airflow_sfi import defaults
from airflow_sfi.aio import in_thread, stop
from airflow_sfi.exceptions import SfiAuthError, SfiConfigError, SfiError, SfiSubscriptionError
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.protocol.messages import (
    FINAL_ERRORS,
    MAX_FRAME_BYTES,
    Deduplicator,
    FeedEvent,
    Frame,
    MalformedFrameError,
    Subscription,
    check_plan,
    parse_frame,
)
from airflow_sfi.protocol.token import WsToken
from airflow_sfi.refresh import SleepUntil, refresh_token, sleep_until

# Close codes that mean "this token is done" (the vendor documents none: 4001 is the sandbox's, the
# others are what servers commonly use). Any close also counts as one when the token has expired.
TOKEN_CLOSE_CODES = frozenset({4001, 4401, 4403, 1008})
# Handshake statuses that mean the same.
TOKEN_REFUSED_STATUSES = frozenset({401, 403})
# Between reconnect attempts; the first reconnect after a drop is immediate.
RECONNECT_BACKOFF = tenacity.wait_exponential(multiplier=0.5, max=30.0) + tenacity.wait_random(0, 0.5)
# Events waiting for the consumer; beyond it the socket is read no faster than they are consumed.
QUEUE_SIZE = 1000


class _AboveDebug(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs the request line, ``?token=`` included, at DEBUG: never let it, whatever the levels say."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


_WS_LOG = _AboveDebug(logging.getLogger("airflow_sfi.feed.websockets"), {})


class _RetryError(Exception):
    """A failure another attempt may cure; its text holds no secret."""


class _TokenRefusedError(_RetryError):
    """The server refused or ended the token: the next attempt needs a fresh one."""


class SfiFeedHook(BaseHook):
    """
    Live events from the vendor's WebSocket, through the token that :class:`SfiHook` gets for a connection.

    :meth:`events` connects, subscribes, pings, renews the token before it expires, reconnects with
    jittered backoff and yields each event once. Subscriptions the plan cannot hold are an
    :class:`~airflow_sfi.exceptions.SfiSubscriptionError`, raised without reconnecting.

    :param sfi_conn_id: the Airflow connection (the same as :class:`SfiHook`'s).
    :param ping_interval: seconds between the app-level pings the vendor asks for.
    :param pong_timeout: seconds to wait for any frame after a ping before the connection counts as stalled.
    :param renew_margin: renew this long before the token expires (capped at half the token's life).
    :param open_timeout: seconds for the handshake and for each subscription's answer.
    """

    def __init__(
        self,
        sfi_conn_id: str = defaults.CONN_ID,
        *,
        ping_interval: float = defaults.PING_INTERVAL,
        pong_timeout: float = 10.0,
        renew_margin: datetime.timedelta = defaults.RENEW_MARGIN,
        open_timeout: float = 10.0,
    ) -> None:
        super().__init__()
        if min(ping_interval, pong_timeout, renew_margin.total_seconds(), open_timeout) <= 0:
            raise SfiConfigError("ping_interval, pong_timeout, renew_margin and open_timeout must be positive")
        self.sfi_conn_id = sfi_conn_id
        self.ping_interval = ping_interval
        self.pong_timeout = pong_timeout
        self.renew_margin = renew_margin
        self.open_timeout = open_timeout
        self.api = SfiHook(sfi_conn_id)
        # How reconnects wait, and how renewals wait for their moment; replaceable in tests.
        self.reconnect_sleep: Any = asyncio.sleep
        self.refresh_sleep: SleepUntil = sleep_until

    async def events(
        self, subscriptions: Sequence[Subscription], dedupe: Deduplicator | None = None
    ) -> AsyncGenerator[FeedEvent, None]:
        """
        Yield live events, each once, until cancelled.

        :param subscriptions: what to subscribe to, on one connection.
        :param dedupe: remembers what was already yielded (e.g. restored after a restart); a fresh one if None.
        """
        subscriptions = tuple(dict.fromkeys(subscriptions))
        if not subscriptions:
            raise SfiConfigError("the feed needs at least one subscription")
        dedupe = Deduplicator() if dedupe is None else dedupe
        queue: asyncio.Queue[FeedEvent] = asyncio.Queue(QUEUE_SIZE)
        session = asyncio.create_task(_Session(self, subscriptions, queue).run(), name="sfi-feed")
        get: asyncio.Future[FeedEvent] | None = None
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                await asyncio.wait({get, session}, return_when=asyncio.FIRST_COMPLETED)
                if not get.done():
                    session.result()  # the session ends only by a final error: raise it
                event = get.result()
                if dedupe.first_time(event):
                    yield event
        finally:
            await stop(get, session)


class _Link:
    """One open, subscribed connection: reads frames into the queue and pings."""

    def __init__(self, hook: SfiFeedHook, ws: ClientConnection, token: WsToken, queue: asyncio.Queue[FeedEvent]):
        self.hook = hook
        self.ws = ws
        self.token = token
        self.queue = queue
        self.last_frame = time.monotonic()
        # Resolves with why the link ended: a close code, or "stalled" (the socket may still be open).
        self.ended: asyncio.Future[int | str] = asyncio.get_running_loop().create_future()
        self._tasks: list[asyncio.Task[None]] = []
        # Messages of types this client does not know, counted per type; each type is logged once.
        self.unknown_types: dict[str, int] = {}

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._ping())]

    async def close(self) -> None:
        await stop(*self._tasks)
        if self.ended.done() and self.ended.result() == "stalled":
            self.ws.transport.abort()  # a stalled server would not answer a closing handshake either
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 2)
        self.ws.transport.abort()
        if not self.ended.done():
            self.ended.set_result(1000)

    async def take(self, frame: str | bytes) -> Frame | None:
        """Handle one frame: queue an event, note liveness; return control frames for the caller."""
        self.last_frame = time.monotonic()
        try:
            parsed = parse_frame(frame)
        except MalformedFrameError as exc:
            self.hook.log.warning("Skipped a malformed frame from the live feed: %s", exc)
            return None
        if isinstance(parsed, FeedEvent):
            await self.queue.put(parsed)
            return None
        if not parsed.known:
            seen = self.unknown_types.get(parsed.type, 0)
            self.unknown_types[parsed.type] = seen + 1
            if not seen:
                self.hook.log.info(
                    "The live feed sends %r messages, which this client does not know: skipping them", parsed.type
                )
            return None
        return parsed

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                control = await self.take(frame)
                if control is not None and control.type == "error":
                    self.hook.log.warning(
                        "The live feed reported %s: %s", control.error_code, str(control.message.get("message"))[:200]
                    )
        except ConnectionClosed:
            pass
        if not self.ended.done():
            self.ended.set_result(self.ws.close_code or 1006)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.hook.ping_interval)
            sent = time.monotonic()
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send('{"action":"ping"}')
            await asyncio.sleep(self.hook.pong_timeout)
            if self.last_frame < sent and not self.ended.done():
                self.ended.set_result("stalled")
                return


class _Session:
    """The connection manager behind :meth:`SfiFeedHook.events`: token, link, renewal, reconnects."""

    def __init__(self, hook: SfiFeedHook, subscriptions: tuple[Subscription, ...], queue: asyncio.Queue[FeedEvent]):
        self.hook = hook
        self.log = hook.log
        self.subscriptions = subscriptions
        self.queue = queue
        self.token: WsToken | None = None  # None: the next connection needs a fresh one
        self.ended_token: WsToken | None = None  # the last token the server refused or ended

    async def run(self) -> None:
        token = await self._retrying(self._new_token)
        check_plan(self.subscriptions, token.allowed_channels, token.max_subscribe_per_connection)
        link = await self._connect()
        renewal = self._renewal(link.token)
        try:
            while True:
                pending: list[asyncio.Future[Any]] = [link.ended, renewal]
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if renewal.done():
                    link, renewal = await self._renewed(link, renewal)
                    continue
                why = link.ended.result()
                if why == "stalled" and link.token.max_connections > 1:
                    self.log.warning("The live feed stalled: opening a new connection before closing it")
                    old, link = link, await self._connect()
                    await old.close()
                    continue
                await link.close()
                if why in TOKEN_CLOSE_CODES or link.token.seconds_left() <= 0:
                    self.log.info("The server ended the token (close code %s): getting a fresh one", why)
                    await stop(renewal)
                    self.ended_token, self.token = link.token, None
                    link = await self._connect()
                    renewal = self._renewal(link.token)
                else:
                    self.log.warning("The live feed connection ended (%s): reconnecting", why)
                    link = await self._connect()
        finally:
            try:
                await stop(renewal)
            finally:
                await link.close()

    def _renewal(self, token: WsToken) -> asyncio.Task[WsToken]:
        lifetime = max(token.seconds_left(), 0.0)
        margin = min(self.hook.renew_margin, datetime.timedelta(seconds=lifetime / 2))
        return asyncio.create_task(
            refresh_token(self.hook.api, token.expires_at, margin, "refresh", self.log, sleep=self.hook.refresh_sleep)
        )

    async def _renewed(self, link: _Link, renewal: asyncio.Task[WsToken]) -> tuple[_Link, asyncio.Task[WsToken]]:
        """Take the renewed token; a different token string gets a new connection before the old one closes."""
        failure = renewal.exception()
        if failure is not None:
            if _final(failure):
                raise failure
            self.log.warning("Renewing the live feed's token failed (%s): trying again", failure)
            await self.hook.reconnect_sleep(1.0)
            return link, self._renewal(link.token)
        token = renewal.result()
        self.token = token
        if token.token != link.token.token:
            self.log.info("A new token is in hand: switching to a connection that uses it")
            old, link = link, await self._connect()
            await old.close()
        else:
            link.token = token
        return link, self._renewal(token)

    async def _new_token(self) -> WsToken:
        """``ws/new``; a token other than the one just ended (ws/new may return it for a moment after)."""
        token = await in_thread(self.hook.api.get_ws_token)
        if self.ended_token is not None and token.token == self.ended_token.token:
            raise _TokenRefusedError("ws/new returned the token the server just ended")
        self.token = token
        return token

    async def _connect(self) -> _Link:
        """Open and subscribe a connection, retrying with backoff."""
        link: _Link = await self._retrying(self._open)
        return link

    async def _retrying(self, step: Any) -> Any:
        retrying = tenacity.AsyncRetrying(
            wait=RECONNECT_BACKOFF,
            retry=tenacity.retry_if_exception(lambda exc: not _final(exc)),
            sleep=self.hook.reconnect_sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await step()
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Live feed attempt %d failed (%s); next in %.1f s", state.attempt_number, _describe(failure), delay
        )
        if isinstance(failure, _TokenRefusedError) and self.token is not None:
            self.ended_token, self.token = self.token, None

    async def _open(self) -> _Link:
        token = self.token if self.token is not None else await self._new_token()
        failure: str | None = None
        refused = False
        try:
            ws = await connect(
                token.server,
                open_timeout=self.hook.open_timeout,
                ping_interval=None,  # the vendor's app-level ping does it
                close_timeout=2,
                max_size=MAX_FRAME_BYTES,
                logger=_WS_LOG,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            refused = status in TOKEN_REFUSED_STATUSES
            failure = f"the server refused the connection: HTTP {status}"
        except (OSError, TimeoutError, WebSocketException) as exc:
            failure = f"could not connect: {type(exc).__name__}"
        if failure is not None:
            # Raised outside the except block: the library's errors may quote the URL with its token.
            raise (_TokenRefusedError if refused else _RetryError)(failure)
        link = _Link(self.hook, ws, token, self.queue)
        try:
            await self._subscribe(link)
        except BaseException:
            await link.close()
            raise
        link.start()
        return link

    async def _subscribe(self, link: _Link) -> None:
        for subscription in self.subscriptions:
            try:
                await link.ws.send(subscription.command())
            except ConnectionClosed:
                raise _RetryError("closed while subscribing") from None
            answer = await self._answer(link, subscription)
            if answer.type == "error":
                code = answer.error_code
                text = f"{subscription.topic_key}: {code}: {str(answer.message.get('message'))[:200]}"
                if code in FINAL_ERRORS:
                    raise SfiSubscriptionError(f"the live feed refused the subscription {text}", error_code=code)
                raise _RetryError(f"subscription failed, {text}")

    async def _answer(self, link: _Link, subscription: Subscription) -> Frame:
        deadline = time.monotonic() + self.hook.open_timeout
        failure = None
        while True:
            try:
                frame = await asyncio.wait_for(link.ws.recv(), max(deadline - time.monotonic(), 0.001))
            except (TimeoutError, asyncio.TimeoutError):
                failure = f"no answer to subscribing {subscription.topic_key}"
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else 1006
                if code in TOKEN_CLOSE_CODES:
                    raise _TokenRefusedError(f"closed while subscribing (code {code})") from None
                failure = f"closed while subscribing (code {code})"
            if failure is not None:
                raise _RetryError(failure)
            control = await link.take(frame)
            if control is not None and control.type in ("subscribed", "error") and control.about(subscription):
                return control


def _final(exc: BaseException) -> bool:
    """Errors no retry cures: configuration, credentials, subscriptions the plan refuses, and bugs."""
    if isinstance(exc, (SfiConfigError, SfiAuthError, SfiSubscriptionError)):
        return True
    return not isinstance(exc, (_RetryError, SfiError, ConnectionClosed, OSError, TimeoutError))


def _describe(exc: BaseException | None) -> str:
    return "unknown" if exc is None else str(exc) or type(exc).__name__
