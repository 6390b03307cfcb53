"""Triggers around a WebSocket token's expiry: thin, with kwargs that hold no secret."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pendulum
from airflow.triggers.base import BaseTrigger, TaskSuccessEvent, TriggerEvent

from airflow_sfi.arguments import expiry_of
from airflow_sfi.refresh import sleep_until


class SfiWsTokenExpiryTrigger(BaseTrigger):
    """
    Fire at ``expires_at - renew_margin``: the sensor's wait, deferred or started in the triggerer.

    ``expires_at`` may still be a template when the trigger is built: with ``start_from_trigger``
    the triggerer renders it in place before ``run()``.

    :param expires_at: the token's expiry, as an ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` (UTC) string.
    :param renew_margin: how long before expiry to fire.
    :param end_from_trigger: finish the task in the triggerer, without a worker.
    """

    def __init__(self, *, expires_at: str, renew_margin: datetime.timedelta, end_from_trigger: bool = False) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.expires_at = expires_at
        self.renew_margin = renew_margin
        self.end_from_trigger = end_from_trigger

    def refresh_at(self) -> pendulum.DateTime:
        """When the trigger fires (``expires_at`` must be rendered by now)."""
        return expiry_of(self.expires_at) - self.renew_margin

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger",
            {
                "expires_at": self.expires_at,
                "renew_margin": self.renew_margin,
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


class SfiWsTokenRefreshTrigger(BaseTrigger):
    """
    Refresh a held token in the triggerer and end the task there, with the new token as its XCom.

    At ``expires_at - renew_margin`` it renews (see :func:`~airflow_sfi.refresh.refresh_token`),
    checks the channels, stores the token in the Variable ``variable_key`` when given, and yields
    ``TaskSuccessEvent`` whose XComs are the operator's. Its kwargs hold a connection id and times,
    never a token: the token is fetched in ``run()``.

    :param sfi_conn_id: the Airflow connection.
    :param expires_at: the held token's expiry (ISO 8601).
    :param renew_margin: how long before expiry to renew.
    :param action: ``refresh`` (renew, else wait out and get a new one), ``renew`` or ``new``.
    :param required_channels: channels the token must grant.
    :param variable_key: the Variable to store the token in, or None.
    """

    def __init__(
        self,
        *,
        sfi_conn_id: str,
        expires_at: str,
        renew_margin: datetime.timedelta,
        action: str = "refresh",
        required_channels: list[str] | None = None,
        variable_key: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.sfi_conn_id = sfi_conn_id
        self.expires_at = expires_at
        self.renew_margin = renew_margin
        self.action = action
        self.required_channels = list(required_channels or [])
        self.variable_key = variable_key

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_sfi.triggers.ws_token.SfiWsTokenRefreshTrigger",
            {
                "sfi_conn_id": self.sfi_conn_id,
                "expires_at": self.expires_at,
                "renew_margin": self.renew_margin,
                "action": self.action,
                "required_channels": self.required_channels,
                "variable_key": self.variable_key,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_sfi.aio import in_thread
        from airflow_sfi.hooks.sfi import SfiHook
        from airflow_sfi.refresh import refresh_token
        from airflow_sfi.token_store import publish

        token = await refresh_token(
            SfiHook(self.sfi_conn_id),
            expiry_of(self.expires_at),
            self.renew_margin,
            self.action,  # type: ignore[arg-type]
            self.log,
        )
        token.check_channels(self.required_channels)
        if self.variable_key:
            try:
                await in_thread(publish, token, self.variable_key)
            except ImportError:
                # Airflow 3.0's dag.test() runs triggers without the supervisor that Variable.set asks:
                # the task resumes there (refresh_complete) and stores the token itself.
                self.log.warning("No Variable access here (dag.test() on Airflow 3.0): the task stores the token")
        self.log.info("Refreshed: expires at %s (%.0f s left)", token.expires_at.isoformat(), token.seconds_left())
        # The operator's XComs: the token dict as return_value, and each field under its own key.
        result = token.to_dict()
        yield TaskSuccessEvent(xcoms={"return_value": result, **result})
