"""
Figure 8: ``SfiToObjectStorageOperator`` landing against the sandbox on loopback, into a local folder.

The sandbox runs in a child process (its answers and request log would otherwise count against this
process's memory and CPU); the operator runs here, as a worker runs it (``execute``, and
``execute_complete`` after each wait, the trigger's wait slept out here).

- **Throughput and memory**: ``players/list`` with 4 items a page, 1,103 pages (the sandbox serves it in
  about a millisecond, so the figure is the landing's, not the sandbox's). Pages per second over the whole
  job (publishing included); the time outside the API calls per page; this process's RSS (``VmRSS``) sampled
  every ``SAMPLE_EVERY`` pages: its growth from 10% of the pages (the warm-up: imports, connections) to the
  end, publishing included. Goal: under ``GOAL_MIB``.
- **A day**: ``matches/day/basic`` for a day of 250 matches, 25 a page (PRO): 10 pages, ``DAY_RUNS`` times.
- **The quota**: 200 pages (one match a page) against 50 calls per 2-second window: the calls, the 429s
  (goal 0), the waits, and how long after each window's reset the next call came.

Calls per landed item are the sandbox's request log over the items landed. The last line printed is the
JSON figure.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

DAY = "20250301"
LIST_PER_PAGE = 4  # players/list: 4,411 players, so 1,103 pages
SAMPLE_EVERY = 50
GOAL_MIB = 20.0
DAY_RUNS = 5
QUOTA = {"limit": 50, "window": 2.0, "pages": 200}


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


# The child: a sandbox, its request log on demand.


def serve(options: dict[str, Any]) -> None:
    from airflow_sfi.sandbox import SandboxServer

    with SandboxServer(**options) as api:
        print(json.dumps({"connection": api.connection()}), flush=True)
        sys.stdin.readline()  # "report": the landing is over
        calls = api.calls()
        print(json.dumps({"calls": [[c.at, c.status] for c in calls]}), flush=True)


def read_json(stream: Any) -> Any:
    """The child's next JSON line (Airflow may print to stdout before it)."""
    for line in stream:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the sandbox process ended without an answer")


class Sandbox:
    """The sandbox in a child process, with ``sfi_default`` pointing at it."""

    def __init__(self, **options: Any) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "serve", json.dumps(options)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = read_json(self.process.stdout)["connection"]

    def calls(self) -> list[tuple[float, int]]:
        """The requests the sandbox answered, (time, status) each; the child then ends."""
        assert self.process.stdin is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        calls = [(at, status) for at, status in read_json(self.process.stdout)["calls"]]
        self.process.stdin.close()
        self.process.wait(timeout=30)
        return calls


# The parent: the operator.


def land(endpoint: str, api_params: dict[str, Any], destination: Path, run_id: str = "bench") -> dict[str, Any]:
    """One task's run: ``execute``, then ``execute_complete`` after each wait (slept out here)."""
    import pendulum
    from airflow.sdk.exceptions import TaskDeferred
    from airflow.sdk.execution_time.context import OutletEventAccessors

    from airflow_sfi.transfers.sfi_to_object_storage import SfiToObjectStorageOperator

    op = SfiToObjectStorageOperator(
        task_id="land", endpoint=endpoint, api_params=api_params, destination=f"file://{destination}"
    )
    ti = SimpleNamespace(dag_id="bench", task_id="land", run_id=run_id, map_index=-1)
    context: Any = {"ti": ti, "outlet_events": OutletEventAccessors()}
    waits: list[float] = []
    while True:
        try:
            result: dict[str, Any] = op.execute_complete(context) if waits else op.execute(context)
            return {**result, "waits": waits}
        except TaskDeferred as deferred:
            moment = deferred.trigger.moment
            waits.append(moment.timestamp())
            time.sleep(max(0.0, (moment - pendulum.now("UTC")).total_seconds()))


