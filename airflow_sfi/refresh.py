"""
The refresh of a held token, one policy for the triggerer and the worker: renew first, and when
``ws/renew`` cannot help, wait out the old token and ask ``ws/new`` for a fresh one.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal

from airflow_sfi.aio import in_thread
from airflow_sfi.exceptions import SfiApiError, SfiError, SfiResponseError
from airflow_sfi.protocol.times import seconds_until

if TYPE_CHECKING:
    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.protocol.token import WsToken

Action = Literal["refresh", "renew", "new"]
ACTIONS: tuple[Action, ...] = ("refresh", "renew", "new")
# Sleep at most this long at a time, so a changed system clock is noticed.
MAX_SLEEP_SECONDS = 60.0
# After the held token's expiry, ws/new may still return it for a moment (clocks differ): ask again this often.
NEW_TOKEN_ATTEMPTS = 6
NEW_TOKEN_PAUSE_SECONDS = 0.5

SleepUntil = Callable[[datetime.datetime], Awaitable[None]]


async def sleep_until(moment: datetime.datetime) -> None:
    """Sleep until ``moment``, in steps of at most :data:`MAX_SLEEP_SECONDS`."""
    while (left := seconds_until(moment)) > 0:
        await asyncio.sleep(min(left, MAX_SLEEP_SECONDS))


def renew_unavailable(exc: SfiError) -> str | None:
    """
    Why ``exc`` from ``ws/renew`` means renewing cannot help, or None when it is an ordinary failure.

    :param exc: what ``SfiHook.renew_ws_token`` raised.
    """
    if isinstance(exc, SfiResponseError):
        return f"ws/renew answered in an unexpected shape ({exc})"
    if not isinstance(exc, SfiApiError):
        return None
    said = (exc.vendor_message or "").lower()
    if exc.http_status == 404 or exc.api_status == 404 or "not found" in said or "does not exist" in said:
        return "ws/renew is not available (HTTP 404)"
    if "no active" in said:
        return f"ws/renew found no active token ({exc.vendor_message})"
    return None


async def refresh_token(
    hook: SfiHook,
    expires_at: datetime.datetime,
    renew_margin: datetime.timedelta,
    action: Action,
    log: Any,
    *,
    sleep: SleepUntil = sleep_until,
) -> WsToken:
    """
    Wait until ``expires_at - renew_margin``, then get the token that follows the held one.

    ``refresh`` calls ``ws/renew`` once and accepts a token valid for longer than the held one; when
    renew is absent or has nothing to renew it logs one WARNING, waits until ``expires_at`` and calls
    ``ws/new``. ``renew`` stops there with an error instead; ``new`` only waits out the old token.
    Calls run in a thread (:func:`~airflow_sfi.aio.in_thread`), so the event loop (the
    triggerer's) never blocks.

    :param hook: the hook to call.
    :param expires_at: when the held token expires.
    :param renew_margin: how long before ``expires_at`` to renew.
    :param action: ``refresh``, ``renew`` or ``new``.
    :param log: where the fallback is reported (a logger of the task or the trigger).
    :param sleep: waits until a moment; injectable for tests.
    """
    if action != "new":
        await sleep(expires_at - renew_margin)
        renewed, why_not = await in_thread(_renew, hook, expires_at)
        if renewed is not None:
            return renewed
        if action == "renew":
            raise SfiError(f"could not renew the token: {why_not}")
        log.warning(
            "%s: waiting until the token expires at %s, then asking ws/new for a new one",
            why_not,
            expires_at.isoformat(),
        )
    await sleep(expires_at)
    for attempt in range(NEW_TOKEN_ATTEMPTS):
        token = await in_thread(hook.get_ws_token)
        if token.expires_at > expires_at:
            return token
        if attempt + 1 < NEW_TOKEN_ATTEMPTS:
            await asyncio.sleep(NEW_TOKEN_PAUSE_SECONDS)
    raise SfiError(
        f"ws/new still returned the token that expired at {expires_at.isoformat()} "
        f"after {NEW_TOKEN_ATTEMPTS} tries (is this machine's clock behind the API's?)"
    )


def _renew(hook: SfiHook, expires_at: datetime.datetime) -> tuple[WsToken | None, str]:
    """One ``ws/renew`` call: (a token that outlives ``expires_at``, "") or (None, why renew cannot help)."""
    why_not = None
    try:
        token = hook.renew_ws_token()
    except SfiError as exc:
        why_not = renew_unavailable(exc)
        if why_not is None:
            raise
    if why_not is not None:
        return None, why_not
    if token.expires_at <= expires_at:
        return None, f"ws/renew did not extend the token (it still expires at {token.expires_at.isoformat()})"
    return token, ""
