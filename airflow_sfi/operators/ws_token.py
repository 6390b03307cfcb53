"""SfiWsTokenOperator: get or refresh a WebSocket token and hand it on through XCom (and optionally a Variable)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import BaseOperator, conf

from airflow_sfi import defaults
from airflow_sfi.arguments import channel_list, expiry_of, expiry_only, is_template
from airflow_sfi.exceptions import SfiConfigError, SfiError, SfiRateLimitError
from airflow_sfi.refresh import ACTIONS, Action
from airflow_sfi.version_compat import AIRFLOW_V_3_1_PLUS, AirflowRescheduleException

if TYPE_CHECKING:
    import pendulum
    from airflow.sdk import Context

    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.protocol.token import WsToken

# Ask again this long after expires_at, so the old token is surely gone on the API's side.
EXPIRY_GRACE = datetime.timedelta(seconds=1)


class SfiWsTokenOperator(BaseOperator):
    """
    Get a WebSocket token through :class:`~airflow_sfi.hooks.sfi.SfiHook`, or refresh a held one, and return
    ``WsToken.to_dict()``.

    The return value goes to XCom, and each of its fields under its own key too (``multiple_outputs``,
    on by default), so ``op.output["server"]`` and ``{{ ti.xcom_pull('get_token')['expires_at'] }}`` work.

    **Refresh** (given ``expires_at``, the held token's expiry): at ``expires_at - renew_margin`` it calls
    ``ws/renew`` and keeps the answer when it outlives the held token; when renew is absent (404) or has no
    active token, it logs one WARNING, waits until ``expires_at`` and calls ``ws/new``. When ``deferrable``,
    the wait *and* the calls happen in the triggerer, which ends the task with the token as its XCom: no
    worker slot and no scheduler round trip at the refresh moment.

    **Get** (no ``expires_at``): one ``ws/new`` call, which returns the active token while there is one.
    With ``reuse_published``, a token still valid in the Variable ``variable_key`` is returned with no call.
    With ``min_validity``, a token with less time left is not accepted: the task waits until it expires
    (deferred when ``deferrable``; one sleep otherwise) and asks once more.

    A 429 whose wait is longer than the connection's ``max_retry_wait`` (the vendor's "wait for the next
    hour") waits until the rate limit resets, deferred when ``deferrable``, otherwise rescheduled (deferred
    too below Airflow 3.1, which runs a rescheduled task again at once).

    :param sfi_conn_id: the Airflow connection (templated).
    :param required_channels: channels the token must grant, e.g. ``["MAIN", "STATS"]`` (templated);
        the task fails, naming the missing ones, when the plan does not grant them.
    :param expires_at: the held token's expiry (templated), e.g. ``get_token.output["expires_at"]``:
        refresh that token instead of getting one now.
    :param renew_margin: how long before ``expires_at`` to renew; the vendor advises 5 minutes.
    :param action: ``refresh`` (renew first, the default with ``expires_at``), ``renew`` (``ws/renew``
        only) or ``new`` (``ws/new``, the default without ``expires_at``; with it, after the old token expired).
    :param min_validity: without ``expires_at``: the least time the returned token must have left.
    :param variable_key: also store the token dict (JSON) in this Airflow Variable, for services
        outside Airflow and for the next run; the name must contain ``token`` or ``secret`` so that
        Airflow hides the value.
    :param reuse_published: without ``expires_at``: return the token in ``variable_key`` while it is valid
        (for longer than ``min_validity``), making no API call.
    :param deferrable: wait in the triggerer instead of a worker; defaults to ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("sfi_conn_id", "required_channels", "expires_at")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        sfi_conn_id: str = defaults.CONN_ID,
        required_channels: Sequence[str] | str = (),
        expires_at: Any = None,
        renew_margin: datetime.timedelta = defaults.RENEW_MARGIN,
        action: Action | None = None,
        min_validity: datetime.timedelta | None = None,
        variable_key: str | None = None,
        reuse_published: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        action = action or ("refresh" if expires_at is not None else "new")
        problem = _argument_problem(
            action, expires_at, renew_margin, min_validity, variable_key, reuse_published, required_channels
        )
        if problem:
            raise SfiConfigError(f"{self.task_id}: {problem}")
        self.sfi_conn_id = sfi_conn_id
        self.required_channels = required_channels
        self.expires_at = expires_at
        self.renew_margin = renew_margin
        self.action = action
        self.min_validity = min_validity
        self.variable_key = variable_key
        self.reuse_published = reuse_published
        self.deferrable = deferrable

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        super().render_template_fields(context, jinja_env)
        self.expires_at = expiry_only(self.expires_at)  # a whole XCom dict would store the token as rendered

    def execute(self, context: Context) -> dict[str, Any]:
        if self.expires_at is not None:
            return self._refresh()
        if self.reuse_published:
            token = self._published()
            if token is not None:
                return token.to_dict()
        return self._obtain(waited_for_expiry=False)

    def execute_complete(
        self,
        context: Context,
        event: Any = None,
        waited_for_expiry: bool = True,
        waited_for_rate_limit: bool = False,
    ) -> dict[str, Any]:
        """Resume after a wait: for the old token to expire, or for the rate-limit window to reset."""
        return self._obtain(waited_for_expiry=waited_for_expiry, waited_for_rate_limit=waited_for_rate_limit)

    def refresh_complete(self, context: Context, event: Any = None) -> dict[str, Any]:
        """
        Resume after the refresh trigger, where it could not end the task itself (``dag.test()`` runs
        triggers in-line): read the refreshed token back from the Variable, or ask ``ws/new`` for the active
        one and store it in the Variable (Airflow 3.0's ``dag.test()`` gives its triggers no Variable access).
        """
        from airflow_sfi.hooks.sfi import SfiHook
        from airflow_sfi.token_store import published

        held = self._held_expiry()
        token = published(self.variable_key) if self.variable_key else None
        if token is not None and token.expires_at > held:
            return token.to_dict()
        token = SfiHook(self.sfi_conn_id).get_ws_token()
        if token.expires_at <= held:
            raise SfiError("the refresh trigger ended but the API still holds the old token")
        return self._publish(token)

    def _refresh(self) -> dict[str, Any]:
        """Refresh the held token: in the triggerer when deferrable (it ends the task), else here."""
        held = self._held_expiry()
        channels = channel_list(self.required_channels, self.task_id)
        if self.deferrable:
            from airflow_sfi.triggers.ws_token import SfiWsTokenRefreshTrigger

            self.log.info("Refreshing the token that expires at %s in the triggerer", held.isoformat())
            self.defer(
                trigger=SfiWsTokenRefreshTrigger(
                    sfi_conn_id=self.sfi_conn_id,
                    expires_at=held.isoformat(),
                    renew_margin=self.renew_margin,
                    action=self.action,
                    required_channels=channels,
                    variable_key=self.variable_key,
                ),
                method_name="refresh_complete",
            )
        import asyncio

        from airflow_sfi.hooks.sfi import SfiHook
        from airflow_sfi.refresh import refresh_token

        hook = SfiHook(self.sfi_conn_id)
        token = asyncio.run(refresh_token(hook, held, self.renew_margin, self.action, self.log))
        self._log_token(token, hook)
        return self._publish(token)

    def _held_expiry(self) -> pendulum.DateTime:
        try:
            return expiry_of(self.expires_at)
        except SfiConfigError as exc:
            raise SfiConfigError(f"{self.task_id}: {exc}") from None

    def _published(self) -> WsToken | None:
        """The token in ``variable_key``, if it has more than ``min_validity`` left and grants the channels."""
        from airflow_sfi.token_store import published

        assert self.variable_key is not None
        token = published(self.variable_key)
        least = self.min_validity.total_seconds() if self.min_validity else 0.0
        if token is None or token.seconds_left() <= least:
            return None
        token.check_channels(channel_list(self.required_channels, self.task_id))
        self.log.info(
            "Reusing the token in Variable %r: expires at %s (%.0f s left); no API call",
            self.variable_key,
            token.expires_at.isoformat(),
            token.seconds_left(),
        )
        return token

    def _obtain(self, *, waited_for_expiry: bool, waited_for_rate_limit: bool = False) -> dict[str, Any]:
        token = self._fetch(waited_for_expiry=waited_for_expiry, waited_for_rate_limit=waited_for_rate_limit)
        if self._too_short(token) and not waited_for_expiry:
            self._wait_for_expiry(token)  # defers, or sleeps in the worker
            token = self._fetch(waited_for_expiry=True)
        if self._too_short(token):
            raise SfiError(
                f"after waiting for the previous token to expire, the API returned a token with "
                f"{token.seconds_left():.0f} s left, less than min_validity ({self.min_validity})"
            )
        return self._publish(token)

    def _fetch(self, *, waited_for_expiry: bool, waited_for_rate_limit: bool = False) -> WsToken:
        """One API call; a long 429 becomes a wait without a worker (once)."""
        from airflow_sfi.hooks.sfi import SfiHook

        hook = SfiHook(self.sfi_conn_id)
        rate_limited = None
        try:
            token = hook.renew_ws_token() if self.action == "renew" else hook.get_ws_token()
        except SfiRateLimitError as exc:
            if exc.reset_at is None or waited_for_rate_limit:
                raise
            rate_limited = exc
        if rate_limited is not None:
            self._wait_for_rate_limit(rate_limited, waited_for_expiry=waited_for_expiry)
        self._log_token(token, hook)
        token.check_channels(channel_list(self.required_channels, self.task_id))
        return token

    def _too_short(self, token: WsToken) -> bool:
        return self.min_validity is not None and token.seconds_left() < self.min_validity.total_seconds()

    def _wait_for_expiry(self, token: WsToken) -> None:
        """Wait until ``token`` has expired: deferred, or one sleep (at most ``min_validity``) in the worker."""
        self.log.info(
            "Token has %.0f s left, less than min_validity (%s): waiting until it expires at %s, then asking again",
            token.seconds_left(),
            self.min_validity,
            token.expires_at.isoformat(),
        )
        if self.deferrable:
            self._defer_until(token.expires_at + EXPIRY_GRACE, waited_for_expiry=True)
        time.sleep(max(0.0, token.seconds_left() + EXPIRY_GRACE.total_seconds()))

    def _wait_for_rate_limit(self, exc: SfiRateLimitError, *, waited_for_expiry: bool) -> NoReturn:
        """
        The vendor's 429 means "wait for the next hour": wait without holding a worker. Deferred when
        ``deferrable``, and below Airflow 3.1, where a rescheduled task (not a sensor) runs again at once.
        """
        assert exc.reset_at is not None
        self.log.warning("%s: waiting until the rate limit resets at %s", exc, exc.reset_at.isoformat())
        if self.deferrable or not AIRFLOW_V_3_1_PLUS:
            self._defer_until(exc.reset_at, waited_for_expiry=waited_for_expiry, waited_for_rate_limit=True)
        raise AirflowRescheduleException(exc.reset_at)  # type: ignore[no-untyped-call]

    def _defer_until(self, moment: datetime.datetime, **kwargs: Any) -> NoReturn:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete", kwargs=kwargs)

    def _publish(self, token: WsToken) -> dict[str, Any]:
        if self.variable_key:
            from airflow_sfi.token_store import publish

            publish(token, self.variable_key)
            self.log.info("Stored the token in Variable %r", self.variable_key)
        return token.to_dict()

    def _log_token(self, token: WsToken, hook: SfiHook) -> None:
        rate = hook.last_rate_limit
        self.log.info(
            "%s token: channels %s, expires at %s (%.0f s left)%s",
            "Got a new" if token.is_new else "Got the active",
            ", ".join(token.allowed_channels) or "none",
            token.expires_at.isoformat(),
            token.seconds_left(),
            f"; rate limit: {rate.remaining} of {rate.limit} requests left"
            if rate and rate.remaining is not None
            else "",
        )


