"""
Figure 6d: the live feed's CPU per event delivered to a trigger, with ``TRIGGERS`` watchers on one API key,
run as the triggerer runs them: ``SfiMatchEventTrigger(...).run()`` in one asyncio loop, in this process,
against the sandbox on loopback (MEGA key). The sandbox runs in a child process, so its own work (building
and sending frames, keeping every event it emits) is not counted, and emits ``EVENTS`` events at a steady
``RATE`` per second, below what the watchers can take here, so no backlog builds up.

Thirty watchers, one per asset as users write them: one per league (MAIN, goals) for ``LEAGUES`` leagues,
one per match (MAIN, any event) for one match of each league, and ten ``all``-scope ones with different
channels and event types (MAIN goals with or without other types, MAIN_REALTIME goals, STATS, ODDS,
and one waiting for kick-offs and full times, which never fires here). Each has an in-memory stand-in for
the asset state store, which serialises the dedupe state the trigger stores, as the real store does.
The events are mostly MAIN goals (each a new score of its match), over two matches per league, so that
several watchers select each one; every event is selected by at least one watcher.

A delivery is one event handed to one watcher that selected it, counted from what the watchers
yielded (flush markers apart). CPU is this process's ``time.process_time()`` (every thread) over the
steady part: from the first delivery of the event at ``WARMUP`` of the run (imports, the connection,
the subscriptions and the first reconciliation happen before it) to the last delivery (or, when some
never come, 10 s after the last event was emitted; they are reported as lost). Per delivery:
that CPU over the deliveries of the events from there on; per event: over those events (every frame
the socket received in that part is one of them). The sandbox reports how many sockets it admitted.

``--profile`` runs the watchers under cProfile and prints the top costs to stderr (the figure then
includes the profiler's own cost). The last line printed is the JSON figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import time
from typing import Any

from feed_memory import MemoryStateStore, read_json  # the sibling script: run as bench/feed_cpu.py

EVENTS = 9_000
RATE = 300  # events per second
WARMUP = 0.1  # the share of the events before the measured part
TARGET_US = 100.0  # CPU per delivery
KEY = "sandbox-key-mega"
LEAGUES = [f"{0x1EA6E0000000 + n:016x}" for n in range(10)]
# Two matches per league; the first of each is watched by its own watcher.
MATCHES = [(f"{0x3A7C5000000 + 16 * league + n:016x}", LEAGUES[league]) for n in range(2) for league in range(10)]
# (channel, scope, scope_id, event_types): one per asset.
TRIGGERS: list[tuple[str, str, str | None, list[str]]] = [
    *[("MAIN", "league", league, ["goal"]) for league in LEAGUES],
    *[("MAIN", "match", match, []) for match, _ in MATCHES[:10]],
    ("MAIN", "all", None, ["goal"]),
    ("MAIN", "all", None, []),
    ("MAIN", "all", None, ["goal", "match_end"]),
    ("MAIN", "all", None, ["goal", "halftime"]),
    ("MAIN", "all", None, ["match_start", "match_end"]),
    ("MAIN_REALTIME", "all", None, ["goal"]),
    ("STATS", "all", None, ["stats_update"]),
    ("STATS", "all", None, ["batch_update"]),
    ("ODDS", "all", None, ["odds_update"]),
    ("ODDS", "all", None, []),
]
# (channel, type, eventType) by share of the events: mostly MAIN goals.
MIX = [
    *[("MAIN", "goal", None)] * 16,
    ("STATS", "event", "stats_update"),
    ("STATS", "event", "batch_update"),
    ("ODDS", "event", "odds_update"),
    ("MAIN_REALTIME", "goal", None),
]


def events() -> list[tuple[str, str, str | None, str, str, dict[str, Any]]]:
    """Every event of the run, in order: (channel, type, eventType, match, league, data); data["seq"] is its index."""
    scores: dict[tuple[str, str], list[int]] = {}
    made = []
    for n in range(EVENTS):
        channel, kind, event_type = MIX[n % len(MIX)]
        match, league = MATCHES[n // len(MIX) % len(MATCHES)]
        data: dict[str, Any] = {"seq": n}
        if kind == "goal":  # each goal a new score of its match: a new identity key
            score = scores.setdefault((channel, match), [0, 0])
            side = n // len(MIX) // len(MATCHES) % 2
            score[side] += 1
            data |= {"team": ("home", "away")[side], "minute": sum(score) % 90 + 1, "score": list(score)}
        else:
            data |= {"minute": n // 1000 % 90 + 1, "value": [n % 7, n % 11]}
        made.append((channel, kind, event_type, match, league, data))
    return made


def selects(trigger: tuple[str, str, str | None, list[str]], event: tuple[Any, ...]) -> bool:
    channel, scope, scope_id, event_types = trigger
    event_channel, kind, event_type, match, league, _ = event
    if event_channel != channel or (event_types and (event_type or kind) not in event_types):
        return False
    return scope == "all" or scope_id == (match if scope == "match" else league)


def topic_key(trigger: tuple[str, str, str | None, list[str]]) -> str:
    channel, scope, scope_id, _ = trigger
    return f"{channel}:{scope}" if scope_id is None else f"{channel}:{scope}:{scope_id}"


def groups() -> list[dict[str, Any]]:
    """The watchers by channel, scope and event types, with how many of each."""
    counted: dict[tuple[str, str, tuple[str, ...]], int] = {}
    for channel, scope, _, event_types in TRIGGERS:
        counted[channel, scope, tuple(event_types)] = counted.get((channel, scope, tuple(event_types)), 0) + 1
    return [
        {"channel": channel, "scope": scope, "event_types": list(types), "count": n}
        for (channel, scope, types), n in counted.items()
    ]


def by_kind(planned: list[tuple[Any, ...]]) -> dict[str, int]:
    """How many events of each channel and type."""
    counted: dict[str, int] = {}
    for channel, kind, event_type, *_ in planned:
        name = f"{channel}:{event_type or kind}"
        counted[name] = counted.get(name, 0) + 1
    return counted


# The child: the sandbox, and the events.


def serve() -> None:
    from airflow_sfi.sandbox import SandboxServer

    planned = events()
    with SandboxServer() as api:
        print(json.dumps({"connection": api.connection(KEY)}), flush=True)
        wanted = json.loads(sys.stdin.readline())  # the watchers' topic keys: they are running

        def covered() -> int:
            held = {t for s in api.feed.sessions() if not s.closing for t in s.topics}
            return sum(t in held or f"{t.split(':')[0]}:all" in held for t in wanted)

        # Every watcher's topic covered, and no change for a second (the shared feed subscribes as they join).
        deadline, last, since = time.monotonic() + 30, -1, time.monotonic()
        while time.monotonic() < deadline and (last < len(wanted) or time.monotonic() - since < 1.0):
            if (now := covered()) != last:
                last, since = now, time.monotonic()
            time.sleep(0.05)
        started = time.monotonic()
        for n, (channel, kind, event_type, match, league, data) in enumerate(planned):
            if (ahead := started + n / RATE - time.monotonic()) > 0:
                time.sleep(ahead)
            api.emit(channel, kind, match_id=match, league_id=league, data=data, event_type=event_type)
        emitted = time.monotonic() - started
        print(json.dumps({"emit_seconds": emitted, "covered": last}), flush=True)
        sys.stdin.readline()  # "stop"
        records = api.ws_connections()
        admitted = [r for r in records if r.refused is None]
        print(
            json.dumps(
                {
                    "handshakes": len(records),
                    "sockets": len(admitted),
                    "refused_handshakes": len(records) - len(admitted),
                    "most_open_at_once": api.feed.max_sockets() if hasattr(api.feed, "max_sockets") else None,
                    "topics": sorted({t for r in admitted for t in r.subscriptions}),
                    "ws_new_calls": len(api.calls("ws/new")),
                    "rest_calls": len(api.calls()),
                }
            ),
            flush=True,
        )


# The parent: the watchers.


def main(profile: bool) -> None:
    from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

    planned = events()
    warm = int(EVENTS * WARMUP)
    expected = [[selects(t, e) for e in planned] for t in TRIGGERS]
    expected_total = sum(map(sum, expected))
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    stdin, stdout = child.stdin, child.stdout
    profiler = cProfile.Profile() if profile else None
    got = [bytearray(EVENTS) for _ in TRIGGERS]  # deliveries by trigger and event
    state: dict[str, Any] = {"total": 0, "flushes": 0, "start": None, "end": None}
    result: dict[str, Any] = {}
    try:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = read_json(stdout)["connection"]
        triggers = [
            SfiMatchEventTrigger(channel=channel, scope=scope, scope_id=scope_id, event_types=event_types)
            for channel, scope, scope_id, event_types in TRIGGERS
        ]
        stores = [MemoryStateStore() for _ in triggers]
        all_in = asyncio.Event()

        async def watch(index: int) -> None:
            trigger = triggers[index]
            trigger.asset_state_store = stores[index]  # what the triggerer gives a watcher on Airflow 3.3
            mine = got[index]
            async for event in trigger.run():
                seq = event.payload.get("data", {}).get("seq")
                if seq is None:  # a flush marker: no event
                    state["flushes"] += 1
                    continue
                mine[seq] += 1
                if state["start"] is None and seq >= warm:
                    state["start"] = (time.process_time(), time.monotonic(), seq)
                state["total"] += 1
                if state["total"] >= expected_total:  # the last one
                    state["end"] = (time.process_time(), time.monotonic())
                    all_in.set()

        async def run() -> None:
            tasks = [asyncio.create_task(watch(i)) for i in range(len(triggers))]
            try:
                stdin.write(json.dumps([topic_key(t) for t in TRIGGERS]) + "\n")  # the child waits for them
                stdin.flush()
                result.update(await asyncio.to_thread(read_json, stdout))  # the child emitted every event
                with contextlib.suppress(TimeoutError, asyncio.TimeoutError):  # some may never come: counted lost
                    await asyncio.wait_for(all_in.wait(), 10)
                if state["end"] is None:  # then the measured part ends here (idle since the last delivery)
                    state["end"] = (time.process_time(), time.monotonic())
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

        if profiler is not None:
            profiler.enable()
        asyncio.run(run())
        if profiler is not None:
            profiler.disable()
        stdin.write("stop\n")
        stdin.flush()
        result.update(read_json(stdout))
    finally:
        with contextlib.suppress(Exception):
            stdin.close()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()

    if state["start"] is None:
        raise RuntimeError("no event past the warm-up reached a watcher")
    (cpu_start, wall_start, first), (cpu_end, wall_end) = state["start"], state["end"]
    deliveries = sum(sum(mine[first:]) for mine in got)
    measured_events = EVENTS - first
    cpu_seconds = cpu_end - cpu_start
    duplicated = sum(n - 1 for mine in got for n in mine if n > 1)
    lost = sum(want and not n for t, mine in enumerate(got) for want, n in zip(expected[t], mine, strict=True))
    unexpected = sum(n and not want for t, mine in enumerate(got) for want, n in zip(expected[t], mine, strict=True))
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        print(text.getvalue(), file=sys.stderr)
    print(
        json.dumps(
            {
                "triggers": len(TRIGGERS),
                "watcher_groups": groups(),
                "topics_watched": len({topic_key(t) for t in TRIGGERS}),
                "events_emitted": EVENTS,
                "by_kind": by_kind(planned),
                "rate_per_s": RATE,
                "emit_seconds": result["emit_seconds"],
                "warmup_events": first,
                "events": measured_events,
                "deliveries": deliveries,
                "deliveries_per_event": deliveries / measured_events,
                "deliveries_expected": sum(sum(want[first:]) for want in expected),
                "cpu_seconds": cpu_seconds,
                "wall_seconds": wall_end - wall_start,
                "cpu_share_of_one_core": cpu_seconds / max(wall_end - wall_start, 1e-9),
                "cpu_us_per_delivery": cpu_seconds / max(deliveries, 1) * 1e6,
                "cpu_us_per_event": cpu_seconds / max(measured_events, 1) * 1e6,
                "delivered_in_all": state["total"],
                "should_deliver_in_all": expected_total,
                "lost": lost,
                "duplicated": duplicated,
                "unexpected": unexpected,
                "flush_markers": state["flushes"],
                "state_writes": sum(s.writes for s in stores),
                "sockets": result["sockets"],
                "handshakes": result["handshakes"],
                "refused_handshakes": result["refused_handshakes"],
                "most_open_at_once": result["most_open_at_once"],
                "socket_topics": result["topics"],
                "watchers_covered_at_start": result["covered"],
                "ws_new_calls": result["ws_new_calls"],
                "rest_calls": result["rest_calls"],
                "profiled": profile,
                "target_us": TARGET_US,
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        main(profile=sys.argv[1:] == ["--profile"])
