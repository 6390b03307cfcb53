"""SfiMatchEventSensor: wait for one live match event, e.g. the end of a match, and return it."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncGenerator, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

from airflow_sfi.events import Subscription
from airflow_sfi.exceptions import SfiConfigError, SfiError
from airflow_sfi.sensors.base import SfiBaseSensor
from airflow_sfi.templating import is_template
from airflow_sfi.triggers.match_event import event_type_list

if TYPE_CHECKING:
    from airflow.sdk import Context
    from airflow.triggers.base import TriggerEvent

    from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger


class SfiMatchEventSensor(SfiBaseSensor):
    """
    Wait until a live event happens, e.g. ``match_end`` of one match, and return it (its XCom).

    The return value is the event's payload: ``key``, ``channel``, ``type``, ``match_id``,
    ``league_id``, ``ts`` (milliseconds) and ``data``. Only events sent after the wait starts count
    (the vendor does not say that it replays). Deferrable by default: the WebSocket is held in the
    triggerer, not in a worker slot. ``timeout`` ends the wait (``soft_fail`` and ``never_fail`` skip
    instead of failing); a subscription the plan refuses fails at once.

    :param event_types: the event type(s) to wait for, e.g. ``"match_end"`` or ``["goal"]``.
    :param match_id: wait for an event of this match (templated).
    :param league_id: or of any match in this league (templated); neither: any match.
    :param channel: the channel to listen on: MAIN, or STATS/ODDS (or a ``_REALTIME`` one) for updates.
    :param sfi_conn_id: the Airflow connection.
    :param deferrable: wait in the triggerer (default); False holds the socket open in the worker.
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
        sfi_conn_id: str = "sfi_default",
        deferrable: bool = True,
        ping_interval: float = 30.0,
        renew_margin: datetime.timedelta = datetime.timedelta(minutes=5),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if match_id is not None and league_id is not None:
            raise SfiConfigError(f"{self.task_id}: give match_id or league_id, not both")
        self.event_types = event_type_list(event_types, self.task_id)
        self.match_id = match_id
        self.league_id = league_id
        self.channel = channel
        self.sfi_conn_id = sfi_conn_id
        self.deferrable = deferrable
        self.ping_interval = ping_interval
        self.renew_margin = renew_margin
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
        from airflow_sfi.triggers.match_event import SfiMatchEventWaitTrigger

        subscription = self.subscription()
        return SfiMatchEventWaitTrigger(
            sfi_conn_id=self.sfi_conn_id,
            channel=subscription.channel,
            scope=subscription.scope,
            scope_id=subscription.id,
            event_types=self.event_types,
            ping_interval=self.ping_interval,
            renew_margin_seconds=self.renew_margin.total_seconds(),
        )

    def execute(self, context: Context) -> Any:
        trigger = self.trigger()
        what = f"{' or '.join(self.event_types) or 'any event'} on {trigger.subscription.topic_key}"
        self.log.info("Waiting for %s", what)
        if self.deferrable:
            self.defer(
                trigger=trigger, method_name="execute_complete", timeout=datetime.timedelta(seconds=self.timeout)
            )
        event = asyncio.run(_first_event(trigger, self.timeout))
        if event is None:
            if self.soft_fail or self.never_fail:
                raise AirflowSkipException(f"No {what} within {self.timeout:g} s: skipping")
            raise AirflowSensorTimeout(f"No {what} within {self.timeout:g} s")
        return self.execute_complete(context, event)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Return the event the trigger found, or fail with the trigger's error."""
        if event.get("status") != "event":
            raise SfiConfigError(f"{self.task_id}: {event.get('message')}")
        found = event["event"]
        self.log.info("Live event %s of match %s: done", found["type"], found["match_id"])
        return found


async def _first_event(trigger: SfiMatchEventWaitTrigger, timeout: float) -> dict[str, Any] | None:
    """The trigger's first event in this process, or None after ``timeout`` seconds."""
    events = cast("AsyncGenerator[TriggerEvent, None]", trigger.run())
    try:
        first = await asyncio.wait_for(events.__anext__(), timeout)
    except (TimeoutError, asyncio.TimeoutError):
        return None
    finally:
        await events.aclose()
    payload: dict[str, Any] = first.payload
    return payload
