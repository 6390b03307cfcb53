"""Triggers around a WebSocket token's expiry: thin, with JSON-primitive kwargs that hold no secret."""

from __future__ import annotations

import asyncio
import datetime
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_sfi.timing import expiry_of, seconds_until

# Sleep at most this long at a time, so a changed system clock is noticed.
MAX_SLEEP_SECONDS = 60.0


class SfiWsTokenExpiryTrigger(BaseTrigger):
    """
    Fire at ``expires_at - refresh_margin_seconds``: the sensor's wait, deferred or started in the triggerer.

    ``expires_at`` may still be a template when the trigger is built: with ``start_from_trigger``
    the triggerer renders it in place before ``run()``.

    :param expires_at: the token's expiry, as an ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` (UTC) string.
    :param refresh_margin_seconds: how long before expiry to fire.
    :param end_from_trigger: finish the task in the triggerer, without a worker.
    """

    def __init__(self, *, expires_at: str, refresh_margin_seconds: float, end_from_trigger: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.expires_at = expires_at
        self.refresh_margin_seconds = refresh_margin_seconds
        self.end_from_trigger = end_from_trigger

    def refresh_at(self) -> pendulum.DateTime:
        """When the trigger fires (``expires_at`` must be rendered by now)."""
        return expiry_of(self.expires_at) - datetime.timedelta(seconds=self.refresh_margin_seconds)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "expires_at": self.expires_at,
                "refresh_margin_seconds": self.refresh_margin_seconds,
                "end_from_trigger": self.end_from_trigger,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        refresh_at = self.refresh_at()
        await sleep_until(refresh_at)
        self.log.info("Refresh time %s reached", refresh_at.isoformat())
        if self.end_from_trigger:
            yield TaskSuccessEvent()
        else:
            yield TriggerEvent({"refresh_at": refresh_at.isoformat()})  # type: ignore[no-untyped-call]


async def sleep_until(moment: datetime.datetime) -> None:
    """Sleep until ``moment``, in steps of at most :data:`MAX_SLEEP_SECONDS`."""
    while (left := seconds_until(moment)) > 0:
        await asyncio.sleep(min(left, MAX_SLEEP_SECONDS))


def __getattr__(name: str) -> Any:
    if name == "SfiRefreshTrigger":  # the name before 0.2; trigger rows stored under it still load
        warnings.warn("SfiRefreshTrigger is deprecated; use SfiWsTokenExpiryTrigger", DeprecationWarning, stacklevel=2)
        return SfiWsTokenExpiryTrigger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
