"""SfiMatchStatusSensor: wait until a match reaches a status (``ENDED`` by default), and return its record."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import PokeReturnValue

from airflow_sfi import defaults
from airflow_sfi.arguments import checked_match_id, is_template, status_list
from airflow_sfi.exceptions import SfiConfigError, SfiError, SfiRateLimitError, error_from_payload
from airflow_sfi.sensors.base import SfiBaseSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.protocol.envelope import RateLimit
    from airflow_sfi.triggers.match_status import SfiMatchStatusTrigger


class SfiMatchStatusSensor(SfiBaseSensor):
    """
    Wait until a match's status (``matches/view/basic``) is ``status``, and return the match record (its XCom).

    The fallback of :class:`~airflow_sfi.sensors.match_event.SfiMatchEventSensor` where the plan has
    no live feed, and the way to land a match's final record after full time: the REST record can
    lag the feed's ``match_end``. The record is the API's result item as it came (JSON-safe): ``id``,
    ``status``, ``timer``, ``teamA``/``teamB`` with their ``score``, ``events`` (goals and cards)...

    By default it waits in the triggerer (:class:`~airflow_sfi.triggers.match_status.SfiMatchStatusTrigger`),
    holding no worker slot: the first poll goes out at once, then one every ``poll_interval`` seconds,
    spaced out so that the polls never use the last of the rate-limit window before it resets, and
    after a 429 the next waits for the reset. With ``deferrable=False`` it runs in ``poke`` or
    ``reschedule`` mode like any sensor, every ``poke_interval`` (default ``poll_interval``), with the
    same decisions: one function says when the status counts, one how long the quota asks to wait
    (which lengthens the wait between pokes, up to the timeout). In every mode transport failures,
    5xx and garbled answers are polled again; a bad connection, credential or plan (an
    :class:`~airflow_sfi.exceptions.SfiAuthError`) or an unknown match id fails the task with the
    error's own class. ``timeout``, ``soft_fail`` and ``never_fail`` work as on any sensor.

    :param match_id: the match's id (templated), a non-empty string.
    :param status: the status to wait for, or a list of them. The vendor documents ``ENDED``; any
        non-empty string is accepted, compared case-insensitively with ``_`` read as a space (the
        sandbox also answers ``NOT STARTED`` and ``IN PLAY``).
    :param sfi_conn_id: the Airflow connection; its plan must reach ``matches/view/basic`` (PRO and up).
    :param poll_interval: seconds between polls while the quota is plentiful.
    :param deferrable: wait in the triggerer (the default); False: ``poke`` or ``reschedule`` mode.
    """

    template_fields: Sequence[str] = ("match_id",)
    ui_color = "#e8eef4"

    def __init__(
        self,
        *,
        match_id: str,
        status: str | Sequence[str] = "ENDED",
        sfi_conn_id: str = defaults.CONN_ID,
        poll_interval: float = 60.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
            raise SfiConfigError(  # before the base class, which would refuse it as poke_interval
                f"{kwargs.get('task_id')}: poll_interval must be a positive number of seconds, got {poll_interval!r}"
            )
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.statuses = status_list(status, self.task_id)
        if (
            (isinstance(match_id, str) and not is_template(match_id))
            or match_id is None
            or isinstance(match_id, (int, float, bool))
        ):
            checked_match_id(match_id, self.task_id)  # a literal is checked now, at DAG parse
        self.match_id = match_id
        self.sfi_conn_id = sfi_conn_id
        self.poll_interval = float(poll_interval)
        self.deferrable = deferrable
        self._quota_wait = 0.0
        self._last_rate_limit: RateLimit | None = None

    @functools.cached_property
    def hook(self) -> SfiHook:
        """The hook of the ``poke`` and ``reschedule`` modes."""
        from airflow_sfi.hooks.sfi import SfiHook

        return SfiHook(self.sfi_conn_id)

    def trigger(self) -> SfiMatchStatusTrigger:
        """The deferred wait's trigger (``match_id`` rendered by now)."""
        from airflow_sfi.triggers.match_status import SfiMatchStatusTrigger

        return SfiMatchStatusTrigger(
            sfi_conn_id=self.sfi_conn_id,
            match_id=checked_match_id(self.match_id, self.task_id),
            statuses=self.statuses,
            poll_interval=self.poll_interval,
        )

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        try:
            trigger = self.trigger()
        except SfiConfigError as exc:
            self.skip_if_never_fail(exc)
            raise
        self.log.info(
            "Waiting in the triggerer for match %s to be %s, polling every %g s",
            trigger.match_id,
            " or ".join(self.statuses),
            self.poll_interval,
        )
        self.defer(trigger=trigger, method_name="execute_complete", timeout=datetime.timedelta(seconds=self.timeout))

    def poke(self, context: Context) -> PokeReturnValue:
        from airflow_sfi.hooks.sfi import only_item
        from airflow_sfi.triggers.match_status import (
            ENDPOINT,
            is_transient,
            next_poll_in,
            rate_limited_wait,
            status_reached,
        )

        match_id = checked_match_id(self.match_id, self.task_id)
        self._quota_wait = 0.0
        try:
            envelope = self.hook.get(ENDPOINT, i=match_id)
            record = only_item(envelope, "match")
        except SfiRateLimitError as exc:
            self._quota_wait = rate_limited_wait(exc, self.poke_interval, self._last_rate_limit)
            self.log.warning("%s; poking match %s again after the reset", exc, match_id)
            return PokeReturnValue(is_done=False)
        except SfiError as exc:
            if not is_transient(exc):
                raise
            self.log.warning("%s; poking match %s again", exc, match_id)
            return PokeReturnValue(is_done=False)
        if status_reached(record, self.statuses):
            self.log.info("Match %s is %s: done", match_id, record.get("status"))
            return PokeReturnValue(is_done=True, xcom_value=record)
        self._last_rate_limit = envelope.rate_limit
        self._quota_wait = next_poll_in(self.poke_interval, envelope.rate_limit)
        self.log.info("Match %s is %s, not %s", match_id, record.get("status"), " or ".join(self.statuses))
        return PokeReturnValue(is_done=False)

    def _get_next_poke_interval(
        self, started_at: datetime.datetime | float, run_duration: Callable[[], float], poke_count: int
    ) -> float:
        # The base class's wait, lengthened to what the quota asks (up to the timeout, which it then checks).
        interval: float = super()._get_next_poke_interval(started_at, run_duration, poke_count)
        if self._quota_wait > interval:
            left = float(self.timeout) - run_duration()
            return max(interval, min(self._quota_wait, left + 1.0))
        return interval

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Return the match record the trigger found, or raise the trigger's error, of its own class."""
        if event.get("status") != "reached":
            raise error_from_payload(event)
        record = event["match"]
        self.log.info("Match %s is %s: done", record.get("id"), record.get("status"))
        return record
