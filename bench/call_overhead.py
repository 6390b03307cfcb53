"""Figure 2: per-call time of SfiHook.get_ws_token() against bare requests and HttpHook.run, same sandbox URL."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import requests

from airflow_sfi.sandbox import SandboxServer

KEY = "sandbox-key-pro"


def main(calls: int = 500, rounds: int = 10) -> dict[str, dict[str, float]]:
    with SandboxServer(ttl=3600, rate_limit=10**9) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection(KEY)
        os.environ["AIRFLOW_CONN_HTTP_SFI"] = json.dumps({"conn_type": "http", "host": api.url})
        from airflow.providers.http.hooks.http import HttpHook

        from airflow_sfi.hooks.sfi import SfiHook

        url = f"{api.url}/v1/ws/new/"
        session = requests.Session()
        sfi = SfiHook()
        http = HttpHook(method="GET", http_conn_id="http_sfi")
        contenders: dict[str, Callable[[], object]] = {
            "bare requests": lambda: session.get(url, params={"t": KEY}, timeout=10).json(),
            "SfiHook.get_ws_token": sfi.get_ws_token,
            "HttpHook.run": lambda: http.run("/v1/ws/new/", data={"t": KEY}).json(),
        }
        for call in contenders.values():  # warm up: connection, imports, connection lookup
            call()
        per_call: dict[str, list[float]] = {name: [] for name in contenders}
        batch = calls // rounds
        for _ in range(rounds):  # interleaved batches
            for name, call in contenders.items():
                started = time.perf_counter()
                for _ in range(batch):
                    call()
                per_call[name].append((time.perf_counter() - started) / batch)
    base = statistics.median(per_call["bare requests"])
    return {
        name: {
            "median_us_per_call": statistics.median(values) * 1e6,
            "ratio_to_bare_requests": statistics.median(values) / base,
            "calls": batch * rounds,
        }
        for name, values in per_call.items()
    }


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:]))))
