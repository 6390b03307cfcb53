"""Live-event triggers: one for an ``AssetWatcher`` (every matching event), one for a deferred sensor (the first)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_sfi.aio import stop
from airflow_sfi.exceptions import SfiError, error_payload
from airflow_sfi.protocol.messages import Deduplicator, FeedEvent
from airflow_sfi.triggers.base import BriefEvent, SfiFeedTrigger

# After a configuration error a watcher waits this long before trying again: raising would make the
# triggerer restart it at once, in a loop.
CONFIGURATION_RETRY_SECONDS = 600.0
# The asset state key under which a watcher keeps its dedupe state.
STATE_KEY = "sfi_feed_dedupe"
# Airflow 3.3.2 creates an asset-triggered run from the events up to the first one queued for it: an
# event that arrives while that run is being created waits for the next event on the asset (#54659,
# #56050). So this long after the last of a burst (an event within this long of the one before), the
# watcher fires a flush marker, {"type": "flush"}, which carries no event but brings any such
# waiting event into a run.
FLUSH_AFTER_SECONDS = 5.0
# The marker's payload: no "key", so match_events() leaves it out, and it says what it is in the asset's history.
FLUSH_MARKER = {"type": "flush", "about": "not a live event; see https://github.com/apache/airflow/issues/54659"}
# A fired event reaches the metadata database at the triggerer's next sync, about a second later: the
# stored state vouches for it only this long after it fired. A crash in between fires it again after
# the restart (when the server replays it), where vouching at once would lose it.
VOUCH_AFTER_SECONDS = 2.0
# Keys in the stored state: enough to cover any replay after a restart.
STATE_KEYS = 256
# A watcher that finds a stored state may be taking over from one still running on a triggerer that
# missed its heartbeats: Airflow cancels that one at its next loop, and it then stores what it fired
# (on_kill). The new one waits this long and reads the state again before it fetches what it missed.
HANDOFF_SECONDS = 5.0


class _Fired(BriefEvent):
    """A watcher's or wait's event: ``goal of match <id>, backfilled``, or the flush marker."""

    def __init__(self, payload: dict[str, Any]) -> None:  # declared again for mypy's pydantic plugin
        super().__init__(payload)

    def summary(self) -> str:
        if "key" not in self.payload and self.payload.get("type") == "flush":
            return "flush marker, not a live event"
        event = self.payload.get("event", self.payload)
        how = ", backfilled" if event.get("backfilled") else ""
        return f"{event.get('type')} of match {event.get('match_id')}{how}"


class SfiMatchEventTrigger(SfiFeedTrigger, BaseEventTrigger):
    """
    Fire on every live event that matches, for an ``AssetWatcher``: each one updates the asset.

    Each event's payload is :meth:`~airflow_sfi.protocol.messages.FeedEvent.to_payload`: the event with its
    dedupe ``key``. The dedupe state (recent keys and the watermark) is kept in the asset's state
    store (Airflow 3.3; in memory below), so a restarted watcher does not fire again for events it
    fired for more than :data:`VOUCH_AFTER_SECONDS` before it crashed (one it fired just before may
    fire again), nor for any it fired before Airflow cancelled it with its triggerer still running
    (:data:`HANDOFF_SECONDS`). After a burst it fires a flush marker (:data:`FLUSH_AFTER_SECONDS`). A
    configuration error (a channel the plan lacks, a bad key) is logged and retried every
    :data:`CONFIGURATION_RETRY_SECONDS`, not raised.

    Parameters as :class:`~airflow_sfi.triggers.base.SfiFeedTrigger`.
    """

    _keeper: _StateKeeper | None = None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        store, state = await self._restore()
        if state is not None:
            await asyncio.sleep(HANDOFF_SECONDS)
            store, state = await self._restore()
        dedupe = Deduplicator.from_state(state)
        keeper = self._keeper = None if store is None else _StateKeeper(store, state, VOUCH_AFTER_SECONDS)
        before: set[str] = set(keeper.before) if keeper is not None else set()
        try:
            while True:
                failure = "the live feed stopped"
                try:
                    # A stored state (fired events, or only the baseline taken when it began) is a history: a
                    # restart after a crash or a pause fetches what it missed.
                    history = state is not None or len(dedupe) > 0 or bool(before)
                    matching = self.matching(
                        dedupe,
                        history=history,
                        before=before,
                        on_baseline=before.update if keeper is None else keeper.began,  # kept for a restart
                        flush_after=FLUSH_AFTER_SECONDS,
                    )
                    async with contextlib.aclosing(matching) as events:
                        async for event in events:
                            if event is None:
                                yield _Fired({**FLUSH_MARKER, "watermark": dedupe.watermark})
                                continue
                            yield _Fired(event.to_payload())
                            if keeper is not None:
                                keeper.fired(event)
                except SfiError as exc:
                    failure = str(exc)
                self.log.error(
                    "The live feed cannot run as configured: %s. Trying again in %.0f s.",
                    failure,
                    CONFIGURATION_RETRY_SECONDS,
                )
                await asyncio.sleep(CONFIGURATION_RETRY_SECONDS)
        finally:
            if keeper is not None:
                await keeper.close()

    async def on_kill(self) -> None:
        """
        Airflow cancelled this watcher with its triggerer running (a user's action, or the watcher moved to
        another triggerer): what it fired is in the triggerer's hands, so the stored state vouches for it now.
        """
        if self._keeper is not None:
            await self._keeper.vouch_all()

    async def _restore(self) -> tuple[Any, Any]:
        """
        (the asset's state store, the stored dedupe state); (None, None) when there is none to use:
        below Airflow 3.3, which has no asset state store, the dedupe state lives in memory only.
        """
        store = getattr(self, "asset_state_store", None)  # Airflow 3.3 and later
        if store is None:
            return None, None
        try:
            return store, await store.aget(STATE_KEY)
        except ValueError:  # the store serves several assets: it must be told which
            self.log.warning("This trigger watches several assets: its dedupe state lives in memory only")
            return None, None


class _StateKeeper:
    """
    Stores a watcher's dedupe state in the asset state store, vouching for each fired event ``after`` seconds
    after it fired (at most one write per quarter of ``after``, not one per event).

    :param store: the asset's state store accessor.
    :param state: the state stored before, or None.
    :param after: seconds from firing an event to vouching for it.
    """

    def __init__(self, store: Any, state: Any, after: float) -> None:
        self.store = store
        self.after = after
        self.vouched = Deduplicator.from_state(state, capacity=STATE_KEYS)
        stored = state.get("before") if isinstance(state, dict) else None
        self.before: list[str] = [k for k in stored if isinstance(k, str)] if isinstance(stored, list) else []
        self._fired: collections.deque[tuple[float, FeedEvent]] = collections.deque()
        self._writer: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()

    def began(self, keys: Iterable[str]) -> None:
        """The baseline its first REST look recorded: stored at once, so a restart reconciles from it."""
        self.before = sorted(set(self.before).union(keys))[-STATE_KEYS:]
        write = asyncio.create_task(self._write())
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    def fired(self, event: FeedEvent) -> None:
        self._fired.append((asyncio.get_running_loop().time(), event))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_when_due())

    async def vouch_all(self) -> None:
        """Vouch for every fired event at once, and store the state."""
        while self._fired:
            self.vouched.first_time(self._fired.popleft()[1])
        await self._write()

    async def close(self) -> None:
        """Stop the writer; events fired less than ``after`` ago stay unvouched (they may fire again)."""
        await stop(self._writer, *self._writes)

    async def _write(self) -> None:
        await self.store.aset(STATE_KEY, {**self.vouched.to_state(STATE_KEYS), "before": self.before})

    async def _write_when_due(self) -> None:
        loop = asyncio.get_running_loop()
        written = -math.inf
        while self._fired:
            # Due, and not within a quarter of ``after`` of the last write: a steady stream is one write per
            # quarter, not one per event (each vouched at most 1.25 ``after`` after it fired).
            due = max(self._fired[0][0] + self.after, written + self.after / 4)
            await asyncio.sleep(max(due - loop.time(), 0.0))
            while self._fired and self._fired[0][0] + self.after <= loop.time():
                self.vouched.first_time(self._fired.popleft()[1])
            await self._write()
            written = loop.time()


class SfiMatchEventWaitTrigger(SfiFeedTrigger):
    """
    Fire once, on the first live event that matches: the deferred wait of :class:`SfiMatchEventSensor`.

    Yields ``{"status": "event", "event": <payload>}``, or ``{"status": "error", ...}`` (see
    :func:`~airflow_sfi.exceptions.error_payload`) when the feed cannot run as configured.

    :param seen: the keys of the events that had happened when the wait began (the match's REST record then):
        other events missed while no socket was subscribed, even before a triggerer restart, are fetched through
        REST and count. None: what REST shows once the first socket is subscribed counts as before the wait.
    Other parameters as :class:`~airflow_sfi.triggers.base.SfiFeedTrigger`.
    """

    def __init__(self, *, seen: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seen = seen

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "seen": self.seen}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        failure = None
        matching = self.matching(Deduplicator(), history=self.seen is not None, before=self.seen or ())
        try:
            async with contextlib.aclosing(matching) as events:
                async for event in events:
                    if event is None:  # no flush_after: never
                        continue
                    how = " (fetched through REST after a gap)" if event.backfilled else ""
                    self.log.info("Live event %s of match %s arrived%s", event.type, event.match_id, how)
                    yield _Fired({"status": "event", "event": event.to_payload()})
                    return
        except SfiError as exc:
            failure = exc
        yield TriggerEvent({"status": "error", **error_payload(failure)})  # type: ignore[no-untyped-call]
