"""SfiRefreshTrigger: the sensor's wait, startable directly in the triggerer."""

from __future__ import annotations

import datetime
from typing import Any

import pendulum
from airflow.providers.standard.triggers.temporal import DateTimeTrigger


class SfiRefreshTrigger(DateTimeTrigger):
    """
    Fire at ``expires_at - refresh_margin_seconds``; the standard ``DateTimeTrigger`` does the waiting.

    ``expires_at`` may still be a template when the trigger is built: with ``start_from_trigger``
    the triggerer renders it in place before ``run()``, and the moment is computed on first use.
    Its kwargs are JSON primitives and hold no secret.

    :param expires_at: the token's expiry (a string, as the sensor's ``expires_at`` accepts).
    :param refresh_margin_seconds: how long before expiry to fire.
    :param end_from_trigger: finish the task in the triggerer, without a worker.
    """

    def __init__(self, *, expires_at: str, refresh_margin_seconds: float, end_from_trigger: bool = False) -> None:
        super().__init__(target_time=expires_at, end_from_trigger=end_from_trigger)
        self.expires_at = expires_at
        self.refresh_margin_seconds = refresh_margin_seconds

    @property
    def moment(self) -> pendulum.DateTime:
        # Computed on first use, once the triggerer has rendered expires_at; cached like the parent's.
        if self._moment is None:
            from airflow_sfi.sensors.ws_token import expiry_of

            self._moment = expiry_of(self.expires_at) - datetime.timedelta(seconds=self.refresh_margin_seconds)
        return self._moment

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "expires_at": self.expires_at,
                "refresh_margin_seconds": self.refresh_margin_seconds,
                "end_from_trigger": self.end_from_trigger,
            },
        )
