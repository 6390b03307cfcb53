"""
SfiFeedHook: the vendor's live WebSocket, one connection per API key in a process, shared by every
trigger in it, kept open, renewed, and reconciled through REST after every gap.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import hashlib
import logging
import sys
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from typing import Any

import tenacity
from airflow.providers.common.compat.sdk import BaseHook
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from airflow_sfi import defaults
from airflow_sfi.aio import in_thread, stop
from airflow_sfi.exceptions import SfiAuthError, SfiConfigError, SfiError, SfiSubscriptionError
from airflow_sfi.hooks.sfi import SfiHook
from airflow_sfi.protocol import backfill, topics
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
# Events waiting for one trigger; beyond it that trigger's events are dropped and fetched again through REST.
QUEUE_SIZE = 1000
# Seconds between a trigger's "still waiting" lines.
PROGRESS_INTERVAL = 60.0
# The wait before asking REST again after it failed to reconcile a gap.
RECONCILE_RETRY_SECONDS = 30.0
# A REST pass within this long of the one before waits this long first, and serves every trigger due by then: a
# restarted triggerer starts a few triggers per loop (about a second apart), and each loop's would otherwise cost
# a call per match. A pass after a quiet spell goes at once, so that a lone new watcher stores its baseline at once.
RECONCILE_GATHER_SECONDS = 1.5


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

    Every :meth:`events` call in a process with the same API key joins one shared connection: one socket,
    whose subscriptions cover every caller's selection (merged, and widened when the plan's
    ``max_subscribe_per_connection`` is short), each event parsed once and handed to the callers it
    matches. The connection pings, renews its token before it expires, reconnects with jittered backoff,
    and after every window without a subscribed socket fetches the watched matches from REST
    (``matches/view/basic``, one call per match) to hand on what was missed, marked ``backfilled``.
    The first caller's settings (the parameters below) are the connection's.

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
        # How reconnects wait, how renewals wait for their moment, how REST passes gather triggers, and the progress
        # lines' pace; replaceable in tests.
        self.reconnect_sleep: Any = asyncio.sleep
        self.reconcile_sleep: Any = asyncio.sleep
        self.refresh_sleep: SleepUntil = sleep_until
        self.progress_interval = PROGRESS_INTERVAL

    async def events(
        self,
        subscriptions: Sequence[Subscription],
        dedupe: Deduplicator | None = None,
        *,
        event_types: Iterable[str] = (),
        history: bool = False,
        before: Iterable[str] = (),
        on_baseline: Callable[[set[str]], None] | None = None,
        label: str = "",
        flush_after: float | None = None,
    ) -> AsyncGenerator[FeedEvent | None, None]:
        """
        Yield the live events of ``subscriptions``, each once, until cancelled.

        :param subscriptions: what to receive (any of them).
        :param dedupe: remembers what was already yielded (e.g. restored after a restart); a fresh one if None.
        :param event_types: only these types; all when empty.
        :param history: ``dedupe`` holds what was yielded before (a restarted watcher): fetch what was missed
            since, through REST. Without it, what REST shows at its first read (its baseline, once subscribed)
            counts as seen: live events are yielded, and what REST shows later.
        :param before: keys of events that happened before the caller began: not yielded when fetched through REST
            (a live event is yielded, it happens now).
        :param on_baseline: called with the keys of the baseline (without ``history``), once it is taken.
        :param label: what the caller waits for, for its progress lines (e.g. ``match_end of <id>``).
        :param flush_after: yield a None this long after the last event of a burst (an event within this long of
            the one before), unless another event comes first; None: never.
        """
        subscriptions = tuple(dict.fromkeys(subscriptions))
        if not subscriptions:
            raise SfiConfigError("the feed needs at least one subscription")
        consumer = _Consumer(
            subscriptions, frozenset(event_types), Deduplicator() if dedupe is None else dedupe, history, before
        )
        consumer.on_baseline = on_baseline
        config = await in_thread(lambda: self.api.config)
        shared = _SharedFeed.of(self, config.auth_type, config.base_url, config.secret)
        shared.join(consumer)
        label = label or ", ".join(s.topic_key for s in subscriptions)
        loop = asyncio.get_running_loop()
        progress_at = loop.time() + self.progress_interval
        last: float | None = None
        flush_at: float | None = None
        try:
            while True:
                if not consumer.items:
                    await consumer.wait(min(progress_at, flush_at or progress_at) - loop.time())
                    if not consumer.items:
                        now = loop.time()
                        if flush_at is not None and now >= flush_at:
                            flush_at = None
                            yield None
                        if now >= progress_at:
                            state = "connected" if shared.subscribed else "not connected"
                            self.log.info("Still waiting for %s: %s, %d events seen", label, state, consumer.seen)
                            progress_at = now + self.progress_interval
                        continue
                item = consumer.items.popleft()
                if isinstance(item, FeedEvent):
                    consumer.queued -= 1
                    if flush_after is not None:
                        now = loop.time()
                        flush_at = now + flush_after if last is not None and now - last < flush_after else None
                        last = now
                    yield item
                elif isinstance(item, _Notice):
                    self.log.log(item.level, "%s", item.text)
                else:
                    raise item
        finally:
            await shared.leave(consumer)


class _Notice:
    """A line for one trigger's own log (it logs it in its task, so it lands in its log)."""

    __slots__ = ("level", "text")

    def __init__(self, level: int, text: str) -> None:
        self.level = level
        self.text = text


