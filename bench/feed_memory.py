"""
Figure 6b: the live feed's memory over a long, fast match, run as the triggerer runs it: watchers
(``SfiMatchEventTrigger(...).run()``) in one asyncio loop, in this process, against the sandbox on
loopback. The sandbox runs in a child process (it keeps every event it emits, which would otherwise
count against this process's memory) and emits ``EVENTS`` events at a steady ``RATE`` per second:
mostly STATS and ODDS updates, some MAIN events, over many matches and leagues.

Three watchers, one per channel, as three assets would have: STATS (fires on ``stats_update``; the
``batch_update`` events pass through its dedupe without firing), ODDS (fires on all) and MAIN (fires
on goals). Each has an in-memory stand-in for the asset state store, which serialises the dedupe state
the trigger stores after each event it fires, as the real store does before sending it to the
supervisor. Tokens live ``TTL`` seconds, so the feeds renew them during the run.

Sampled every ``SAMPLE_EVERY`` events through the feeds: this process's RSS (``VmRSS`` in
/proc/self/status) and ``len()`` of each watcher's dedupe state. Flat: RSS grows by less than
``FLAT_MIB`` MiB from 10% of the run (the warm-up: imports, connections and the dedupe filling up to
its capacity happen before it) to the end.

The last line printed is the JSON figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

EVENTS = 30_000
RATE = 500  # events per second: well below what the watchers can take here (about 800), so no backlog builds up
TTL = 10
SAMPLE_EVERY = 1_500  # 10% of EVENTS is a sample
FLAT_MIB = 5.0
WATCHERS = 3
LEAGUES = [f"{0xA1EA6E000000 + n:016x}" for n in range(8)]
MATCHES = [f"{0x3A7C4000000 + n:016x}" for n in range(64)]
# (channel, type, event_type) by share of the events.
MIX = [
    *[("STATS", "event", "stats_update")] * 50,
    *[("STATS", "event", "batch_update")] * 5,
    *[("ODDS", "event", "odds_update")] * 35,
    *[("MAIN", "goal", None)] * 6,
    *[("MAIN", "halftime", None)] * 4,
]
FIRES = {("STATS", "stats_update"), ("ODDS", "odds_update"), ("MAIN", "goal")}


def selected(counts: dict[str, int]) -> int:
    """How many of the emitted events (``counts`` by ``channel:type``) the watchers select: :data:`FIRES`."""
    return sum(n for name, n in counts.items() if tuple(name.split(":")) in FIRES)


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


# The child: the sandbox, and the events.


def serve() -> None:
    from airflow_sfi.sandbox import SandboxServer

    with SandboxServer(ttl=TTL) as api:
        print(json.dumps({"connection": api.connection("sandbox-key-mega")}), flush=True)
        sys.stdin.readline()  # "go": the watchers are running
        deadline = time.monotonic() + 60
        while sum(len(s.topics) for s in api.feed.sessions()) < WATCHERS:  # one topic each, on one shared socket
            if time.monotonic() > deadline:
                raise TimeoutError("the watchers did not subscribe")
            time.sleep(0.05)
        counts: dict[str, int] = {}
        started = time.monotonic()
        for n in range(EVENTS):
            if (ahead := started + n / RATE - time.monotonic()) > 0:
                time.sleep(ahead)
            channel, kind, event_type = MIX[n % len(MIX)]
            match = MATCHES[n % len(MATCHES)]
            data = {"minute": n // 1000 % 90, "seq": n, "value": [n % 7, n % 11]}
            api.emit(
                channel, kind, match_id=match, league_id=LEAGUES[n % len(LEAGUES)], data=data, event_type=event_type
            )
            name = f"{channel}:{event_type or kind}"
            counts[name] = counts.get(name, 0) + 1
        emitted = time.monotonic() - started
        print(json.dumps({"counts": counts, "emit_seconds": emitted}), flush=True)
        sys.stdin.readline()  # "stop"
        calls = {e: len(api.calls(e)) for e in ("ws/new", "ws/renew")}
        print(json.dumps({"calls": calls, "connections": len(api.ws_connections())}), flush=True)


# The parent: the watchers.


def read_json(stream: Any) -> Any:
    """The child's next JSON line (Airflow may print to stdout before it)."""
    for line in stream:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("the sandbox process ended without an answer")


class MemoryStateStore:
    """The asset state store's interface; the value is serialised as the real store serialises it."""

    def __init__(self) -> None:
        self.value: str | None = None
        self.writes = 0

    async def aget(self, key: str) -> Any:
        return None if self.value is None else json.loads(self.value)

    async def aset(self, key: str, value: Any) -> None:
        self.value = json.dumps(value)
        self.writes += 1


