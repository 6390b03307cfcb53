"""Figure 3: ws/new calls per token used, over many token lifetimes, ours against a naive periodic refresh."""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from typing import Any

import pendulum
from airflow.sdk.exceptions import TaskDeferred

from airflow_sfi.sandbox import SandboxServer

TTL = 3.0
MARGIN = datetime.timedelta(seconds=1)


def run_deferrable(op: Any, obj: Any = None) -> Any:
    """Run a task the way the triggerer would: on TaskDeferred, sleep until the trigger's moment, resume."""
    try:
        return op.execute(context={})
    except TaskDeferred as deferred:
        time.sleep(max(0.0, (deferred.trigger.moment - pendulum.now("UTC")).total_seconds()))
        return getattr(op, deferred.method_name)(context={}, event=None, **(deferred.kwargs or {}))


def ours(lifetimes: int) -> dict[str, float]:
    from airflow_sfi.operators.ws_token import SfiWsTokenOperator
    from airflow_sfi.sensors.ws_token import SfiWsTokenExpirySensor

    with SandboxServer(ttl=TTL) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection()
        used: set[str] = set()
        started = time.monotonic()
        while len(used) < lifetimes:  # one iteration = one run of the rotation DAG
            token = SfiWsTokenOperator(task_id="get_token").execute(context={})  # type: ignore[arg-type]
            used.add(token["token"])
            run_deferrable(
                SfiWsTokenExpirySensor(task_id="wait", expires_at=token, refresh_margin=MARGIN, deferrable=True)
            )
            refreshed = run_deferrable(SfiWsTokenOperator(task_id="refresh", min_validity=2 * MARGIN, deferrable=True))
            used.add(refreshed["token"])
        calls = len(api.calls("ws/new"))
        return {
            "calls": calls,
            "tokens": len(used),
            "calls_per_token": calls / len(used),
            "seconds": time.monotonic() - started,
        }


def naive(seconds: float, period: float) -> dict[str, float]:
    """A PythonOperator on a timer: call ws/new every `period` seconds, whatever it returns."""
    import requests

    with SandboxServer(ttl=TTL) as api:
        used: set[str] = set()
        uncovered = 0.0
        held_until = 0.0
        started = time.time()
        while time.time() - started < seconds:
            body = requests.get(f"{api.url}/v1/ws/new/", params={"t": "sandbox-key-pro"}, timeout=10).json()
            item = body["result"][0]
            used.add(item["token"])
            now = time.time()
            uncovered += max(0.0, now - held_until) if held_until else 0.0
            held_until = pendulum.parse(item["expires_at"]).timestamp()
            time.sleep(period)
        calls = len(api.calls("ws/new"))
        return {
            "calls": calls,
            "tokens": len(used),
            "calls_per_token": calls / len(used),
            "seconds_without_valid_token": uncovered,
            "period": period,
        }


if __name__ == "__main__":
    lifetimes = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    result = {"ttl_seconds": TTL, "margin_seconds": MARGIN.total_seconds(), "ours": ours(lifetimes)}
    # A naive cron every TTL/5 (every 5 minutes for the real 25-minute tokens), over the same time.
    result["naive_every_ttl_over_5"] = naive(result["ours"]["seconds"], TTL / 5)
    print(json.dumps(result))