class _Consumer:
    """One :meth:`SfiFeedHook.events` call: its selection, its dedupe, and its queue."""

    def __init__(
        self,
        subscriptions: tuple[Subscription, ...],
        event_types: frozenset[str],
        dedupe: Deduplicator,
        history: bool,
        before: Iterable[str],
    ) -> None:
        self.subscriptions = subscriptions
        self.event_types = event_types
        self.dedupe = dedupe
        # What waits for the caller: a deque and a future, not an asyncio.Queue, whose timed get costs a task.
        self.items: collections.deque[FeedEvent | _Notice | BaseException] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.queued = 0  # events in the queue, bounded by QUEUE_SIZE
        self.seen = 0  # events of its topics, of any type
        self.before = set(before)  # keys of what REST showed before it began: never backfilled
        self.on_baseline: Callable[[set[str]], None] | None = None
        # Without history, what REST shows is recorded in ``before`` (its baseline); it is reconciled through REST
        # once its topics are subscribed: after every gap, and after its baseline unless they were subscribed then.
        self.baseline = not history
        self.reconcile = True
        self.live = False  # its topics are subscribed, since the last gap
        self.restored = history  # its dedupe names matches from before a restart, which REST is asked about once
        self.failed = False
        self.told = False  # whether it was told the feed is connected, since the last gap

    def covers(self, event: FeedEvent) -> bool:
        return any(s.matches(event) for s in self.subscriptions)

    def offer(self, event: FeedEvent) -> bool:
        """Queue ``event`` if selected and new; False when the queue is full (the event is left to REST)."""
        self.seen += 1
        if self.event_types and event.type not in self.event_types:
            return True
        if self.dedupe.seen(event.key):
            return True
        if self.queued >= QUEUE_SIZE:
            return False
        self.dedupe.first_time(event)
        self.queued += 1
        self._put(event)
        return True

    def notice(self, level: int, text: str) -> None:
        self._put(_Notice(level, text))

    def fail(self, exc: BaseException) -> None:
        if not self.failed:
            self.failed = True
            self._put(exc)

    def _put(self, item: FeedEvent | _Notice | BaseException) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until something is put, or ``timeout`` seconds passed."""
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        timer = loop.call_later(max(timeout, 0.0), _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None


class _SharedFeed:
    """
    The connection of one API key in one event loop: token, socket, topics, renewal, reconnects, fan-out and
    reconciliation. Created by the first consumer, stopped when the last one leaves.
    """

    def __init__(self, hook: SfiFeedHook, name: str) -> None:
        self.hook = hook
        self.log = hook.log
        self.name = name
        self.consumers: list[_Consumer] = []
        # The consumers of each selection, (channel, scope, id): an event looks up its three, not every consumer.
        self.index: dict[tuple[str, str, str | None], list[_Consumer]] = {}
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.topics: tuple[Subscription, ...] = ()
        self.subscribed = False
        self.token: WsToken | None = None  # None: the next connection needs a fresh one
        self.ended_token: WsToken | None = None  # the last token the server refused or ended
        self.in_play: dict[str, str] = {}  # match -> league, for matches with events and no match_end yet
        self.reconciling: asyncio.Task[None] | None = None
        self.gathering: asyncio.Future[None] | None = None  # the wait before a REST pass
        self.read_at = float("-inf")  # when the last REST pass began, on the loop's clock

    @classmethod
    def of(cls, hook: SfiFeedHook, *identity: str) -> _SharedFeed:
        """The shared feed of this loop for the API key in ``identity`` (a digest names it, never the key)."""
        feeds = _FEEDS.setdefault(asyncio.get_running_loop(), {})
        name = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:16]
        if name not in feeds:
            feeds[name] = cls(hook, name)
        return feeds[name]

    def join(self, consumer: _Consumer) -> None:
        self.consumers.append(consumer)
        for s in consumer.subscriptions:
            self.index.setdefault((s.channel, s.scope, s.id), []).append(consumer)
        self.changed.set()
        if self.task is None:
            self.task = asyncio.create_task(self._run(), name=f"sfi-feed-{self.name}")
            self.task.add_done_callback(self._ended)
        self._reconcile_soon()

    async def leave(self, consumer: _Consumer) -> None:
        with contextlib.suppress(ValueError):
            self.consumers.remove(consumer)
            for s in consumer.subscriptions:
                self.index[(s.channel, s.scope, s.id)].remove(consumer)
        if not self.consumers:
            feeds = _FEEDS.get(asyncio.get_running_loop(), {})
            if feeds.get(self.name) is self:
                del feeds[self.name]
            await stop(self.task, self.reconciling)
        else:
            self.changed.set()

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The connection ended by itself: only a final error does that; every consumer gets it."""
        if task.cancelled():
            return
        failure = task.exception() or SfiError("the live feed stopped")
        feeds = _FEEDS.get(asyncio.get_running_loop(), {})
        if feeds.get(self.name) is self:
            del feeds[self.name]
        for consumer in self.consumers:
            consumer.fail(failure)

    def tell(self, level: int, text: str) -> None:
        """Say ``text`` in every consumer's log."""
        for consumer in self.consumers:
            consumer.notice(level, text)

    # Events

    def dispatch(self, event: FeedEvent) -> None:
        """Hand a live event to every consumer it concerns (parsed once, for all of them)."""
        if event.channel == "MAIN":
            if event.type == "match_end":
                self.in_play.pop(event.match_id, None)
            else:
                self.in_play[event.match_id] = event.league_id
        index, channel = self.index, event.channel
        lists = [
            found
            for found in (
                index.get((channel, "all", None)),
                index.get((channel, "match", event.match_id)),
                index.get((channel, "league", event.league_id)),
            )
            if found
        ]
        overflowed = False
        for consumer in lists[0] if len(lists) == 1 else dict.fromkeys(c for found in lists for c in found):
            if not consumer.offer(event):
                consumer.reconcile = overflowed = True
        if overflowed:
            self.log.warning("A trigger of the live feed reads too slowly: its missed events come through REST")
            self._reconcile_soon()

    # The connection

    async def _run(self) -> None:
        link: _Link | None = None
        renewal: asyncio.Task[WsToken] | None = None
        try:
            await self._retrying(self._new_token)
            link = await self._connect()
            renewal = self._renewal(link.token)
            while True:
                self._reconcile_soon()
                changed = asyncio.ensure_future(self.changed.wait())
                try:
                    pending: list[asyncio.Future[Any]] = [link.ended, renewal, changed]
                    await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    await stop(changed)
                if self.changed.is_set():
                    self.changed.clear()
                    await self._retopic(link)
                    continue
                if renewal.done():
                    link, renewal = await self._renewed(link, renewal)
                    continue
                why = link.ended.result()
                await link.close()
                self.subscribed = False
                self._gap()
                if any(c.baseline for c in self.consumers):
                    # A baseline read after the outage would count what it missed as before: read it now.
                    self.read_at = float("-inf")
                    if self.gathering is not None:
                        self.gathering.cancel()
                    self._reconcile_soon()
                if why in TOKEN_CLOSE_CODES or link.token.seconds_left() <= 0:
                    self.log.info("The server ended the token (close code %s): getting a fresh one", why)
                    await stop(renewal)
                    self.ended_token, self.token = link.token, None
                    link = await self._connect()
                    renewal = self._renewal(link.token)
                else:
                    self.tell(logging.WARNING, f"The live feed connection ended ({why}): reconnecting")
                    link = await self._connect()
        finally:
            self.subscribed = False
            try:
                await stop(renewal, self.reconciling)
            finally:
                if link is not None:
                    await link.close()

    def _gap(self) -> None:
        """No socket is subscribed from now: every consumer reconciles once one is again."""
        for consumer in self.consumers:
            consumer.reconcile = True
            consumer.live = consumer.told = False

    def _renewal(self, token: WsToken) -> asyncio.Task[WsToken]:
        lifetime = max(token.seconds_left(), 0.0)
        margin = min(self.hook.renew_margin, datetime.timedelta(seconds=lifetime / 2))
        return asyncio.create_task(
            refresh_token(self.hook.api, token.expires_at, margin, "refresh", self.log, sleep=self.hook.refresh_sleep)
        )

    async def _renewed(self, link: _Link, renewal: asyncio.Task[WsToken]) -> tuple[_Link, asyncio.Task[WsToken]]:
        """
        Take the renewed token. A different token string gets its own socket before the old one closes: the
        new token's connections are not counted against the old one's ``max_connections``.
        """
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
            self.log.info("A new token is in hand: switching to a socket that uses it")
            old = link
            try:
                link = await self._connect()
            finally:
                await old.close()
            if old.ended.done():  # the server closed the old socket before the new one was subscribed
                for consumer in self.consumers:
                    consumer.reconcile = True
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
        """Open a socket and subscribe it, retrying with backoff; one socket at a time."""
        link: _Link = await self._retrying(self._open)
        self.subscribed = True
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
        self.tell(
            logging.WARNING,
            f"The live feed has no socket (attempt {state.attempt_number} failed: {_describe(failure)}); "
            f"next attempt in {delay:.1f} s",
        )
        if isinstance(failure, _TokenRefusedError) and self.token is not None:
            self.ended_token, self.token = self.token, None

    async def _open(self) -> _Link:
        token = self.token
        if token is None or token.seconds_left() <= 0:  # none, or the backoff outlived it
            token = await self._new_token()
        while not self._plan():  # every consumer failed: connect for the next one, if any comes
            self.changed.clear()
            await self.changed.wait()
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
        link = _Link(self, ws, token)
        link.start()
        try:
            self.topics = ()
            await self._retopic(link)
        except BaseException:
            await link.close()
            raise
        return link

    # Topics

    def _plan(self) -> tuple[Subscription, ...]:
        """The topics that cover every consumer; consumers the plan cannot hold fail, newest first."""
        token = self.token
        while True:
            live = [c for c in self.consumers if not c.failed]
            if token is not None:
                for consumer in live:
                    try:  # the channels only: topics.plan fits the count
                        check_plan(consumer.subscriptions, token.allowed_channels, sys.maxsize)
                    except SfiSubscriptionError as exc:
                        consumer.fail(exc)
                live = [c for c in live if not c.failed]
            limit = token.max_subscribe_per_connection if token is not None else 1 << 30
            try:
                return topics.plan((s for c in live for s in c.subscriptions), limit)
            except SfiSubscriptionError as exc:
                if not live:
                    return ()
                live[-1].fail(exc)

    async def _retopic(self, link: _Link) -> None:
        """Subscribe what the consumers need now and unsubscribe what none needs; new consumers reconcile."""
        wanted = self._plan()
        planned = list(self.consumers)  # not those that join meanwhile: their topics may be missing
        held = self.topics
        adding = [t for t in wanted if t not in held]
        dropping = [t for t in held if t not in wanted]
        if adding and len(held) + len(adding) > link.token.max_subscribe_per_connection:
            # No room to subscribe first: the dropped topics' events may be missed meanwhile.
            for topic in dropping:
                await link.command(topic, "unsubscribe")
            self._gap()
            dropping = []
        for topic in adding:
            try:
                await link.command(topic, "subscribe")
            except SfiSubscriptionError as exc:
                for consumer in self.consumers:
                    if any(topics.covers(topic, s) for s in consumer.subscriptions):
                        consumer.fail(exc)
                self.changed.set()  # plan again without them
                wanted = tuple(t for t in wanted if t != topic)
        for topic in dropping:
            await link.command(topic, "unsubscribe")
        self.topics = wanted
        shared = len(self.consumers)
        for consumer in planned:
            if consumer.failed:
                continue
            consumer.live = True
            if not consumer.told:
                consumer.told = True
                its = [t.topic_key for t in wanted if any(topics.covers(t, s) for s in consumer.subscriptions)]
                consumer.notice(
                    logging.INFO,
                    f"Live feed connected: subscribed to {', '.join(its)} "
                    f"on one socket shared by {shared} trigger{'s' * (shared != 1)}",
                )

    # Reconciliation

    def _reconcile_soon(self) -> None:
        for consumer in self.consumers:
            if consumer.baseline and not _rest_backed(consumer):  # nothing of theirs is in REST
                consumer.baseline = consumer.reconcile = False
        if (self.reconciling is None or self.reconciling.done()) and self._due():
            self.reconciling = asyncio.create_task(self._reconcile())

    def _due(self) -> list[_Consumer]:
        # While a socket is subscribed, a baseline waits for its topics: read then, it needs no second read.
        return [
            c
            for c in self.consumers
            if not c.failed
            and ((c.live and (c.reconcile or c.baseline)) or (c.baseline and not self.subscribed))
            and _rest_backed(c)
        ]

    async def _reconcile(self) -> None:
        """Fetch the watched matches from REST, one call each: baselines, and what the consumers missed."""
        loop = asyncio.get_running_loop()
        while self._due():
            if loop.time() - self.read_at < RECONCILE_GATHER_SECONDS:
                await self._gather()
            if not (due := self._due()):
                continue
            self.read_at = loop.time()
            for consumer in due:
                # A baseline read while its topics are subscribed leaves nothing to miss: later events come live.
                consumer.reconcile = consumer.baseline and not consumer.live
            failure: SfiError | None = None
            try:
                records = await in_thread(self._fetch, due)
            except SfiError as exc:
                failure = exc
            if failure is not None:
                self.tell(logging.WARNING, f"The live feed could not read the matches' REST records ({failure})")
                for consumer in due:
                    if consumer.baseline:  # live events rather than none: no baseline, no backfill
                        consumer.baseline = consumer.reconcile = False
                    else:
                        consumer.reconcile = True
                await self.hook.reconnect_sleep(RECONCILE_RETRY_SECONDS)
                continue
            now_ms = round(time.time() * 1000)
            found = [e for record in records for e in backfill.events_from_match(record, now_ms=now_ms)]
            for consumer in due:
                selected = [e for e in found if consumer.covers(e)]
                if consumer.baseline:
                    consumer.baseline = False
                    baseline = {e.key for e in selected}
                    consumer.before.update(baseline)
                    if consumer.on_baseline is not None:
                        consumer.on_baseline(baseline)
                    continue
                since = [e for e in selected if e.key not in consumer.before]
                missed = backfill.missing(since, consumer.dedupe)
                for event in missed:
                    consumer.offer(event)
                if missed:
                    consumer.notice(logging.INFO, f"Fetched {len(missed)} missed live events through REST")

    async def _gather(self) -> None:
        """Wait for the triggers that join meanwhile, to serve them in one pass (a lost socket ends the wait)."""
        self.gathering = asyncio.ensure_future(self.hook.reconcile_sleep(RECONCILE_GATHER_SECONDS))
        try:
            await asyncio.wait([self.gathering])
        finally:
            await stop(self.gathering)

    def _fetch(self, due: Sequence[_Consumer]) -> list[Any]:
        """The records of every match the ``due`` consumers watch (blocking: runs in a thread)."""
        wanted: dict[str, None] = {}
        wide = False
        for consumer in due:
            for subscription in _rest_backed(consumer):
                if subscription.scope == "match" and subscription.id is not None:
                    wanted[subscription.id] = None
                else:
                    wide = True
            if consumer.restored:  # a restart: the matches it saw before, except those it saw end
                seen = consumer.dedupe.matches("MAIN")
                wanted.update(dict.fromkeys(m for m in seen if not consumer.dedupe.seen(f"MAIN:{m}:match_end")))
        if wide:
            leagues = {s.id for c in due for s in _rest_backed(c) if s.scope == "league"}
            everything = any(s.scope == "all" for c in due for s in _rest_backed(c))
            known = dict(self.in_play)
            for item in self.hook.api.live():
                league = str((item.get("championship") or {}).get("id", ""))
                if item.get("id"):
                    known[str(item["id"])] = league
            wanted.update(dict.fromkeys(m for m, league in known.items() if everything or league in leagues))
        records = []
        for match_id in wanted:
            try:
                records.append(self.hook.api.match(match_id))
            except SfiError as exc:
                if getattr(exc, "http_status", None) != 404:
                    raise
        for consumer in due:
            consumer.restored = False
        return records


