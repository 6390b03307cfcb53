"""SfiWsTokenOperator: get a WebSocket token and hand it on through XCom (and optionally a Variable)."""

from __future__ import annotations

import datetime
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowRescheduleException

from airflow_sfi.exceptions import SfiChannelError, SfiConfigError, SfiError, SfiRateLimitError
from airflow_sfi.templating import is_template
from airflow_sfi.token import channel_list

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_sfi.hooks.api import SfiHook
    from airflow_sfi.token import WsToken

# Ask again this long after expires_at, so the old token is surely gone on the API's side.
EXPIRY_GRACE = datetime.timedelta(seconds=1)


class SfiWsTokenOperator(BaseOperator):
    """
    Get a WebSocket token through :class:`~airflow_sfi.hooks.api.SfiHook` and return ``WsToken.to_dict()``.

    The return value goes to XCom, and each of its fields under its own key too
    (``multiple_outputs``, on by default), so ``op.output["server"]`` and
    ``{{ ti.xcom_pull('get_token')['expires_at'] }}`` both work downstream.

    While a token is active the API hands it back again (``is_new`` false), so a refresh shortly
    before expiry can return the old, nearly dead token. With ``min_validity`` set, a token with
    less time left than that is not accepted: the task waits until it expires (deferred, holding no
    worker slot, when ``deferrable``; one sleep otherwise), asks once more, and fails if the answer
    is still not fresh enough.

    A 429 whose wait is longer than the connection's ``max_retry_wait`` (the vendor's means "wait for
    the next hour") does not fail the task: it waits until the rate limit resets, deferred when
    ``deferrable``, otherwise rescheduled (``up_for_reschedule``, no worker held), then asks again.

    :param sfi_conn_id: the Airflow connection (templated).
    :param required_channels: channels the token must grant, e.g. ``["MAIN", "STATS"]`` (templated);
        the task fails, naming the missing ones, when the plan does not grant them.
    :param min_validity: the least time the returned token must have left; default: any.
    :param action: ``"new"`` calls ``ws/new``; ``"renew"`` calls ``ws/renew``, which the vendor names
        but does not document (assumed: same auth and answer as ``ws/new``, extending the token).
    :param variable_key: also store the token dict (JSON) in this Airflow Variable, for services
        outside Airflow; the name must contain ``token`` or ``secret`` so that Airflow hides it.
    :param deferrable: wait (``min_validity``, rate limit) in the triggerer instead of a worker; defaults to
        ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = ("sfi_conn_id", "required_channels")
    ui_color = "#e8f4ea"

    def __init__(
        self,
        *,
        sfi_conn_id: str = "sfi_default",
        required_channels: Sequence[str] | str = (),
        min_validity: datetime.timedelta | None = None,
        action: Literal["new", "renew"] = "new",
        variable_key: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        if action not in ("new", "renew"):
            raise SfiConfigError(f"{self.task_id}: action must be 'new' or 'renew', got {action!r}")
        if min_validity is not None and (
            not isinstance(min_validity, datetime.timedelta) or min_validity < datetime.timedelta(0)
        ):
            raise SfiConfigError(f"{self.task_id}: min_validity must be a non-negative timedelta, got {min_validity!r}")
        if variable_key is not None and not any(word in variable_key.lower() for word in ("token", "secret")):
            raise SfiConfigError(
                f"{self.task_id}: variable_key {variable_key!r} must contain 'token' or 'secret', "
                "so that Airflow hides the Variable's value"
            )
        if not is_template(required_channels):
            channel_list(required_channels, self.task_id)
        self.sfi_conn_id = sfi_conn_id
        self.required_channels = required_channels
        self.min_validity = min_validity
        self.action = action
        self.variable_key = variable_key
        self.deferrable = deferrable

    def execute(self, context: Context) -> dict[str, Any]:
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
        from airflow_sfi.hooks.api import SfiHook

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
        self._check_channels(token)
        return token

    def _check_channels(self, token: WsToken) -> None:
        missing = [c for c in channel_list(self.required_channels, self.task_id) if c not in token.allowed_channels]
        if missing:
            raise SfiChannelError(
                f"the token does not grant {', '.join(missing)}; the plan allows "
                f"{', '.join(token.allowed_channels) or 'no channel'}"
            )

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
        """The vendor's 429 means "wait for the next hour": wait without holding a worker."""
        assert exc.reset_at is not None
        self.log.warning("%s: waiting until the rate limit resets at %s", exc, exc.reset_at.isoformat())
        if self.deferrable:
            self._defer_until(exc.reset_at, waited_for_expiry=waited_for_expiry, waited_for_rate_limit=True)
        raise AirflowRescheduleException(exc.reset_at)  # type: ignore[no-untyped-call]

    def _defer_until(self, moment: datetime.datetime, **kwargs: Any) -> NoReturn:
        from airflow.providers.standard.triggers.temporal import DateTimeTrigger

        self.defer(trigger=DateTimeTrigger(moment=moment), method_name="execute_complete", kwargs=kwargs)

    def _publish(self, token: WsToken) -> dict[str, Any]:
        result = token.to_dict()
        if self.variable_key:
            from airflow.sdk import Variable

            Variable.set(self.variable_key, result, serialize_json=True)
            self.log.info("Stored the token in Variable %r", self.variable_key)
        return result

    def _log_token(self, token: WsToken, hook: SfiHook) -> None:
        rate = hook.last_rate_limit
        self.log.info(
            "%s token: channels %s, expires at %s (%.0f s left)%s",
            "Got a new" if token.is_new else "Reused the active",
            ", ".join(token.allowed_channels) or "none",
            token.expires_at.isoformat(),
            token.seconds_left(),
            f"; rate limit: {rate.remaining} of {rate.limit} requests left"
            if rate and rate.remaining is not None
            else "",
        )