def main() -> None:
    import airflow_sfi.triggers.match_event as match_event
    from airflow_sfi.protocol.messages import Deduplicator

    dedupes: list[Deduplicator] = []
    seen = [0]  # selected events through the feeds' dedupe

    class CountingDeduplicator(Deduplicator):
        """
        Deduplicator as the trigger makes it, counted and kept track of (nothing else changes). Only the
        feed's own (default capacity) counts, not the smaller one behind the stored state.
        """

        def first_time(self, event: Any) -> bool:
            if self.capacity != match_event.STATE_KEYS:
                seen[0] += 1
            return super().first_time(event)

        @classmethod
        def from_state(cls, state: object, capacity: int = 2048) -> Deduplicator:
            dedupe = super().from_state(state, capacity)
            if capacity != match_event.STATE_KEYS:
                dedupes.append(dedupe)
            return dedupe

    match_event.Deduplicator = CountingDeduplicator  # type: ignore[attr-defined]
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout
    try:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = read_json(stdout)["connection"]
        watchers: list[Any] = [
            match_event.SfiMatchEventTrigger(channel="STATS", event_types=["stats_update"]),
            match_event.SfiMatchEventTrigger(channel="ODDS"),
            match_event.SfiMatchEventTrigger(channel="MAIN", event_types=["goal"]),
        ]
        stores = [MemoryStateStore() for _ in watchers]
        fired: list[dict[str, int]] = [{} for _ in watchers]
        seen_seq = bytearray(EVENTS)  # by the event's data["seq"]: a set of keys would grow this process
        duplicates = [0]
        flushes = [0]
        samples: list[dict[str, Any]] = []
        result: dict[str, Any] = {}

        async def watch(index: int) -> None:
            trigger = watchers[index]
            trigger.asset_state_store = stores[index]
            async for event in trigger.run():
                if "key" not in event.payload:  # the watcher's flush marker after a burst: no event
                    flushes[0] += 1
                    continue
                seq = event.payload["data"]["seq"]
                duplicates[0] += seen_seq[seq]
                seen_seq[seq] = 1
                name = f"{event.payload['channel']}:{event.payload['type']}"
                fired[index][name] = fired[index].get(name, 0) + 1

        def sample() -> None:
            samples.append(
                {
                    "events": seen[0],
                    "rss_kib": rss_kib(),
                    "dedupe_len": [len(d) for d in dedupes],
                    "t": time.monotonic(),
                }
            )

        async def run() -> None:
            tasks = [asyncio.create_task(watch(i)) for i in range(len(watchers))]
            try:
                stdin.write("go\n")  # the child starts once every watcher is subscribed
                stdin.flush()
                done = asyncio.ensure_future(asyncio.to_thread(read_json, stdout))
                while seen[0] == 0:
                    await asyncio.sleep(0.01)
                sample()
                next_at = SAMPLE_EVERY
                emitted_all = None
                # Until every event a watcher selects went through its dedupe (the feed drops the others earlier).
                while not done.done() or seen[0] < selected(done.result()["counts"]):
                    if done.done() and emitted_all is None:
                        emitted_all = time.monotonic()
                    if seen[0] >= next_at:
                        sample()
                        next_at += SAMPLE_EVERY
                    if done.done() and time.monotonic() - samples[-1]["t"] > 30:
                        break  # some never arrived: reported as lost
                    await asyncio.sleep(0.01)
                sample()
                # How far behind the emitter the watchers ended (within the 10 ms poll; 0: caught up).
                result["lag_at_end_s"] = 0.0 if emitted_all is None else time.monotonic() - emitted_all
                result.update(done.result())
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        started, cpu_started = time.monotonic(), time.process_time()
        asyncio.run(run())
        seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu_started
        child.stdin.write("stop\n")
        child.stdin.flush()
        result.update(read_json(stdout))
    finally:
        with contextlib.suppress(Exception):
            child.stdin.close()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()

    counts: dict[str, int] = result["counts"]
    expected = selected(counts)
    total_fired = sum(sum(f.values()) for f in fired)
    at = {0.1: next(s for s in samples if s["events"] >= 0.1 * EVENTS), 1.0: samples[-1]}
    growth_mib = (at[1.0]["rss_kib"] - at[0.1]["rss_kib"]) / 1024
    capacities = [d.capacity for d in dedupes]
    # Past the warm-up for certain: from the first sample with every dedupe state full.
    full = next((s for s in samples if s["dedupe_len"] == capacities), samples[-1])
    print(
        json.dumps(
            {
                "events_emitted": sum(counts.values()),
                "events_through_feeds": seen[0],
                "by_kind": counts,
                "rate_per_s": RATE,
                "emit_seconds": result["emit_seconds"],
                "lag_at_end_s": result["lag_at_end_s"],
                "seconds": seconds,
                "ttl_s": TTL,
                "api_calls": result["calls"],
                "ws_connections": result["connections"],
                "watchers": len(watchers),
                "fired": total_fired,
                "should_fire": expected,
                "lost": expected - total_fired + duplicates[0],
                "duplicated": duplicates[0],
                "flush_markers": flushes[0],
                "state_writes": sum(s.writes for s in stores),
                "stored_state_bytes": [len(s.value or "") for s in stores],
                "dedupe_capacity": capacities,
                "samples": [{k: v for k, v in s.items() if k != "t"} for s in samples],
                "rss_mib_at_10pct": at[0.1]["rss_kib"] / 1024,
                "rss_mib_at_100pct": at[1.0]["rss_kib"] / 1024,
                "events_at_10pct": at[0.1]["events"],
                "events_at_100pct": at[1.0]["events"],
                "dedupe_len_at_10pct": at[0.1]["dedupe_len"],
                "dedupe_len_at_100pct": at[1.0]["dedupe_len"],
                "growth_mib": growth_mib,
                "events_when_every_dedupe_full": full["events"],
                "growth_mib_after_every_dedupe_full": (at[1.0]["rss_kib"] - full["rss_kib"]) / 1024,
                "cpu_seconds": cpu_seconds,
                "cpu_us_per_event": cpu_seconds / max(seen[0], 1) * 1e6,
                "flat_mib": FLAT_MIB,
                "flat": growth_mib < FLAT_MIB,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main()
