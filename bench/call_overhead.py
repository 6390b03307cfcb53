"""
Figure 2: per-call time of SfiHook against bare requests on the same call, same sandbox URL, and where it goes.

Two calls: ``ws/new`` (``SfiHook.get_ws_token``, and providers-http's ``HttpHook.run`` when installed) and a
data endpoint, ``matches/view/basic`` (``SfiHook.get``). Each contender runs in interleaved batches; the
figure is the median time per call of its batches. Bare requests reads the environment's proxy and CA
settings and ``~/.netrc`` on every call, the hook once: a second bare contender does the same as the hook,
so the hook's own work shows too. Then cProfile over the hook's ``get`` says which part of
its time is the HTTP library's and which the hook's own (checks, retries, parsing).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable

import requests

from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.sandbox.live import MATCHES

KEY = "sandbox-key-pro"
TARGET = 1.05
DATA_ENDPOINT = "matches/view/basic"
BARE_SETTLED = "bare requests, environment read once"


def measure(contenders: dict[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, dict[str, float]]:
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
            "batch": batch,
        }
        for name, values in per_call.items()
    }


def profile(call: Callable[[], object], calls: int) -> list[dict[str, object]]:
    """
    cProfile over ``calls`` calls of the hook's ``get``: each part's share of its time.

    The profiler's own cost weighs on every function call, so the shares of the many small steps (the
    hook's) come out larger than they are; the HTTP library's share is, if anything, understated.
    """
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def cumulative(fragment: str, name: str) -> float:
        return sum(v[3] for (path, _, func), v in stats.items() if func == name and path.endswith(fragment))

    total = cumulative("hooks/sfi.py", "get")
    http = cumulative("requests/sessions.py", "get")
    read = cumulative("hooks/sfi.py", "_read_capped")
    parse = cumulative("hooks/sfi.py", "_parse")
    checks = cumulative("hooks/sfi.py", "_checked")
    attempt = cumulative("hooks/sfi.py", "_call_once")
    retrying = cumulative("tenacity/__init__.py", "__call__")
    parts = {
        "the request and its headers (requests, urllib3, the socket)": http,
        "reading the body (urllib3, capped at 1 MiB)": read,
        "parsing the envelope and the rate-limit headers": parse,
        "checking the endpoint and parameters": checks,
        "the attempt's own steps (_call_once)": attempt - http - read - parse,
        "tenacity (only after a failed first attempt)": retrying,
        "the rest of SfiHook.get (_call: query, masking)": total - attempt - retrying - checks,
    }
    return [{"part": part, "share": max(0.0, seconds) / total} for part, seconds in parts.items()]


def main(calls: int = 500, rounds: int = 10) -> dict[str, object]:
    with SandboxServer(ttl=3600, rate_limit=10**9) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection(KEY)
        os.environ["AIRFLOW_CONN_HTTP_SFI"] = json.dumps({"conn_type": "http", "host": api.url})
        from airflow_sfi.hooks.sfi import SfiHook

        session = requests.Session()
        # The same call as the hook makes it: the environment's proxy and CA settings read once, not per call.
        settled = requests.Session()
        settings = settled.merge_environment_settings(api.url, {}, True, None, None)
        settled.trust_env = False
        sfi = SfiHook()
        ws_new = f"{api.url}/v1/ws/new/"
        ws: dict[str, Callable[[], object]] = {
            "bare requests": lambda: session.get(ws_new, params={"t": KEY}, timeout=10).json(),
            "SfiHook.get_ws_token": sfi.get_ws_token,
            BARE_SETTLED: lambda: settled.get(ws_new, params={"t": KEY}, timeout=10, **settings).json(),
        }
        try:
            from airflow.providers.http.hooks.http import HttpHook
        except ImportError:  # providers-http is in the bench group only
            pass
        else:
            http = HttpHook(method="GET", http_conn_id="http_sfi")
            ws["HttpHook.run"] = lambda: http.run("/v1/ws/new/", data={"t": KEY}).json()
        data_url, data_params = f"{api.url}/v1/{DATA_ENDPOINT}/", {"t": KEY, "i": MATCHES[0]}
        data: dict[str, Callable[[], object]] = {
            "bare requests": lambda: session.get(data_url, params=data_params, timeout=10).json(),
            "SfiHook.get": lambda: sfi.get(DATA_ENDPOINT, i=MATCHES[0]),
            BARE_SETTLED: lambda: settled.get(data_url, params=data_params, timeout=10, **settings).json(),
        }
        figures = {"ws/new": measure(ws, calls, rounds), DATA_ENDPOINT: measure(data, calls, rounds)}
        where = profile(data["SfiHook.get"], max(100, calls // 2))
    return {"endpoints": figures, "target": TARGET, "profile": where, "profiled_endpoint": DATA_ENDPOINT}


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) for a in sys.argv[1:]))))
