"""
SfiMatchStatusTrigger: poll ``matches/view/basic`` until a match reaches a status, spending the quota evenly.

The decisions here are shared with :class:`~airflow_sfi.sensors.match_status.SfiMatchStatusSensor`'s
``poke`` and ``reschedule`` modes: when a status counts (:func:`status_reached`), how long to wait
before the next poll (:func:`next_poll_in`, :func:`rate_limited_wait`) and which errors a later poll
may cure (:func:`is_transient`).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_sfi import defaults
from airflow_sfi.arguments import normalise_status
from airflow_sfi.exceptions import (
    SfiApiError,
    SfiConfigError,
    SfiError,
    SfiRateLimitError,
    SfiResponseError,
    SfiTransportError,
    error_payload,
)
from airflow_sfi.triggers.base import BriefEvent

if TYPE_CHECKING:
    from airflow_sfi.hooks.sfi import SfiAsyncHook
    from airflow_sfi.protocol.envelope import RateLimit

ENDPOINT = "matches/view/basic"
QUOTA_RESERVE_SHARE = 0.05
"""The share of the window's limit (at least one request) the polls leave to other tasks on the same key."""
RESET_MARGIN_SECONDS = 1.0
"""How long after the window's announced reset the next poll goes out: clocks differ, and Reset is rounded."""


def status_reached(record: object, statuses: Sequence[str]) -> bool:
    """
    Whether a match record's ``status`` is one of ``statuses`` (normalised by :func:`status_list`).

    :param record: one result item of ``matches/view/basic``.
    :param statuses: the statuses waited for.
    """
    return isinstance(record, dict) and normalise_status(record.get("status", "")) in statuses


def quota_reserve(limit: int | None) -> int:
    """How many requests of a window of ``limit`` the polls leave to others: :data:`QUOTA_RESERVE_SHARE`, at least 1."""
    return max(1, math.ceil((limit or 0) * QUOTA_RESERVE_SHARE))


def next_poll_in(poll_interval: float, rate_limit: RateLimit | None, now: pendulum.DateTime | None = None) -> float:
    """
    Seconds until the next poll after an answer: ``poll_interval``, spaced out when the window runs low.

    With ``remaining`` requests left in the window until ``reset_at``, at most ``remaining - reserve``
    more polls go out before the reset (:func:`quota_reserve`): the wait is the longer of
    ``poll_interval`` and ``seconds to reset / (remaining - reserve)``; with nothing left to spend, it
    lasts until the reset (and :data:`RESET_MARGIN_SECONDS`). An answer without the rate-limit headers
    keeps ``poll_interval``.

    :param poll_interval: the wait when the quota is plentiful.
    :param rate_limit: what the latest answer's rate-limit headers said.
    :param now: the current time (default: now).
    """
    if rate_limit is None or rate_limit.remaining is None or rate_limit.reset_at is None:
        return poll_interval
    until_reset = (rate_limit.reset_at - (now or pendulum.now("UTC"))).total_seconds()
    if until_reset <= 0:
        return poll_interval
    polls = rate_limit.remaining - quota_reserve(rate_limit.limit)
    if polls <= 0:
        return max(poll_interval, until_reset + RESET_MARGIN_SECONDS)
    return max(poll_interval, until_reset / polls)


def rate_limited_wait(
    exc: SfiRateLimitError, poll_interval: float, last: RateLimit | None, now: pendulum.DateTime | None = None
) -> float:
    """
    Seconds to wait after a 429: until the window resets (and :data:`RESET_MARGIN_SECONDS`), never less
    than ``poll_interval``. Without a reset time in the 429, the latest answer's is used when it is still
    ahead; without either, ``poll_interval``.

    :param exc: the 429.
    :param poll_interval: the usual wait.
    :param last: what the latest successful answer's rate-limit headers said.
    :param now: the current time (default: now).
    """
    now = now or pendulum.now("UTC")
    reset_at = exc.reset_at
    if reset_at is None and last is not None and last.reset_at is not None and last.reset_at > now:
        reset_at = last.reset_at
    if reset_at is None:
        return poll_interval
    return max(poll_interval, (reset_at - now).total_seconds() + RESET_MARGIN_SECONDS)


