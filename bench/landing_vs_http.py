"""
Figure: one multi-page day of ``matches/day/basic`` landed as JSON Lines, side by side, against the same sandbox:
``SfiToObjectStorageOperator``, and providers-http's ``HttpOperator`` with a ``pagination_function`` (its
``response_filter`` gathers the items, which a task must then write). For each: the calls, the time, the peak
memory the landing allocates (tracemalloc), the size of what it returns to XCom, and what happens when the
window's quota is smaller than the day or a page is malformed halfway.

Needs providers-http: `make bench` runs it in its own environment.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_sfi.sandbox import SandboxServer

KEY = "sandbox-key-pro"
EXTRA_MATCHES = 247  # with the three scripted ones, 250 matches: 10 pages of 25 on PRO
PATH = "matches/day/basic/"
ROUNDS = 5


def http_operator(api: SandboxServer, day: str, out: Path) -> Any:
    from airflow.providers.http.operators.http import HttpOperator

    os.environ["AIRFLOW_CONN_SFI_HTTP"] = json.dumps({"conn_type": "http", "host": api.url})

    def next_page(response: Any) -> dict[str, Any] | None:
        page = response.json()["pagination"][0]
        if page["page"] * page["per_page"] >= page["items"]:
            return None
        return {"data": {"t": KEY, "d": day, "p": page["page"] + 1}}

    operator = HttpOperator(
        task_id="land_with_http",
        http_conn_id="sfi_http",
        method="GET",
        endpoint=f"v1/{PATH}",
        data={"t": KEY, "d": day},
        pagination_function=next_page,
        response_filter=lambda responses: [item for r in responses for item in r.json()["result"]],
    )
    items = operator.execute(context={})  # type: ignore[arg-type]
    with out.open("w") as file:  # the task that a user writes after it
        file.writelines(json.dumps(item) + "\n" for item in items)
    return items


def sfi_operator(api: SandboxServer, day: str, out: Path) -> Any:
    from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator

    os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection(KEY)
    from airflow.sdk.exceptions import TaskDeferred

    operator = SfiToObjectStorageOperator(
        task_id="land_with_sfi", endpoint=PATH, api_params={"d": day}, destination=f"file://{out}"
    )
    resume: Callable[..., Any] = operator.execute
    kwargs: dict[str, Any] = {}
    while True:  # what the triggerer does for a deferral: wait for the moment, then resume the task
        try:
            return resume(context={}, **kwargs)
        except TaskDeferred as deferred:
            time.sleep(max(0.0, deferred.trigger.moment.timestamp() - time.time()))  # type: ignore[attr-defined]
            resume, kwargs = getattr(operator, deferred.method_name), {"event": None, **(deferred.kwargs or {})}


def run(land: Callable[[SandboxServer, str, Path], Any], **sandbox: Any) -> dict[str, Any]:
    """Land the day once against a fresh sandbox; what it cost and how it ended."""
    day = time.strftime("%Y%m%d", time.gmtime())
    with SandboxServer(extra_matches=EXTRA_MATCHES, match_day=day, **sandbox) as api:
        out = Path(tempfile.mkdtemp(prefix="sfi-bench-land-")) / f"{day}.jsonl"
        tracemalloc.start()
        started = time.perf_counter()
        outcome, returned = "landed", None
        try:
            returned = land(api, day, out)
        except Exception as exc:  # what the contender does is the figure
            outcome = f"raised {type(exc).__name__}: {str(exc)[:120]}"
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        calls = api.calls(PATH.rstrip("/"))
        lines = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        return {
            "outcome": outcome,
            "seconds": seconds,
            "calls": len(calls),
            "calls_429": sum(c.status == 429 for c in calls),
            "items_landed": len(lines),
            "distinct_ids": len({item.get("id") for item in lines if isinstance(item, dict)}),
            "peak_alloc_kib": peak / 1024,
            "xcom_bytes": len(json.dumps(returned, default=str)) if returned is not None else 0,
        }


def main() -> None:
    # Imported before anything is timed or traced: the figure is the landing, not Airflow's imports.
    import airflow.providers.http.operators.http  # noqa: F401

    import airflow_sfi.transfers.sfi_to_object_storage  # noqa: F401

    contenders = {"SfiToObjectStorageOperator": sfi_operator, "HttpOperator + pagination_function": http_operator}
    result: dict[str, Any] = {"extra_matches": EXTRA_MATCHES, "per_page": 25, "rounds": ROUNDS}
    for land in contenders.values():
        run(land)  # warm up: lazy imports and first connections are not the figure
    for name, land in contenders.items():
        plain = [run(land) for _ in range(ROUNDS)]
        median = sorted(plain, key=lambda r: r["seconds"])[ROUNDS // 2]
        result[name] = {
            "plain": {**median, "peak_alloc_kib": max(r["peak_alloc_kib"] for r in plain)},
            # A quota of 6 calls per 3 s window, smaller than the day's 10 pages.
            "small_quota": run(land, rate_limit=6, rate_window=3.0),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
