"""
Figure 6c: the live feed's reconnects, run as the triggerer runs it (``SfiMatchEventTrigger.run()`` in
one asyncio loop) against the sandbox on loopback.

1. Token expiry without renew: sandbox ``renew="absent"``, a short TTL, no replay, a goal emitted every
   ``EMIT_EVERY`` seconds from a thread. At expiry two things race: the server closes the socket (4001,
   at its next token check, within 0.05 s), and the feed's renewal, which found ``ws/renew`` absent,
   asks ``ws/new`` at ``expires_at`` and switches to a new socket, subscribed before it closes the old
   one. Per expiry: which side closed the old socket, the time from that close to the new connection's
   subscription ack (negative: subscribed first), the time without a subscribed connection, and the
   goals the trigger never fired (missed: without replay nothing re-sends them), placed by their offset
   from the expiry.
2. A server that refuses every handshake (``api.refuse_ws(503)``) for ``REFUSE_SECONDS`` after the
   connection dropped: the connection attempts and their spacing against the feed's backoff
   (``RECONNECT_BACKOFF``: 0.5 s doubling to 30 s, plus up to 0.5 s of jitter; the first reconnect is
   immediate). "No storm": at most one attempt per backoff step, i.e. no spacing shorter than its step.

The last line printed is the JSON figure.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import sys
import threading
import time
from typing import Any

from airflow_sfi.sandbox import SandboxServer
from airflow_sfi.sandbox.live import EXPIRED_CLOSE, Session

LEAGUE = "0b5e55ed00000001"
MATCH = "0b5e55ed0000a001"
TOPIC = f"MAIN:league:{LEAGUE}"
TTL = 3
EXPIRIES = 12
EMIT_EVERY = 0.02
REFUSE_SECONDS = 20.0
REFUSE_STATUS = 503
# RECONNECT_BACKOFF's steps: tenacity's wait_exponential(multiplier=0.5, max=30), plus wait_random(0, 0.5).
BACKOFF_MULTIPLIER, BACKOFF_MAX, JITTER = 0.5, 30.0, 0.5
TOLERANCE = 0.02  # timer slack allowed below a step's lower bound


def record_acks(api: SandboxServer) -> dict[tuple[float, int], float]:
    """Connection (opened_at, client port) -> when its subscription to TOPIC was acknowledged."""
    acks: dict[tuple[float, int], float] = {}
    receive = api.feed.receive

    def recording(session: Session, frame: str | bytes) -> None:
        receive(session, frame)  # the ack is queued before this returns
        if TOPIC in session.topics:
            acks.setdefault((session.opened_at, session.client_port), api.sandbox.clock())

    api.feed.receive = recording  # type: ignore[method-assign]
    return acks


class Ticker(threading.Thread):
    """A goal every ``every`` seconds, on a steady schedule, until stopped."""

    def __init__(self, api: SandboxServer, every: float) -> None:
        super().__init__(daemon=True)
        self.api, self.every = api, every
        self.stopping = threading.Event()

    def run(self) -> None:
        started, n = time.monotonic(), 0
        while not self.stopping.wait(max(0.0, started + n * self.every - time.monotonic())):
            self.api.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE, data={"n": n, "score": [n, 0]})
            n += 1


def trigger() -> Any:
    from airflow_sfi.triggers.match_event import SfiMatchEventTrigger

    return SfiMatchEventTrigger(channel="MAIN", scope="league", scope_id=LEAGUE, event_types=["goal"])


async def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def consume(feed: Any, received: list[tuple[float, str]]) -> None:
    async for event in feed.run():
        if "key" in event.payload:  # not the watcher's flush marker, which carries no event
            received.append((time.time(), event.payload["key"]))


def key_of(message: Any) -> str:
    from airflow_sfi.protocol.messages import parse_frame

    return parse_frame(json.dumps(message)).key  # type: ignore[union-attr]


def expiry() -> dict[str, Any]:
    with SandboxServer(ttl=TTL, renew="absent", replay=0) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection()
        acks = record_acks(api)
        received: list[tuple[float, str]] = []
        ticker = Ticker(api, EMIT_EVERY)

        async def run() -> None:
            task = asyncio.create_task(consume(trigger(), received))
            try:
                await wait_until(lambda: acks, 30, "the first subscription")
                ticker.start()
                await wait_until(
                    lambda: len(api.tokens()) > EXPIRIES and max(acks.values()) > api.tokens()[EXPIRIES].issued_at,
                    EXPIRIES * TTL * 3 + 30,
                    f"{EXPIRIES} expiries and a subscription after the last",
                )
                await asyncio.sleep(0.3)
                ticker.stopping.set()
                await asyncio.to_thread(ticker.join, 5)
                await asyncio.sleep(0.5)  # the last goals in flight
            finally:
                ticker.stopping.set()
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        started = time.monotonic()
        asyncio.run(run())
        emitted = api.emitted()
        got = collections.Counter(key for _, key in received)
        missed = [e for e in emitted if key_of(e.message) not in got]
        accepted = [c for c in api.ws_connections() if c.refused is None]
        # One expiry per token that was replaced: the socket open when it ran out, the first one with the next.
        expiries = []
        for before, after in itertools.pairwise(api.tokens()):
            old = max((c for c in accepted if c.opened_at < after.issued_at), key=lambda c: c.opened_at)
            new = min((c for c in accepted if c.opened_at >= after.issued_at), key=lambda c: c.opened_at)
            expiries.append((before.expires_at, old, new))
        # Each missed goal belongs to the nearest expiry; farther than 1 s from any: unattributed.
        nearest: dict[int, list[float]] = collections.defaultdict(list)
        unattributed: list[float] = []
        for event in missed:
            index = min(range(len(expiries)), key=lambda i: abs(event.at - expiries[i][0]))
            offset = event.at - expiries[index][0]
            (nearest[index] if abs(offset) <= 1 else unattributed).append(offset)
        windows: list[dict[str, Any]] = []
        for index, (expired_at, old, new) in enumerate(expiries):
            assert old.closed_at is not None
            ack = acks[new.opened_at, new.client_port]
            windows.append(
                {
                    "old_close_code": old.close_code,  # 4001: the server closed it; 1000: the feed did
                    "expiry_to_close_s": old.closed_at - expired_at,
                    "close_to_subscribed_s": ack - old.closed_at,  # < 0: subscribed before the old socket closed
                    "unsubscribed_s": max(0.0, ack - old.closed_at),
                    "missed": len(nearest[index]),
                    "missed_at_s_from_expiry": sorted(nearest[index]),
                }
            )
        unsubscribed = sorted(w["unsubscribed_s"] for w in windows)
        return {
            "ttl_s": TTL,
            "emit_every_s": EMIT_EVERY,
            "replay": 0,
            "expiries": len(windows),
            "windows": windows,
            "closed_by_server": sum(w["old_close_code"] == EXPIRED_CLOSE[0] for w in windows),
            "unsubscribed_s": {"median": unsubscribed[len(unsubscribed) // 2], "max": unsubscribed[-1]},
            "emitted": len(emitted),
            "fired": len(received),
            "missed": len(missed),
            "missed_unattributed_at_s_from_nearest_close": unattributed,
            "duplicated": sum(n > 1 for n in got.values()),
            "ws_new_calls": sum(c.path.endswith("/ws/new/") for c in api.calls()),
            "ws_renew_calls": sum(c.path.endswith("/ws/renew/") for c in api.calls()),
            "seconds": time.monotonic() - started,
        }


def backoff_steps(attempts: int) -> list[tuple[float, float]]:
    """(lower, upper) bound of the wait before each retry: step k waits 0.5 * 2**(k-1), capped, plus jitter."""
    steps = []
    for number in range(1, attempts):
        base = min(BACKOFF_MULTIPLIER * 2 ** (number - 1), BACKOFF_MAX)
        steps.append((base, base + JITTER))
    return steps


def refusal() -> dict[str, Any]:
    with SandboxServer(ttl=120) as api:
        os.environ["AIRFLOW_CONN_SFI_DEFAULT"] = api.connection()
        acks = record_acks(api)
        times: dict[str, float] = {}

        async def run() -> None:
            task = asyncio.create_task(consume(trigger(), []))
            try:
                await wait_until(lambda: acks, 30, "the first subscription")
                api.refuse_ws(REFUSE_STATUS)
                times["refused_from"] = api.sandbox.clock()
                times["calls_before"] = len(api.calls())
                api.inject_ws("drop")  # the TCP connection is aborted: the feed reconnects into the refusals
                await asyncio.sleep(REFUSE_SECONDS)
                times["calls_during"] = len(api.calls()) - times["calls_before"]
                api.refuse_ws(None)
                times["lifted_at"] = api.sandbox.clock()
                lifted = times["lifted_at"]
                await wait_until(
                    lambda: any(t > lifted for t in acks.values()), BACKOFF_MAX + JITTER + 10, "the reconnect"
                )
                times["back_at"] = min(t for t in acks.values() if t > lifted)
            finally:
                api.refuse_ws(None)
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        asyncio.run(run())
        attempts = [c for c in api.ws_connections() if c.opened_at >= times["refused_from"]]
        refused = [c for c in attempts if c.refused == REFUSE_STATUS]
        spacing = [b.opened_at - a.opened_at for a, b in itertools.pairwise(attempts)]
        steps = backoff_steps(len(attempts))
        too_soon = [
            {"attempt": i + 2, "spacing_s": s, "step_lower_s": low}
            for i, (s, (low, _)) in enumerate(zip(spacing, steps, strict=True))
            if s < low - TOLERANCE
        ]
        # The most attempts any client could make in the window while waiting at least each step's lower bound.
        window = times["lifted_at"] - times["refused_from"]
        allowed, elapsed = 1, 0.0
        while elapsed + min(BACKOFF_MULTIPLIER * 2 ** (allowed - 1), BACKOFF_MAX) <= window:
            elapsed += min(BACKOFF_MULTIPLIER * 2 ** (allowed - 1), BACKOFF_MAX)
            allowed += 1
        return {
            "refuse_status": REFUSE_STATUS,
            "refused_for_s": window,
            "attempts": len(attempts),
            "refused_attempts": len(refused),
            "max_attempts_allowed_by_backoff": allowed,
            "first_attempt_after_drop_s": attempts[0].opened_at - times["refused_from"] if attempts else None,
            "spacing_s": spacing,
            "backoff_steps_s": steps,
            "attempts_sooner_than_their_step": too_soon,
            "storm": bool(too_soon) or len(refused) > allowed,
            "api_calls_while_refused": times["calls_during"],
            "lift_to_subscribed_s": times["back_at"] - times["lifted_at"],
        }


def main() -> None:
    result = {"expiry": expiry(), "refusal": refusal()}
    sys.stdout.flush()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