# The shared feeds of each event loop (a triggerer has one; tests start several), by API key digest.
_FEEDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _SharedFeed]] = weakref.WeakKeyDictionary()


class _Link:
    """One open socket: reads frames, hands events to the shared feed, answers commands, and pings."""

    def __init__(self, feed: _SharedFeed, ws: ClientConnection, token: WsToken):
        self.feed = feed
        self.hook = feed.hook
        self.ws = ws
        self.token = token
        self.last_frame = time.monotonic()
        # Resolves with why the link ended: a close code, "stalled" (the socket may still be open), or the
        # name of an error frame that ended it.
        self.ended: asyncio.Future[int | str] = asyncio.get_running_loop().create_future()
        self.answers: dict[str, asyncio.Future[Frame]] = {}
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

    async def command(self, topic: Subscription, action: str) -> None:
        """Send ``subscribe`` or ``unsubscribe`` for ``topic`` and wait for its answer."""
        answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self.answers[topic.topic_key] = answer
        try:
            try:
                await self.ws.send(topic.command(action))
            except ConnectionClosed:
                raise _RetryError(f"closed while sending {action} {topic.topic_key}") from None
            waiting: list[asyncio.Future[Any]] = [answer, self.ended]
            done, _ = await asyncio.wait(waiting, timeout=self.hook.open_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.answers.pop(topic.topic_key, None)
        if answer not in done:
            why = self.ended.result() if self.ended.done() else "no answer"
            if why in TOKEN_CLOSE_CODES:
                raise _TokenRefusedError(f"closed while subscribing (code {why})")
            raise _RetryError(f"{action} {topic.topic_key} failed: {why}")
        frame = answer.result()
        if frame.type == "error":
            code = frame.error_code
            text = f"{topic.topic_key}: {code}: {str(frame.message.get('message'))[:200]}"
            if code in FINAL_ERRORS:
                raise SfiSubscriptionError(f"the live feed refused the subscription {text}", error_code=code)
            raise _RetryError(f"{action} failed, {text}")

    def take(self, frame: str | bytes) -> None:
        """Handle one frame: an event goes to the feed, an answer to its command, an error is logged by name."""
        self.last_frame = time.monotonic()
        try:
            parsed = parse_frame(frame)
        except MalformedFrameError as exc:
            self.hook.log.warning("Skipped a malformed frame from the live feed: %s", exc)
            return
        if isinstance(parsed, FeedEvent):
            self.feed.dispatch(parsed)
            return
        if not parsed.known:
            seen = self.unknown_types.get(parsed.type, 0)
            self.unknown_types[parsed.type] = seen + 1
            if not seen:
                self.hook.log.info(
                    "The live feed sends %r messages, which this client does not know: skipping them", parsed.type
                )
            return
        if parsed.type in ("subscribed", "unsubscribed", "error"):
            for key, answer in self.answers.items():
                if not answer.done() and (parsed.message.get("topicKey") == key or _about(parsed, key)):
                    answer.set_result(parsed)
                    return
        if parsed.type == "error":
            code = parsed.error_code or "an unnamed error"
            self.feed.tell(
                logging.WARNING, f"The live feed reported {code}: {str(parsed.message.get('message'))[:200]}"
            )
            if code == "CONNECTION_LIMIT" and not self.ended.done():
                self.ended.set_result(code)

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                self.take(frame)
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


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _rest_backed(consumer: _Consumer) -> list[Subscription]:
    """The subscriptions whose events REST also has: MAIN's (``_REALTIME`` ids differ from REST's)."""
    return [s for s in consumer.subscriptions if s.channel == "MAIN"]


def _about(frame: Frame, topic_key: str) -> bool:
    """Whether an ack or error without ``topicKey`` echoes the topic's channel, scope and id."""
    m = frame.message
    scope = m.get("scope")
    key = f"{m.get('channel')}:{scope}" if scope == "all" else f"{m.get('channel')}:{scope}:{m.get('id')}"
    return key == topic_key


def _final(exc: BaseException) -> bool:
    """Errors no retry cures: configuration, credentials, subscriptions the plan refuses, and bugs."""
    if isinstance(exc, (SfiConfigError, SfiAuthError, SfiSubscriptionError)):
        return True
    return not isinstance(exc, (_RetryError, SfiError, ConnectionClosed, OSError, TimeoutError))


def _describe(exc: BaseException | None) -> str:
    return "unknown" if exc is None else str(exc) or type(exc).__name__
