"""SfiMatchEventSensor: wait in the triggerer for one live match event, e.g. the end of a match, and return it."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_sfi import defaults
from airflow_sfi.arguments import check_renew_margin, event_type_list, is_template
from airflow_sfi.exceptions import SfiAuthError, SfiConfigError, SfiError, error_from_payload
from airflow_sfi.protocol.messages import Subscription
from airflow_sfi.sensors.base import SfiBaseSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger


class SfiMatchEventSensor(SfiBaseSensor):
    """
    Wait until a live event happens, e.g. ``match_end`` of one match, and return it (its XCom).

    Deferrable only: the WebSocket is held in the triggerer, never in a worker slot, so ``mode``
    and ``poke_interval`` do not apply (``deferrable=False`` or ``mode="reschedule"`` is an
    :class:`~airflow_sfi.exceptions.SfiConfigError`). The return value is the event's payload:
    ``key``, ``channel``, ``type``, ``match_id``, ``league_id``, ``ts`` (milliseconds) and ``data``.
    Only events after the wait starts count; a wait on one MAIN match reads the match's REST record when it
    defers, so what a gap in the feed missed (a triggerer restart too) is fetched from REST. ``timeout`` ends
    the wait (``soft_fail`` and ``never_fail`` skip instead of failing). A feed that cannot run as
    configured fails the task with the error's own class (an auth error stays an
    :class:`~airflow_sfi.exceptions.SfiAuthError`).

    :param event_types: the event type(s) to wait for, e.g. ``"match_end"`` or ``["goal"]``.
    :param match_id: wait for an event of this match (templated).
    :param league_id: or of any match in this league (templated); neither: any match.
    :param channel: the channel to listen on: MAIN, or STATS/ODDS (or a ``_REALTIME`` one) for updates.
    :param sfi_conn_id: the Airflow connection.
    :param deferrable: must stay True: the wait always runs in the triggerer.
    :param ping_interval: seconds between pings to the server.
    :param renew_margin: renew the token this long before it expires.
    """

    template_fields: Sequence[str] = ("match_id", "league_id")
    ui_color = "#e8f4e8"

    def __init__(
        self,
        *,
        event_types: Sequence[str] | str = "match_end",
        match_id: str | None = None,
        league_id: str | None = None,
        channel: str = "MAIN",
        sfi_conn_id: str = defaults.CONN_ID,
        deferrable: bool = True,
        ping_interval: float = defaults.PING_INTERVAL,
        renew_margin: datetime.timedelta = defaults.RENEW_MARGIN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not deferrable or self.mode != "poke":
            raise SfiConfigError(
                f"{self.task_id}: SfiMatchEventSensor always waits in the triggerer; "
                "drop deferrable=False and mode='reschedule'"
            )
        if match_id is not None and league_id is not None:
            raise SfiConfigError(f"{self.task_id}: give match_id or league_id, not both")
        self.event_types = event_type_list(event_types, self.task_id)
        self.match_id = match_id
        self.league_id = league_id
        self.channel = channel
        self.sfi_conn_id = sfi_conn_id
        self.ping_interval = ping_interval
        self.renew_margin = check_renew_margin(renew_margin, self.task_id)
        if not is_template(match_id) and not is_template(league_id):
            self.subscription()  # literals are checked now, at DAG parse

    def subscription(self) -> Subscription:
        """What the wait subscribes to (ids rendered by now)."""
        scope, scope_id = ("match", self.match_id) if self.match_id else ("league", self.league_id)
        if not scope_id:
            scope, scope_id = "all", None
        try:
            return Subscription(self.channel, scope, scope_id)
        except SfiError as exc:
            raise SfiConfigError(f"{self.task_id}: {exc}") from None

    def trigger(self) -> SfiMatchEventWaitTrigger:
        """The deferred wait's trigger."""
        from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger

        subscription = self.subscription()
        return SfiMatchEventWaitTrigger(
            sfi_conn_id=self.sfi_conn_id,
            channel=subscription.channel,
            scope=subscription.scope,
            scope_id=subscription.id,
            event_types=self.event_types,
            ping_interval=self.ping_interval,
            renew_margin=self.renew_margin,
            seen=self.seen(subscription),
        )

    def seen(self, subscription: Subscription) -> list[str] | None:
        """
        For a wait on one MAIN match: the keys of its events so far, from its REST record, so that a gap in the
        live feed (a triggerer restart too) is filled from REST. None for other waits, or when REST cannot say.
        """
        if subscription.scope != "match" or subscription.channel != "MAIN" or subscription.id is None:
            return None
        import pendulum

        from airflow_sfi.hooks.sfi import SfiHook
        from airflow_sfi.protocol.backfill import events_from_match

        try:
            record = SfiHook(self.sfi_conn_id).match(subscription.id)
        except SfiError as exc:
            failure = exc
        else:
            now_ms = round(pendulum.now("UTC").timestamp() * 1000)
            return [event.key for event in events_from_match(record, now_ms=now_ms)]
        if isinstance(failure, (SfiConfigError, SfiAuthError)):
            raise failure
        self.log.warning("The match's REST record is not available (%s): events missed in a gap stay missed", failure)
        return None

    def execute(self, context: Context) -> Any:
        trigger = self.trigger()
        self.log.info(
            "Waiting in the triggerer for %s on %s",
            " or ".join(self.event_types) or "any event",
            trigger.subscription.topic_key,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=datetime.timedelta(seconds=self.timeout))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Return the event the trigger found, or raise the trigger's error, of its own class."""
        if event.get("status") != "event":
            raise error_from_payload(event)
        found = event["event"]
        self.log.info("Live event %s of match %s: done", found["type"], found["match_id"])
        return found