def throughput_and_memory(folder: Path) -> dict[str, Any]:
    """players/list, LIST_PER_PAGE a page: pages per second, time outside the calls, RSS every SAMPLE_EVERY pages."""
    from airflow_sfi.hooks.sfi import SfiHook
    from airflow_sfi.transfers import sfi_to_object_storage as module

    sandbox = Sandbox(per_page=LIST_PER_PAGE, rate_limit=1_000_000)
    samples: list[tuple[int, int]] = []
    in_calls = [0.0]
    write_part, get = module._Store.write_part, SfiHook.get

    def sampled_write_part(store: Any, page: int, items: Any) -> int:
        written = write_part(store, page, items)
        if page % SAMPLE_EVERY == 0:
            samples.append((page, rss_kib()))
        return written

    def timed_get(hook: Any, endpoint: str, /, **params: object) -> Any:
        started = time.perf_counter()
        try:
            return get(hook, endpoint, **params)
        finally:
            in_calls[0] += time.perf_counter() - started

    module._Store.write_part = sampled_write_part  # type: ignore[method-assign]
    SfiHook.get = timed_get  # type: ignore[method-assign]
    try:
        before = rss_kib()
        started = time.perf_counter()
        result = land("players/list", {}, folder / "players.jsonl")
        seconds = time.perf_counter() - started
        after = rss_kib()
    finally:
        module._Store.write_part, SfiHook.get = write_part, get  # type: ignore[method-assign]
    calls = sandbox.calls()
    pages = result["pages"]
    warm_page, warm_kib = next((p, kib) for p, kib in samples if p >= pages // 10)
    lines = (folder / "players.jsonl").read_text().splitlines()
    return {
        "endpoint": "players/list",
        "per_page": LIST_PER_PAGE,
        "pages": pages,
        "items": result["items"],
        "lines": len(lines),
        "distinct_ids": len({json.loads(line)["id"] for line in lines}),
        "seconds": seconds,
        "pages_per_second": pages / seconds,
        "ms_per_page_outside_calls": (seconds - in_calls[0]) / pages * 1000,
        "ms_per_page_in_calls": in_calls[0] / pages * 1000,
        "calls": len(calls),
        "calls_per_item": len(calls) / result["items"],
        "rss_mib_before": before / 1024,
        "rss_mib_at_warmup": warm_kib / 1024,
        "warmup_page": warm_page,
        "rss_mib_after": after / 1024,
        "rss_mib_peak_sampled": max(kib for _, kib in samples) / 1024,
        "growth_mib": (after - warm_kib) / 1024,
        "growth_mib_from_before": (after - before) / 1024,
        "goal_mib": GOAL_MIB,
        "samples": samples,
        "object_bytes": (folder / "players.jsonl").stat().st_size,
    }


def a_day(folder: Path) -> dict[str, Any]:
    """matches/day/basic for a day of 250 matches, 25 a page (PRO), DAY_RUNS times."""
    sandbox = Sandbox(match_day=DAY, extra_matches=247, rate_limit=1_000_000)
    seconds, results = [], []
    for run in range(DAY_RUNS):
        started = time.perf_counter()
        results.append(land("matches/day/basic", {"d": DAY}, folder / f"{DAY}.jsonl", run_id=f"run_{run}"))
        seconds.append(time.perf_counter() - started)
    calls = sandbox.calls()
    items = sum(r["items"] for r in results)
    return {
        "runs": DAY_RUNS,
        "matches": results[0]["items"],
        "pages": results[0]["pages"],
        "median_seconds": statistics.median(seconds),
        "pages_per_second": results[0]["pages"] / statistics.median(seconds),
        "calls": len(calls),
        "calls_per_item": len(calls) / items,
        "same_object_each_run": len({r["path"] for r in results}) == 1,
    }


def quota(folder: Path) -> dict[str, Any]:
    """QUOTA['pages'] pages against QUOTA['limit'] calls per QUOTA['window'] seconds."""
    sandbox = Sandbox(
        match_day=DAY,
        extra_matches=QUOTA["pages"] - 3,
        per_page=1,
        rate_limit=QUOTA["limit"],
        rate_window=QUOTA["window"],
    )
    started = time.time()
    result = land("matches/day/basic", {"d": DAY}, folder / "quota.jsonl")
    seconds = time.time() - started
    calls = sandbox.calls()
    # The sandbox's windows start at the first call after the previous one ended: after each wait, how long
    # after the end of the window before it did the next call come.
    starts = [calls[i][0] for i in range(0, len(calls), QUOTA["limit"])]
    after_reset = [b - (a + QUOTA["window"]) for a, b in itertools.pairwise(starts)]
    return {
        **QUOTA,
        "seconds": seconds,
        "calls": len(calls),
        "refused_429": sum(status == 429 for _, status in calls),
        "waits": len(result["waits"]),
        "items": result["items"],
        "next_call_after_reset_s": after_reset,
        "least_time_to_land_s": (QUOTA["pages"] - 1) // QUOTA["limit"] * QUOTA["window"],
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sfi-bench-landing-") as folder:
        figures = {
            "throughput": throughput_and_memory(Path(folder)),
            "day": a_day(Path(folder)),
            "quota": quota(Path(folder)),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(json.loads(sys.argv[2]))
    else:
        main()
