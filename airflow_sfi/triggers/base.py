"""
What the live-event triggers share. Their kwargs hold a connection id and a selection, never a
token: the token is fetched inside ``run()``.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sfi import defaults
from airflow_sfi.arguments import event_type_list
from airflow_sfi.protocol.messages import Deduplicator, FeedEvent, Subscription


class BriefEvent(TriggerEvent):
    """
    A TriggerEvent whose repr is one short line: the triggerer logs the repr of every event a trigger fires, and a
    payload may hold a whole match record. Nested values show as ``…``; subclasses may say more in :meth:`summary`.
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(payload)  # type: ignore[no-untyped-call]

    def summary(self) -> str:
        return ", ".join(f"{k}={v if isinstance(v, (str, int, float, bool)) else '…'}" for k, v in self.payload.items())

    def __repr__(self) -> str:
        return f"TriggerEvent<{self.summary()}>"

    __str__ = __repr__


class SfiFeedTrigger(BaseTrigger):
    """
    The selection of a live-event trigger, its kwargs, and its filtered stream.

    :param sfi_conn_id: the Airflow connection.
    :param channel: the channel to subscribe to (MAIN, STATS, ODDS or a ``_REALTIME`` one).
    :param scope: ``all``, ``match`` or ``league``.
    :param scope_id: the match or league id for those scopes.
    :param event_types: fire only for these (e.g. ``["goal"]``); all when empty.
    :param ping_interval: seconds between pings to the server.
    :param renew_margin: renew the token this long before it expires.
    """

    def __init__(
        self,
        *,
        sfi_conn_id: str = defaults.CONN_ID,
        channel: str = "MAIN",
        scope: str = "all",
        scope_id: str | None = None,
        event_types: list[str] | None = None,
        ping_interval: float = defaults.PING_INTERVAL,
        renew_margin: datetime.timedelta = defaults.RENEW_MARGIN,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sfi_conn_id = sfi_conn_id
        self.channel = channel
        self.scope = scope
        self.scope_id = scope_id
        self.event_types = event_type_list(event_types, type(self).__name__)
        self.ping_interval = ping_interval
        self.renew_margin = renew_margin
        self.subscription = Subscription(channel, scope, scope_id)  # checked here, at DAG parse

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "sfi_conn_id": self.sfi_conn_id,
                "channel": self.channel,
                "scope": self.scope,
                "scope_id": self.scope_id,
                "event_types": self.event_types,
                "ping_interval": self.ping_interval,
                "renew_margin": self.renew_margin,
            },
        )

    async def matching(
        self,
        dedupe: Deduplicator,
        *,
        history: bool = False,
        before: Iterable[str] = (),
        on_baseline: Callable[[set[str]], None] | None = None,
        flush_after: float | None = None,
    ) -> AsyncGenerator[FeedEvent | None, None]:
        """
        The selected events, each once, until cancelled; configuration errors raise.

        :param dedupe: remembers the events already fired.
        :param history: ``dedupe`` holds events fired before a restart: what was missed since comes through REST.
        :param before: keys of events that happened before the trigger began: never fetched through REST.
        :param on_baseline: called with the keys of the baseline, when one is taken (see :meth:`SfiFeedHook.events`).
        :param flush_after: a None this long after the last event of a burst (see :meth:`SfiFeedHook.events`).
        """
        from airflow_sfi.hooks.feed import SfiFeedHook

        hook = SfiFeedHook(self.sfi_conn_id, ping_interval=self.ping_interval, renew_margin=self.renew_margin)
        events = hook.events(
            [self.subscription],
            dedupe,
            event_types=self.event_types,
            history=history,
            before=before,
            on_baseline=on_baseline,
            label=self.label,
            flush_after=flush_after,
        )
        # Closed explicitly: a generator left at a yield would keep the trigger in the shared feed until collected.
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                yield event

    @property
    def label(self) -> str:
        """What this trigger waits for, in its log lines."""
        kinds = " or ".join(self.event_types) or "any event"
        return f"{kinds} on {self.subscription.topic_key}"
