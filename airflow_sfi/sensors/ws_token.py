"""SfiWsTokenExpirySensor: wait until a WebSocket token is due for refresh."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import AirflowSkipException, conf

from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.sensors.base import SfiBaseSensor
from airflow_sfi.templating import is_template
from airflow_sfi.timing import expiry_of, expiry_only, refresh_due, seconds_until
from airflow_sfi.version_compat import AIRFLOW_V_3_3_PLUS

if TYPE_CHECKING:
    from airflow.sdk import Context

_TRIGGER = "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"


class SfiWsTokenExpirySensor(SfiBaseSensor):
    """
    Wait until ``expires_at - refresh_margin``, so that a refresh downstream runs in time.

    In ``poke`` mode it checks every ``poke_interval`` and never sleeps past the refresh time; in
    ``reschedule`` mode it frees the worker and comes back exactly at the refresh time; when
    ``deferrable`` it waits in the triggerer, holding no worker slot. A refresh time already past
    succeeds at once. ``timeout``, ``soft_fail``, ``never_fail`` and ``silent_fail`` work as on any sensor.

    :param expires_at: the token's expiry (templated): ``get_token.output["expires_at"]``, an aware
        datetime (naive is UTC), an ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` string, or the operator's whole
        XCom dict (only its expiry is kept once rendered).
    :param refresh_margin: how long before expiry to finish; the vendor advises 5 minutes.
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param start_from_trigger: start in the triggerer and finish there, never taking a worker slot
        (Airflow 3.3 and later; on older releases it fails at DAG parse with :class:`SfiConfigError`).
        Needs ``expires_at`` as a template string, which the triggerer renders, e.g.
        ``"{{ ti.xcom_pull(task_ids='get_token', map_indexes=-1)['expires_at'] }}"`` (the triggerer
        serves single XComs only, hence ``map_indexes=-1``); an XComArg such as ``get_token.output``
        is resolved only in a worker. ``dag.test()`` runs the task in-process instead, as a deferrable sensor.
    """

    template_fields: Sequence[str] = ("expires_at",)
    ui_color = "#f4f0e8"

    def __init__(
        self,
        *,
        expires_at: Any,
        refresh_margin: datetime.timedelta = datetime.timedelta(minutes=5),
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(refresh_margin, datetime.timedelta) or refresh_margin < datetime.timedelta(0):
            raise SfiConfigError(f"{self.task_id}: refresh_margin must be a non-negative timedelta")
        templated = is_template(expires_at)
        if start_from_trigger:
            if not AIRFLOW_V_3_3_PLUS:
                from airflow import __version__

                raise SfiConfigError(
                    f"{self.task_id}: start_from_trigger needs Airflow 3.3 or later, whose triggerer renders "
                    f"the templated expires_at; this is Airflow {__version__}: use deferrable=True instead"
                )
            if not templated:
                raise SfiConfigError(
                    f"{self.task_id}: start_from_trigger needs expires_at as a template string, e.g. "
                    "\"{{ ti.xcom_pull(task_ids='get_token', map_indexes=-1)['expires_at'] }}\"; "
                    "an XComArg is resolved only in a worker"
                )
            from airflow.triggers.base import StartTriggerArgs

            self.start_from_trigger = True
            self.start_trigger_args = StartTriggerArgs(
                trigger_cls=_TRIGGER,
                trigger_kwargs={
                    "expires_at": expires_at,
                    "refresh_margin_seconds": refresh_margin.total_seconds(),
                    "end_from_trigger": True,
                },
                next_method="execute_complete",
                next_kwargs=None,
                timeout=None,
            )
        if isinstance(expires_at, datetime.datetime) or (isinstance(expires_at, str) and not templated):
            expiry_of(expires_at)  # a literal is checked now, at DAG parse, not mid-run
        elif expires_at is None or isinstance(expires_at, (int, float, bool)):
            raise SfiConfigError(f"{self.task_id}: expires_at is missing or not a date and time: {expires_at!r}")
        self.expires_at = expires_at
        self.refresh_margin = refresh_margin
        self.deferrable = deferrable
        self._configured_poke_interval = self.poke_interval

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        # The operator's XCom dict holds the token. Keep only its expiry, so that the rendered field,
        # which Airflow stores and shows in the UI, holds no secret.
        self.expires_at = expiry_only(self.expires_at)

    def refresh_at(self) -> pendulum.DateTime:
        """When the wait ends: ``expires_at - refresh_margin``."""
        try:
            return expiry_of(self.expires_at) - self.refresh_margin
        except SfiConfigError as exc:
            raise SfiConfigError(f"{self.task_id}: {exc}") from None

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            try:
                refresh_at = self.refresh_at()
            except SfiConfigError as exc:
                if self.never_fail:  # as the base class treats an error in poke
                    raise AirflowSkipException(f"Skipping due to never_fail: {exc}") from None
                raise
            if refresh_due(refresh_at):
                self.log.info("Refresh time %s has passed: done", refresh_at.isoformat())
                return None
            self.log.info("Waiting until %s (%s before expiry)", refresh_at.isoformat(), self.refresh_margin)
            from airflow_sfi.triggers.ws_token import SfiWsTokenExpiryTrigger

            self.defer(
                trigger=SfiWsTokenExpiryTrigger(
                    expires_at=expiry_of(self.expires_at).isoformat(),
                    refresh_margin_seconds=self.refresh_margin.total_seconds(),
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.timeout),
            )
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        refresh_at = self.refresh_at()
        if refresh_due(refresh_at):
            return True
        # The base class sleeps (poke) or reschedules (reschedule) for poke_interval: make that end
        # at the refresh time, or when the timeout is due to be checked, whichever comes first.
        left = seconds_until(refresh_at)
        limit = float(self.timeout) if self.reschedule else min(float(self.timeout), self._configured_poke_interval)
        self.poke_interval = max(0.0, min(left, limit))
        return False

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the trigger fired at the refresh time."""
        self.log.info("Refresh time %s reached", self.refresh_at().isoformat())
