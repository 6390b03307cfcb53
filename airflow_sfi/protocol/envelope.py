"""One HTTP answer of the REST API: its envelope checked into an :class:`Envelope`, or a typed :class:`SfiError`."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import pendulum

from airflow_sfi.exceptions import SfiApiError, SfiAuthError, SfiError, SfiRateLimitError, SfiResponseError

VENDOR = "SFI API"
MAX_MESSAGE_CHARS = 200


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """
    What the API's rate-limit headers said (any of it may be missing).

    :param limit: requests allowed in the window.
    :param remaining: requests left in the window.
    :param reset_at: when the window resets (UTC).
    """

    limit: int | None
    remaining: int | None
    reset_at: pendulum.DateTime | None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> RateLimit:
        """Read the direct API's ``X-Rate-Limit-*`` or RapidAPI's ``x-ratelimit-*`` headers."""
        headers = _case_insensitive(headers)
        limit_names, remaining_names, reset_names = _RATE_LIMIT_HEADERS
        reset = _first_int(headers, reset_names)
        reset_at = None
        if reset is not None:
            # The vendor documents Reset both as epoch seconds and as seconds left in the window.
            moment = reset if reset > 1_000_000_000 else time.time() + reset
            reset_at = pendulum.DateTime.fromtimestamp(moment, pendulum.UTC)
        return cls(_first_int(headers, limit_names), _first_int(headers, remaining_names), reset_at)


# Limit, remaining and reset: the direct API's name first, then RapidAPI's plan quota, then its 60-second window.
_RATE_LIMIT_HEADERS = (
    ("X-Rate-Limit-Limit", "x-ratelimit-requests-limit", "x-ratelimit-limit"),
    ("X-Rate-Limit-Remaining", "x-ratelimit-requests-remaining", "x-ratelimit-remaining"),
    ("X-Rate-Limit-Reset", "x-ratelimit-requests-reset", "x-ratelimit-reset"),
)


def _first_int(headers: Mapping[str, str], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = headers.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return None


@dataclasses.dataclass(frozen=True)
class Pagination:
    """
    Where a paginated answer stands: ``{"page": 1, "per_page": 100, "items": 6831}``.

    :param page: this answer's page, from 1.
    :param per_page: items per page (fixed by the plan).
    :param items: the total number of items over all pages, not of this page's.
    """

    page: int
    per_page: int
    items: int

    @property
    def pages(self) -> int:
        """How many pages hold ``items``: 0 when there are none."""
        return -(-self.items // self.per_page)

    @property
    def is_last(self) -> bool:
        """Whether no page follows this one."""
        return self.page >= self.pages

    @classmethod
    def from_envelope(cls, value: object, http_status: int = 200) -> Pagination | None:
        """
        The envelope's ``pagination``: ``[]`` (None: not paginated) or ``[{"page", "per_page", "items"}]``.

        :param value: the envelope's ``pagination`` value.
        :param http_status: the answer's HTTP status, for the error message.
        :raises SfiResponseError: for any other shape, or a page or page size below 1.
        """
        if not value:  # [], and as before any other empty value
            return None
        first = value[0] if isinstance(value, list) and len(value) == 1 else None
        if not isinstance(first, dict):
            raise response_error(http_status, "with an envelope whose 'pagination' is not [{page, per_page, items}]")
        numbers = {}
        for name, least in (("page", 1), ("per_page", 1), ("items", 0)):
            number = first.get(name)
            if isinstance(number, str) and number.isdecimal():
                number = int(number)
            if not isinstance(number, int) or isinstance(number, bool) or number < least:
                raise response_error(
                    http_status,
                    f"with an envelope whose pagination {name!r} is not an integer of at least {least} "
                    f"(got {json_type(first.get(name))})",
                )
            numbers[name] = number
        return cls(**numbers)


@dataclasses.dataclass(frozen=True)
class Envelope:
    """
    A successful answer: ``{"status": 200, "errors": [], "pagination": [...], "result": [...]}``.

    :param http_status: the HTTP status code.
    :param result: the result items.
    :param pagination: where a paginated answer stands; None when the envelope's ``pagination`` is ``[]``.
    :param rate_limit: what the rate-limit headers said.
    """

    http_status: int
    result: list[Any]
    pagination: Pagination | None
    rate_limit: RateLimit


def parse_envelope(
    http_status: int,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    scrub: Callable[[str], str] = lambda text: text,
) -> Envelope:
    """
    Check one HTTP answer: an :class:`Envelope`, or the typed :class:`SfiError` it amounts to.

    A body ``status`` other than 200, or a non-empty ``errors``, is an error even under HTTP 200.

    :param http_status: the HTTP status code.
    :param body: the raw body.
    :param headers: the response headers (for 429's ``Retry-After`` and the rate limit).
    :param scrub: applied to any text from the body before it goes into an error message.
    """
    headers = headers or {}
    try:
        # A UTF-8 byte-order mark is allowed; deep nesting makes the decoder raise RecursionError.
        payload: Any = json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError):
        payload = _NOT_JSON
    if payload is _NOT_JSON:
        kind = _describe_body(body)
        raise _failure(http_status, headers, f"with {kind}", note=f"and {kind}")

    if isinstance(payload, dict) and "message" in payload and "status" not in payload:
        # RapidAPI's own proxy answers {"message": ...} instead of the envelope.
        message = _vendor_text(payload["message"], scrub)
        raise _failure(http_status, headers, f"with a message and no data: {message}", vendor_message=message)
    if not isinstance(payload, dict):
        raise _failure(http_status, headers, f"with JSON that is not an envelope object (got {json_type(payload)})")
    api_status = payload.get("status")
    if not isinstance(api_status, int) or isinstance(api_status, bool):
        raise _failure(
            http_status, headers, "with an envelope that has no integer 'status'", note="and no envelope status"
        )
    errors = payload.get("errors", [])
    if not isinstance(errors, list):
        raise response_error(http_status, "with an envelope whose 'errors' is not a list")
    if http_status >= 400 or api_status != 200 or errors:
        code, vendor_message = _first_error(errors, scrub)
        raise _status_error(
            http_status if http_status >= 400 else api_status,
            headers,
            http_status=http_status,
            api_status=api_status,
            code=code,
            vendor_message=vendor_message,
        )
    result = payload.get("result")
    if not isinstance(result, list):
        raise response_error(http_status, "with an envelope whose 'result' is not a list")
    pagination = Pagination.from_envelope(payload.get("pagination"), http_status)
    return Envelope(http_status, result, pagination, RateLimit.from_headers(headers))


def response_error(http_status: int, what: str) -> SfiResponseError:
    """
    The error for an answer that is not what the API documents.

    :param http_status: the HTTP status code.
    :param what: what the answer was, e.g. "with 2 results instead of exactly one token".
    """
    return SfiResponseError(f"{VENDOR} answered HTTP {http_status} {what}", http_status=http_status)


_NOT_JSON = object()


def _failure(
    http_status: int,
    headers: Mapping[str, str],
    what: str,
    *,
    note: str | None = None,
    vendor_message: str | None = None,
) -> SfiError:
    """An error status names the status (``note`` says what the body was); a success status names the body."""
    if http_status >= 400:
        return _status_error(http_status, headers, vendor_message=vendor_message, note=note)
    return response_error(http_status, what)


def _status_error(
    status: int,
    headers: Mapping[str, str],
    *,
    http_status: int | None = None,
    api_status: int | None = None,
    code: int | None = None,
    vendor_message: str | None = None,
    note: str | None = None,
) -> SfiError:
    """The typed error for ``status`` (HTTP, or the envelope's under HTTP 200); ``note`` says what the body was."""
    http_status = status if http_status is None else http_status
    text = vendor_message or note
    detail = f"HTTP {http_status}" + (f", status {api_status}" if api_status not in (None, http_status) else "")
    detail += (f", code {code}" if code is not None else "") + (f": {text}" if text else "")
    fields: dict[str, Any] = {
        "http_status": http_status,
        "api_status": api_status,
        "code": code,
        "vendor_message": vendor_message,
    }
    if status in (401, 403):
        return SfiAuthError(f"{VENDOR} refused the credential ({detail})", **fields)
    if status == 429:
        headers = _case_insensitive(headers)
        retry_after = _retry_after(headers)
        reset_at = RateLimit.from_headers(headers).reset_at
        if reset_at is None and retry_after is not None:
            reset_at = pendulum.now("UTC").add(seconds=retry_after)
        when = f"; retry at {reset_at.isoformat()}" if reset_at else ""
        return SfiRateLimitError(
            f"{VENDOR} rate limit reached ({detail}){when}", retry_after=retry_after, reset_at=reset_at, **fields
        )
    return SfiApiError(f"{VENDOR} error ({detail})", **fields)


def _first_error(errors: list[Any], scrub: Callable[[str], str]) -> tuple[int | None, str | None]:
    """The vendor's errors are documented both as ``{"code", "message"}`` objects and as strings."""
    if not errors:
        return None, None
    first = errors[0]
    if isinstance(first, dict):
        code = first.get("code")
        message = first.get("message")
        return (
            code if isinstance(code, int) and not isinstance(code, bool) else None,
            _vendor_text(message, scrub) if message is not None else None,
        )
    return None, _vendor_text(first, scrub)


def _vendor_text(value: object, scrub: Callable[[str], str]) -> str:
    """A vendor message for an error: scrubbed and short; a nested value is named, not printed."""
    if isinstance(value, (str, int, float, bool)):
        text = scrub(str(value))
        return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"
    return f"({json_type(value)})"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, (pendulum.instance(moment) - pendulum.now("UTC")).total_seconds())


def _describe_body(body: bytes) -> str:
    head = body[:512].lstrip().lower()
    if not head:
        return "an empty body"
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "an HTML page instead of JSON"
    try:
        body.decode("utf-8-sig")
    except UnicodeDecodeError:
        return "a body that is not UTF-8"
    if body.lstrip()[:1] in (b"[", b"{"):
        return "a body that is not JSON (or nested too deeply)"
    return "a body that is not JSON"


_JSON_NAMES: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def json_type(value: object) -> str:
    """
    How a JSON reader names the type of ``value``: a ``dict`` is "an object".

    :param value: a decoded JSON value.
    """
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _case_insensitive(headers: Mapping[str, str]) -> Mapping[str, str]:
    """``headers`` looked up without regard to case."""
    from requests.structures import CaseInsensitiveDict  # here: requests is heavy for a DAG file that needs a trigger

    return headers if isinstance(headers, CaseInsensitiveDict) else CaseInsensitiveDict(headers)
