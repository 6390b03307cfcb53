"""
Figure 3: API calls per token lifetime and the time a consumer held a dead token, over many lifetimes,
for the rotation (renew available, renew absent) and for a naive periodic refresh.

The rotation is the real code path minus the scheduler: get_token once, then, per lifetime, the
SfiWsTokenRefreshTrigger that refresh_token defers to, run to its TaskSuccessEvent; its token is what
the next run reuses. A GapWatcher polls what was published every 50 ms and checks it against the
sandbox's token records.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import sys
import time
from typing import Any

import requests

from airflow_sfi.sandbox import GapWatcher, SandboxServer

TTL = 4.0
MARGIN = 1.5
POLL = 0.05


def rotation(refreshes: int, renew: str) -> dict[str, Any]:
    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.triggers.ws_token import SfiWsTokenRefreshTrigger

    async def refreshed(expires_at: str) -> dict[str, Any]:
        trigger = SfiWsTokenRefreshTrigger(
            sfi_conn_id="sfi_default", expires_at=expires_at, renew_margin=datetime.timedelta(seconds=MARGIN)
        )
        async for event in trigger.run():
            return event.xcoms["return_value"]  # type: ignore[attr-defined,no-any-return]
        raise RuntimeError("the trigger ended without an event")

    with SandboxServer(ttl=TTL, renew=renew) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection()
        published = SfiHook().get_ws_token().to_dict()  # the first run's get_token
        started = time.monotonic()
        with GapWatcher(api.sandbox, lambda: published["token"], every=POLL) as watcher:
            for _ in range(refreshes):
                published = asyncio.run(refreshed(published["expires_at"]))
        calls = len(api.calls())
        periods = refreshes + 1  # the first token's validity, and one more per refresh
        return {
            "renew": renew,
            "lifetimes": periods,
            "calls": calls,
            "calls_per_lifetime": calls / periods,
            "tokens_issued": len(api.tokens()),
            "total_gap_seconds": watcher.total_gap,
            "longest_gap_seconds": watcher.longest_gap,
            "seconds": time.monotonic() - started,
        }


def naive(seconds: float, period: float) -> dict[str, Any]:
    """A PythonOperator on a timer: call ws/new every `period` seconds and publish whatever it returns."""
    with SandboxServer(ttl=TTL) as api:
        published: dict[str, str] = {}
        started = time.monotonic()
        with GapWatcher(api.sandbox, lambda: published.get("token"), every=POLL) as watcher:
            while time.monotonic() - started < seconds:
                body = requests.get(f"{api.url}/v1/ws/new/", params={"t": "sandbox-key-pro"}, timeout=10).json()
                published = body["result"][0]
                time.sleep(period)
        calls = len(api.calls())
        lifetimes = len(api.tokens())
        return {
            "period_seconds": period,
            "lifetimes": lifetimes,
            "calls": calls,
            "calls_per_lifetime": calls / lifetimes,
            "total_gap_seconds": watcher.total_gap,
            "longest_gap_seconds": watcher.longest_gap,
            "seconds": seconds,
        }


if __name__ == "__main__":
    lifetimes = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    result: dict[str, Any] = {"ttl_seconds": TTL, "margin_seconds": MARGIN, "poll_seconds": POLL}
    # n refreshes: n + 1 token lifetimes (validity periods), the first one included.
    result["renew_available"] = rotation(lifetimes - 1, "extend")
    result["renew_absent"] = rotation(lifetimes - 1, "absent")
    # A naive cron every TTL/5 (every 5 minutes for the real 25-minute tokens), as long as the renew-absent run.
    result["naive_every_ttl_over_5"] = naive(result["renew_absent"]["seconds"], TTL / 5)
    print(json.dumps(result))
