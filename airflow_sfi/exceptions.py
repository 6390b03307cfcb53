"""Typed errors of the provider: every failure a user can meet is an :class:`SfiError`."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from airflow.providers.common.compat.sdk import AirflowException


class SfiError(AirflowException):
    """
    Base class of every error this provider raises.

    :param message: what went wrong, never holding a secret.
    :param http_status: the HTTP status of the response, when there was one.
    :param api_status: the ``status`` field of the response envelope, when there was one.
    :param code: the vendor's error code, when it gave one.
    :param vendor_message: the vendor's error message, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        api_status: int | None = None,
        code: int | None = None,
        vendor_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.api_status = api_status
        self.code = code
        self.vendor_message = vendor_message


class SfiConfigError(SfiError):
    """
    The connection or an operator argument is invalid; fix the configuration.

    :param problem: what is wrong, without the connection id (e.g. for a form that shows its own).
    """

    def __init__(self, message: str, *, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


class SfiAuthError(SfiError):
    """The API refused the credential (HTTP 401/403): invalid, suspended, wrong IP or plan too low."""


class SfiRateLimitError(SfiError):
    """
    The API answered 429.

    :param retry_after: seconds the API asked to wait, when it said.
    :param reset_at: when the rate-limit window resets (UTC), when the API said.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        reset_at: datetime.datetime | None = None,
        http_status: int | None = None,
        api_status: int | None = None,
        code: int | None = None,
        vendor_message: str | None = None,
    ) -> None:
        super().__init__(
            message, http_status=http_status, api_status=api_status, code=code, vendor_message=vendor_message
        )
        self.retry_after = retry_after
        self.reset_at = reset_at


class SfiApiError(SfiError):
    """Any other error the API reported (400, 404, 5xx, or an error envelope under HTTP 200)."""


class SfiResponseError(SfiError):
    """The response is not what the API documents: not JSON, HTML, wrong envelope, bad token fields."""


class SfiTransportError(SfiError):
    """The request never got an HTTP answer: connection refused or reset, or a timeout."""


class SfiChannelError(SfiError):
    """The token does not grant a channel the task requires."""


class SfiSubscriptionError(SfiError):
    """
    The live feed cannot subscribe as asked, and no reconnect will change that: fix the subscription or the plan.

    :param error_code: the vendor's code: ``CHANNEL_NOT_ALLOWED``, ``SUBSCRIPTION_LIMIT``,
        ``INVALID_CHANNEL`` or ``INVALID_SCOPE``.
    """

    def __init__(self, message: str, *, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code


def error_payload(exc: SfiError | None) -> dict[str, Any]:
    """
    ``exc`` as JSON-safe fields of a trigger event, from which :func:`error_from_payload` rebuilds its class.

    :param exc: the error, or None when the stream ended without one.
    """
    if exc is None:
        return {"error": "SfiError", "message": "the live feed stopped"}
    return {"error": type(exc).__name__, "message": str(exc), "error_code": getattr(exc, "error_code", None)}


def error_from_payload(payload: Mapping[str, Any]) -> SfiError:
    """
    The error a trigger event describes (:func:`error_payload`), of the same class.

    :param payload: the event's payload.
    """
    message = str(payload.get("message"))
    kind = _ERRORS.get(str(payload.get("error")), SfiError)
    if kind is SfiSubscriptionError:
        return SfiSubscriptionError(message, error_code=str(payload.get("error_code") or ""))
    return kind(message)


_ERRORS: dict[str, type[SfiError]] = {
    kind.__name__: kind
    for kind in (
        SfiError,
        SfiConfigError,
        SfiAuthError,
        SfiRateLimitError,
        SfiApiError,
        SfiResponseError,
        SfiTransportError,
        SfiChannelError,
        SfiSubscriptionError,
    )
}