def _argument_problem(
    action: str,
    expires_at: Any,
    renew_margin: Any,
    min_validity: Any,
    variable_key: str | None,
    reuse_published: bool,
    required_channels: Sequence[str] | str,
) -> str | None:
    """What is wrong with the operator's arguments, checked at DAG parse; None when nothing is."""
    if action not in ACTIONS:
        return f"action must be one of {', '.join(repr(a) for a in ACTIONS)}, got {action!r}"
    if action == "refresh" and expires_at is None:
        return "action 'refresh' needs expires_at, the held token's expiry"
    if not isinstance(renew_margin, datetime.timedelta) or renew_margin < datetime.timedelta(0):
        return f"renew_margin must be a non-negative timedelta, got {renew_margin!r}"
    if min_validity is not None and (
        not isinstance(min_validity, datetime.timedelta) or min_validity < datetime.timedelta(0)
    ):
        return f"min_validity must be a non-negative timedelta, got {min_validity!r}"
    if expires_at is not None and (min_validity is not None or reuse_published):
        return "min_validity and reuse_published apply to getting a token, not to refreshing one (expires_at)"
    if variable_key is not None and not any(word in variable_key.lower() for word in ("token", "secret")):
        return f"variable_key {variable_key!r} must contain 'token' or 'secret', so that Airflow hides its value"
    if reuse_published and not variable_key:
        return "reuse_published needs variable_key, the Variable to reuse the token from"
    if isinstance(expires_at, (datetime.datetime, str)) and not is_template(expires_at):
        expiry_of(expires_at)  # a literal is checked now, at DAG parse
    if not is_template(required_channels):
        channel_list(required_channels, "required_channels")
    return None
