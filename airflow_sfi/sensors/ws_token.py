"""SfiWsTokenExpirySensor: wait until a WebSocket token is due for refresh."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.providers.common.compat.sdk import conf

from airflow_sfi import defaults
from airflow_sfi.arguments import check_renew_margin, expiry_of, expiry_only, is_template
from airflow_sfi.exceptions import SfiConfigError
from airflow_sfi.protocol.times import refresh_due, seconds_until
from airflow_sfi.sensors.base import SfiBaseSensor
from airflow_sfi.version_compat import AIRFLOW_V_3_3_PLUS, AirflowRescheduleException

if TYPE_CHECKING:
    from airflow.sdk import Context

_TRIGGER = "airflow_sfi.triggers.ws_token.SfiWsTokenExpiryTrigger"


class SfiWsTokenExpirySensor(SfiBaseSensor):
    """
    Wait until ``expires_at - renew_margin``, so that a refresh downstream runs in time.

    In ``poke`` and ``reschedule`` modes it checks every ``poke_interval`` like any sensor, and
    when the refresh time is nearer than that, it ends exactly then: the last poke sleeps until it
    (``poke``), or the task comes back at it (``reschedule``). When ``deferrable`` it waits in the
    triggerer, holding no worker slot. A refresh time already past
    succeeds at once. ``timeout``, ``soft_fail``, ``never_fail`` and ``silent_fail`` work as on any sensor.

    :param expires_at: the token's expiry (templated): ``get_token.output["expires_at"]``, an aware
        datetime (naive is UTC), an ISO 8601 or ``YYYY-MM-DD HH:MM:SS`` string, or the operator's whole
        XCom dict (only its expiry is kept once rendered).
    :param renew_margin: how long before expiry to finish; the vendor advises 5 minutes.
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
        renew_margin: datetime.timedelta = defaults.RENEW_MARGIN,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_renew_margin(renew_margin, self.task_id)
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
                    "renew_margin": renew_margin,
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
        self.renew_margin = renew_margin
        self.deferrable = deferrable

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        # The operator's XCom dict holds the token. Keep only its expiry, so that the rendered field,
        # which Airflow stores and shows in the UI, holds no secret.
        self.expires_at = expiry_only(self.expires_at)

    def refresh_at(self) -> pendulum.DateTime:
        """When the wait ends: ``expires_at - renew_margin``."""
        try:
            return expiry_of(self.expires_at) - self.renew_margin
        except SfiConfigError as exc:
            raise SfiConfigError(f"{self.task_id}: {exc}") from None

    def execute(self, context: Context) -> Any:
        if self.deferrable:
            try:
                refresh_at = self.refresh_at()
            except SfiConfigError as exc:
                self.skip_if_never_fail(exc)
                raise
            if refresh_due(refresh_at):
                self.log.info("Refresh time %s has passed: done", refresh_at.isoformat())
                return None
            self.log.info("Waiting until %s (%s before expiry)", refresh_at.isoformat(), self.renew_margin)
            from airflow_sfi.triggers.ws_token import SfiWsTokenExpiryTrigger

            self.defer(
                trigger=SfiWsTokenExpiryTrigger(
                    expires_at=expiry_of(self.expires_at).isoformat(),
                    renew_margin=self.renew_margin,
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.timeout),
            )
        elif self.reschedule:
            try:
                refresh_at = self.refresh_at()
            except SfiConfigError:
                refresh_at = None  # poke raises it again, where never_fail and silent_fail apply
            if refresh_at is not None and 0 < seconds_until(refresh_at) <= self.poke_interval:
                # The base class would come back only after the refresh time.
                raise AirflowRescheduleException(refresh_at)  # type: ignore[no-untyped-call]
        return super().execute(context)

    def poke(self, context: Context) -> bool:
        refresh_at = self.refresh_at()
        left = seconds_until(refresh_at)
        if not self.reschedule and 0 < left <= self.poke_interval:
            time.sleep(left)  # the base class would sleep past the refresh time
            return True
        return refresh_due(refresh_at)

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Resume after the trigger fired at the refresh time."""
        self.log.info("Refresh time %s reached", self.refresh_at().isoformat())