def is_transient(exc: SfiError) -> bool:
    """
    Whether a later poll may succeed where this one failed: a transport failure, a 5xx or a garbled
    answer. A configuration, auth or other 4xx error would fail every poll alike.

    :param exc: what the hook raised (after its own retries).
    """
    if isinstance(exc, (SfiTransportError, SfiResponseError)):
        return True
    return isinstance(exc, SfiApiError) and max(exc.http_status or 0, exc.api_status or 0) >= 500


class SfiMatchStatusTrigger(BaseTrigger):
    """
    Poll one match (``matches/view/basic``) until its status is one of ``statuses``: the deferred wait of
    :class:`~airflow_sfi.sensors.match_status.SfiMatchStatusSensor`.

    The first poll goes out at once, the next ones every ``poll_interval`` seconds, spaced out when the
    rate-limit window runs low (:func:`next_poll_in`); after a 429 it sleeps until the window resets
    (:func:`rate_limited_wait`). Transport failures, 5xx and garbled answers are logged and polled again
    (after the hook's own retries). Yields ``{"status": "reached", "match": <the record>}``, or
    ``{"status": "error", ...}`` (see :func:`~airflow_sfi.exceptions.error_payload`) for an error no poll
    can cure: the connection, the credential or the plan (an
    :class:`~airflow_sfi.exceptions.SfiAuthError`), an unknown match id. The kwargs hold a connection id,
    never a credential: the hook reads the connection inside ``run()``.

    :param sfi_conn_id: the Airflow connection.
    :param match_id: the match's id.
    :param statuses: the statuses to wait for, normalised (:func:`status_list`).
    :param poll_interval: seconds between polls while the quota is plentiful.
    """

    # How the trigger waits between polls; replaceable in tests.
    sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        sfi_conn_id: str = defaults.CONN_ID,
        match_id: str,
        statuses: list[str],
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sfi_conn_id = sfi_conn_id
        self.match_id = match_id
        self.statuses = list(statuses)
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_sfi.triggers.match_status.SfiMatchStatusTrigger",
            {
                "sfi_conn_id": self.sfi_conn_id,
                "match_id": self.match_id,
                "statuses": self.statuses,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        from airflow_sfi.hooks.sfi import SfiAsyncHook

        failure: SfiError
        try:
            async with SfiAsyncHook(self.sfi_conn_id) as hook:
                record = await self._poll(hook)
            self.log.info("Match %s is %s: done", self.match_id, record.get("status"))
            yield BriefEvent({"status": "reached", "match": record})
            return
        except AirflowNotFoundException:
            failure = SfiConfigError(f"the connection {self.sfi_conn_id!r} is not defined")
        except SfiError as exc:
            failure = exc
        self.log.error("Match %s cannot be polled: %s", self.match_id, failure)
        yield BriefEvent({"status": "error", **error_payload(failure)})

    async def _poll(self, hook: SfiAsyncHook) -> dict[str, Any]:
        """Poll until the status is reached; the match record. Raises the errors no later poll can cure."""
        from airflow_sfi.hooks.sfi import only_item

        last: RateLimit | None = None
        wanted = " or ".join(self.statuses)
        while True:
            try:
                envelope = await hook.get(ENDPOINT, i=self.match_id)
                record = only_item(envelope, "match")
            except SfiRateLimitError as exc:
                wait = rate_limited_wait(exc, self.poll_interval, last)
                self.log.warning("%s; polling match %s again after the reset, in %.0f s", exc, self.match_id, wait)
            except SfiError as exc:
                if not is_transient(exc):
                    raise
                wait = self.poll_interval
                self.log.warning("%s; polling match %s again in %.0f s", exc, self.match_id, wait)
            else:
                if status_reached(record, self.statuses):
                    return record
                last = envelope.rate_limit
                wait = next_poll_in(self.poll_interval, last)
                spaced = ""
                if wait > self.poll_interval and last.reset_at is not None:
                    spaced = f" ({last.remaining} requests left in the window until {last.reset_at.isoformat()})"
                self.log.info(
                    "Match %s is %s, not %s; polling again in %.0f s%s",
                    self.match_id,
                    record.get("status"),
                    wanted,
                    wait,
                    spaced,
                )
            await type(self).sleep(wait)
