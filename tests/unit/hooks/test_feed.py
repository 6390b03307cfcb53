"""
SfiFeedHook against the sandbox's WebSocket server on loopback: real sockets, real tokens.

Tokens live 2 s on the sandbox's clock, which jumps to each renewal's moment (``SandboxClock``)
instead of the test waiting for it; each test waits for what it needs to see, not for a fixed time.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from airflow_sfi.exceptions import SfiAuthError, SfiSubscriptionError
from airflow_sfi.hooks import feed as feed_module
from airflow_sfi.hooks.feed import SfiFeedHook
from airflow_sfi.protocol.messages import FeedEvent, Subscription, parse_frame
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import SandboxClock, cancel_and_wait, drain_while, use_connection, wait_for

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"
OTHER_LEAGUE = "1111111111111111"
# Real seconds each renewal's wait takes before the sandbox's clock jumps to its moment.
PAUSE = 0.03
# How long after the last expected event the tests keep reading, for anything arriving late.
SETTLE = 0.1


@pytest.fixture
def clock(sfi_sandbox: SandboxServer) -> SandboxClock:
    """The sandbox's clock from now on, jumping to each renewal's moment instead of waiting for it."""
    clock = SandboxClock(pause=PAUSE)
    sfi_sandbox.sandbox.clock = clock
    return clock


def ticking(
    api: SandboxServer, until: Callable[[], object], every: float = 0.02, then: Callable[[], Any] | None = None
) -> Callable[[], None]:
    """
    A ``during`` for :func:`run_feed`: goals every ``every`` seconds while ``then`` runs, until ``until()``
    holds, and for a few more goals after.
    """

    def during() -> None:
        with Ticker(api, every) as ticker:
            if then is not None:
                then()
            wait_for(until, timeout=10)
            reached = ticker.count
            wait_for(lambda: ticker.count >= reached + 3)

    return during


def key_of(message: Any) -> str:
    parsed = parse_frame(json.dumps(message))
    assert isinstance(parsed, FeedEvent)
    return parsed.key


def sent_keys(api: SandboxServer, channel: str = "MAIN", league: str | None = LEAGUE) -> list[str]:
    return [
        key_of(e.message)
        for e in api.emitted()
        if e.message["channel"] == channel and (league is None or e.message["leagueId"] == league)
    ]


def all_sent(api: SandboxServer, **selection: Any) -> Callable[[list[FeedEvent]], bool]:
    """An ``until`` for :func:`run_feed`: as many events arrived as were sent (which ones, the test asserts)."""
    return lambda got: len(got) >= len(sent_keys(api, **selection))


class Ticker:
    """Emits a goal-shaped event every ``every`` seconds from a thread, until stopped."""

    def __init__(self, api: SandboxServer, every: float = 0.05, league: str = LEAGUE) -> None:
        self.api, self.every, self.league = api, every, league
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.count += 1
            self.api.emit("MAIN", "goal", match_id=MATCH, league_id=self.league, data={"n": self.count})

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


async def run_feed(
    hook: SfiFeedHook,
    subscriptions: Sequence[Subscription],
    during: Callable[[], Any],
    until: Callable[[list[FeedEvent]], bool] | None = None,
) -> list[FeedEvent]:
    """What the feed yields while ``during`` runs, then until ``until(events so far)``, then :data:`SETTLE` s."""
    return await drain_while(hook.sandbox, hook.events(subscriptions), during, settle=SETTLE, until=until)  # type: ignore[attr-defined]


def feed(
    api: SandboxServer, clock: SandboxClock | None = None, while_: Callable[[], bool] | None = None, **options: Any
) -> SfiFeedHook:
    """A feed hook on ``api``; with ``clock``, its renewals jump the clock, and only ``while_()`` holds."""
    hook = SfiFeedHook(**options)
    hook.sandbox = api  # type: ignore[attr-defined]
    if clock is not None:
        hook.refresh_sleep = Gate(clock.sleep_until, while_ or (lambda: True))
    return hook


def subscribed(api: SandboxServer, after: int = 0) -> bool:
    """Whether a connection opened after the first ``after`` attempts is open and subscribed."""
    return any(c.closed_at is None and c.subscriptions for c in api.ws_connections()[after:])


def on_connection(api: SandboxServer, n: int) -> Callable[[], bool]:
    """A condition: the ``n``-th connection attempt (from 1) was made, and the latest one is subscribed."""
    return lambda: len(api.ws_connections()) >= n and subscribed(api, n - 1)


def test_each_event_of_the_subscribed_scope_arrives_once_in_order(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.sandbox import default_matches

    hook = feed(sfi_sandbox)
    league = default_matches()[0].league_id
    got = asyncio.run(
        run_feed(
            hook,
            [Subscription("MAIN", "league", league)],
            lambda: sfi_sandbox.play(minute_seconds=0.001).wait(10),
            until=all_sent(sfi_sandbox, league=league),
        )
    )
    expected = sent_keys(sfi_sandbox, league=league)
    # Two matches of that league: 4 MAIN phases each (start, halftime, second half, end), 5 and 2 goals.
    assert len(expected) == 4 + 5 + 4 + 2
    assert [e.key for e in got] == expected
    assert {e.league_id for e in got} == {league}
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.mark.sfi_sandbox(ttl=2)
def test_a_renewed_token_keeps_its_socket_open(sfi_sandbox: SandboxServer, clock: SandboxClock) -> None:
    def renewals() -> list[Any]:
        return sfi_sandbox.calls("ws/renew")

    def allowed() -> bool:  # three renewals, once goals flow
        return bool(sfi_sandbox.emitted()) and len(renewals()) < 3

    hook = feed(sfi_sandbox, clock, allowed, renew_margin=datetime.timedelta(seconds=1))
    during = ticking(sfi_sandbox, lambda: len(renewals()) == 3)
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, all_sent(sfi_sandbox)))
    assert [e.key for e in got] == sent_keys(sfi_sandbox)
    assert len(renewals()) == 3
    assert {c.status for c in renewals()} == {200}
    (token,) = sfi_sandbox.tokens()
    # The sandbox's clock went past the token's first expiry, where the server would have closed the socket
    # (4001) had it not been renewed; events flowed before the first renewal and after the last.
    assert clock() > math.ceil(token.issued_at + 2)
    emitted = sfi_sandbox.emitted()
    assert emitted[0].at < renewals()[0].at and emitted[-1].at > renewals()[-1].at
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.mark.sfi_sandbox(ttl=2, renew="absent", replay=10)
def test_without_renew_it_reconnects_with_a_new_token_and_a_replay_fills_the_gap(
    sfi_sandbox: SandboxServer, clock: SandboxClock
) -> None:
    hook = feed(sfi_sandbox, clock, lambda: len(sfi_sandbox.tokens()) < 3, renew_margin=datetime.timedelta(seconds=1))
    during = ticking(sfi_sandbox, on_connection(sfi_sandbox, 3), every=0.05)
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, all_sent(sfi_sandbox)))
    connections = sfi_sandbox.ws_connections()
    assert len(sfi_sandbox.tokens()) == 3
    assert len(connections) == len(sfi_sandbox.tokens())  # one connection per token
    # Each old socket ended by its token's expiry (4001), or by the feed once the next token's was up (1000).
    assert {c.close_code for c in connections[:-1]} <= {1000, 4001}
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))


@pytest.mark.sfi_sandbox(ttl=2, renew="absent")
def test_without_renew_or_replay_only_the_reconnect_window_is_missed(
    sfi_sandbox: SandboxServer, clock: SandboxClock
) -> None:
    hook = feed(sfi_sandbox, clock, lambda: len(sfi_sandbox.tokens()) < 3, renew_margin=datetime.timedelta(seconds=1))

    def every_delivered(got: list[FeedEvent]) -> bool:
        return len(got) >= sum(e.recipients > 0 for e in sfi_sandbox.emitted())

    during = ticking(sfi_sandbox, on_connection(sfi_sandbox, 3), every=0.01)
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, every_delivered))
    keys = [e.key for e in got]
    assert len(keys) == len(set(keys))
    assert len(sfi_sandbox.tokens()) == 3
    # Whatever was missed was sent while no connection was subscribed.
    missed = [e for e in sfi_sandbox.emitted() if key_of(e.message) not in set(keys)]
    assert [e.recipients for e in missed] == [0] * len(missed)


@pytest.mark.parametrize("kind", ["drop", "close"])
@pytest.mark.sfi_sandbox(replay=20)
def test_a_dropped_or_closed_connection_is_replaced_at_once(sfi_sandbox: SandboxServer, kind: str) -> None:
    hook = feed(sfi_sandbox)
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    hook.reconnect_sleep = no_sleep

    def faults() -> None:
        for n in range(3):
            # Each fault once the connection before it was replaced and a few goals went out on the new one.
            wait_for(on_connection(sfi_sandbox, n + 1))
            emitted = len(sfi_sandbox.emitted())
            wait_for(lambda emitted=emitted: len(sfi_sandbox.emitted()) >= emitted + 2)
            assert sfi_sandbox.inject_ws(kind) == 1

    during = ticking(sfi_sandbox, on_connection(sfi_sandbox, 4), then=faults)
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, all_sent(sfi_sandbox)))
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))
    assert len(sfi_sandbox.ws_connections()) == 4
    assert slept == []  # the first reconnect after a drop does not wait


def test_malformed_frames_are_skipped_and_logged_without_their_content(
    sfi_sandbox: SandboxServer, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = feed(sfi_sandbox)

    def garbage_between_goals() -> None:
        sfi_sandbox.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE, data={"n": 1})
        assert sfi_sandbox.inject_ws("garbage") == 1
        assert sfi_sandbox.inject_ws("garbage") == 1
        sfi_sandbox.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE, data={"n": 2})

    # The garbage is sent between the goals: once the second goal is in, every frame of it was read.
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], garbage_between_goals, lambda got: len(got) >= 2))
    assert [e.data["n"] for e in got] == [1, 2]
    lines = capfd.readouterr().out.splitlines()
    skipped = [line for line in lines if "malformed frame" in line]
    assert len(skipped) == 8 and all("warning" in line.lower() for line in skipped)
    assert not any("not json" in message for message in skipped)
    # A well-formed message of a type the client does not know: once per type and connection, at INFO.
    unknown = [line for line in lines if "'mystery' messages" in line]
    assert len(unknown) == 1 and "info" in unknown[0].lower() and "warning" not in unknown[0].lower()
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.fixture
def link_closes(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """When the feed closes each of its connections, on the sandbox's (real) clock, in order."""
    closes: list[float] = []
    original = feed_module._Link.close

    async def close(link: Any) -> None:
        closes.append(time.time())
        await original(link)

    monkeypatch.setattr(feed_module._Link, "close", close)
    return closes


def stall(api: SandboxServer) -> Callable[[], None]:
    """
    A ``then`` for :func:`ticking`: once goals flow, stall the connection for longer than any test lasts:
    the feed must notice by itself (the sandbox does not notice the client leave a stalled socket either).
    """

    def then() -> None:
        wait_for(lambda: len(api.emitted()) >= 3)
        assert api.inject_ws("stall", delay=30) == 1

    return then


@pytest.mark.sfi_sandbox(replay=100)
def test_a_stalled_connection_is_closed_before_its_replacement_opens_even_with_a_socket_free(
    sfi_sandbox: SandboxServer, link_closes: list[float]
) -> None:
    # Another triggerer may hold the token's other socket: a process never holds two of one token.
    hook = feed(sfi_sandbox, ping_interval=0.05, pong_timeout=0.1)
    during = ticking(sfi_sandbox, lambda: subscribed(sfi_sandbox, 1) and bool(link_closes), then=stall(sfi_sandbox))
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, all_sent(sfi_sandbox)))
    second = sfi_sandbox.ws_connections()[1]
    assert second.refused is None
    assert second.opened_at >= link_closes[0]  # break before make
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))


@pytest.mark.sfi_sandbox(max_connections=1, replay=100)
def test_with_one_connection_allowed_a_stall_is_closed_before_reconnecting(
    sfi_sandbox: SandboxServer, link_closes: list[float]
) -> None:
    hook = feed(sfi_sandbox, ping_interval=0.05, pong_timeout=0.1)

    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    # Refused (CONNECTION_LIMIT) while the server still counts the stalled socket: tried again soon.
    hook.reconnect_sleep = short_sleep

    def then() -> None:
        stall(sfi_sandbox)()
        wait_for(lambda: bool(link_closes))
        # The feed closed the stalled socket: the server, which reads nothing from it, learns it is gone.
        assert sfi_sandbox.inject_ws("drop") == 1

    def replaced() -> bool:
        admitted = [c for c in sfi_sandbox.ws_connections() if c.refused is None]
        return len(admitted) >= 2 and admitted[-1].closed_at is None and bool(admitted[-1].subscriptions)

    during = ticking(sfi_sandbox, replaced, then=then)
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], during, all_sent(sfi_sandbox)))
    first, *later = sfi_sandbox.ws_connections()
    # Closed before reconnecting: every later handshake came after the feed closed the stalled one.
    assert later and all(c.opened_at > link_closes[0] for c in later)
    second = next(c for c in later if c.refused is None)
    assert first.closed_at is not None and second.opened_at >= first.closed_at
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))


def test_refused_handshakes_back_off_one_attempt_per_step(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox)
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 6:
            sfi_sandbox.refuse_ws(None)
        await asyncio.sleep(0)

    hook.reconnect_sleep = record
    sfi_sandbox.refuse_ws(503)
    got = asyncio.run(
        run_feed(
            hook,
            [Subscription("MAIN")],
            lambda: sfi_sandbox.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE),
            all_sent(sfi_sandbox),
        )
    )
    attempts = sfi_sandbox.ws_connections()
    assert [a.refused for a in attempts] == [503] * 6 + [None]
    assert len(slept) == len(attempts) - 1
    for step, delay in enumerate(slept, start=1):
        base = min(0.5 * 2 ** (step - 1), 30.0)
        assert base <= delay <= base + 0.5
    assert len(got) == 1


def test_a_channel_outside_the_plan_fails_before_connecting(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox)  # the PRO plan: MAIN only

    async def first() -> None:
        async for _ in hook.events([Subscription("STATS")]):
            pass

    with pytest.raises(SfiSubscriptionError, match="STATS") as raised:
        asyncio.run(first())
    assert raised.value.error_code == "CHANNEL_NOT_ALLOWED"
    assert sfi_sandbox.ws_connections() == []


def test_a_subscription_the_server_refuses_is_final_without_reconnecting(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server stricter than its own ws/new answer: only the server's error can stop the feed.
    monkeypatch.setattr("airflow_sfi.hooks.feed.check_plan", lambda *args: None)
    hook = feed(sfi_sandbox)

    async def first() -> None:
        async for _ in hook.events([Subscription("ODDS_REALTIME")]):
            pass

    with pytest.raises(SfiSubscriptionError, match="CHANNEL_NOT_ALLOWED") as raised:
        asyncio.run(first())
    assert raised.value.error_code == "CHANNEL_NOT_ALLOWED"
    assert len(sfi_sandbox.ws_connections()) == 1


def test_a_bad_key_fails_without_touching_the_websocket(
    sfi_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_connection(monkeypatch, sfi_sandbox.connection("not-a-key"))
    hook = feed(sfi_sandbox)

    async def first() -> None:
        async for _ in hook.events([Subscription("MAIN")]):
            pass

    with pytest.raises(SfiAuthError):
        asyncio.run(first())
    assert sfi_sandbox.ws_connections() == []


@pytest.mark.sfi_sandbox(ttl=2, renew="absent")
def test_no_secret_reaches_any_log_record(
    sfi_sandbox: SandboxServer,
    clock: SandboxClock,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    faulted = threading.Event()
    # The renewals wait for the faults, then replace the token once.
    hook = feed(
        sfi_sandbox,
        clock,
        lambda: faulted.is_set() and len(sfi_sandbox.tokens()) < 2,
        renew_margin=datetime.timedelta(seconds=1),
    )

    def faults() -> None:
        sfi_sandbox.inject_ws("garbage")
        sfi_sandbox.inject_ws("drop")
        faulted.set()
        # A token expires and is replaced, on a subscribed connection.
        wait_for(lambda: len(sfi_sandbox.tokens()) >= 2 and subscribed(sfi_sandbox, 1))

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run_feed(hook, [Subscription("MAIN")], faults))
    assert len(sfi_sandbox.tokens()) >= 2
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    printed = capfd.readouterr()
    text = f"{records}\n{printed.out}\n{printed.err}"
    # The token ended either way: the server closed its socket first, or the feed switched first.
    assert ("switching to a socket" in text or "The server ended the token" in text) and "malformed frame" in text
    for secret in ["sandbox-key-pro", *sfi_sandbox.issued_tokens]:
        assert secret not in text


class Gate:
    """
    A ``sleep_until`` that sleeps as ``sleep_until`` does while ``opened()`` holds, and otherwise waits
    until it does: a test lets the feed's renewals through as far as it means to, then holds them.
    """

    def __init__(self, sleep_until: Callable[[datetime.datetime], Any], opened: Callable[[], bool]) -> None:
        self.sleep_until = sleep_until
        self.opened = opened

    async def __call__(self, moment: datetime.datetime) -> None:
        while not self.opened():
            await asyncio.sleep(0.01)
        await self.sleep_until(moment)


# One socket shared by every trigger of a process, and the gaps reconciled through REST.


async def consume(stream: Any, into: list[FeedEvent]) -> None:
    async for event in stream:
        into.append(event)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def unplayed() -> list[Any]:
    """The sandbox's default matches under ids its REST API does not know until they are played."""
    from airflow_sfi.sandbox import default_matches

    return [dataclasses.replace(m, match_id=f"{0xFE5C0000 + n:016x}") for n, m in enumerate(default_matches())]


def main_keys(api: SandboxServer, keep: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [key_of(e.message) for e in api.emitted() if e.message["channel"] == "MAIN" and keep(e.message)]


def test_triggers_of_one_key_share_one_socket_and_each_gets_only_its_selection(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.sandbox.live import LEAGUES

    matches = unplayed()
    selections = {
        "league goals": ([Subscription("MAIN", "league", LEAGUES[0])], {"goal"}),
        "other league": ([Subscription("MAIN", "league", LEAGUES[1])], set()),
        "one match's end": ([Subscription("MAIN", "match", matches[1].match_id)], {"match_end"}),
    }
    got: dict[str, list[FeedEvent]] = {name: [] for name in selections}

    async def main() -> None:
        hooks = [feed(sfi_sandbox) for _ in selections]
        tasks = [
            asyncio.create_task(consume(hook.events(subs, event_types=types), got[name]))
            for hook, (name, (subs, types)) in zip(hooks, selections.items(), strict=True)
        ]
        # The PRO plan holds 2 subscriptions: three selections are served by MAIN:all, filtered here.
        await until(lambda: [t for s in sfi_sandbox.feed.sessions() for t in s.topics] == ["MAIN:all"])
        await asyncio.to_thread(lambda: sfi_sandbox.play(matches, minute_seconds=0.001).wait(10))
        await until(
            lambda: len(got["other league"]) >= len(main_keys(sfi_sandbox, lambda m: m["leagueId"] == LEAGUES[1]))
        )
        await asyncio.sleep(SETTLE)
        held.extend(t for session in sfi_sandbox.feed.sessions() for t in session.topics)
        for task in tasks:
            await cancel_and_wait(task)

    held: list[str] = []
    asyncio.run(main())
    assert [e.key for e in got["league goals"]] == main_keys(
        sfi_sandbox, lambda m: m["leagueId"] == LEAGUES[0] and m["type"] == "goal"
    )
    assert [e.key for e in got["other league"]] == main_keys(sfi_sandbox, lambda m: m["leagueId"] == LEAGUES[1])
    assert [(e.match_id, e.type) for e in got["one match's end"]] == [(matches[1].match_id, "match_end")]
    assert held == ["MAIN:all"]
    assert len(sfi_sandbox.ws_connections()) == sfi_sandbox.ws_max_sockets() == 1


def test_a_trigger_that_leaves_unsubscribes_what_no_other_needs(
    sfi_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_sfi.sandbox.live import LEAGUES, MATCHES

    async def main() -> list[tuple[str, ...]]:
        seen: list[tuple[str, ...]] = []

        def topics() -> tuple[str, ...]:
            return tuple(t for s in sfi_sandbox.feed.sessions() for t in s.topics)

        league = asyncio.create_task(
            consume(feed(sfi_sandbox).events([Subscription("MAIN", "league", LEAGUES[0])]), [])
        )
        match = asyncio.create_task(consume(feed(sfi_sandbox).events([Subscription("MAIN", "match", MATCHES[2])]), []))
        await until(lambda: len(topics()) == 2)
        seen.append(tuple(sorted(topics())))
        await cancel_and_wait(league)
        await until(lambda: len(topics()) == 1)
        seen.append(topics())
        await cancel_and_wait(match)
        await until(lambda: not sfi_sandbox.feed.sessions())
        return seen

    with caplog.at_level(logging.INFO):
        assert asyncio.run(main()) == [
            (f"MAIN:league:{LEAGUES[0]}", f"MAIN:match:{MATCHES[2]}"),
            (f"MAIN:match:{MATCHES[2]}",),
        ]
    assert len(sfi_sandbox.ws_connections()) == 1  # one socket throughout, closed when the last trigger left
    # Each trigger's log names the topic that carries its selection, not the other's.
    text = "\n".join(r.getMessage() for r in caplog.records) + capfd.readouterr().out  # Airflow 3.0 logs to both
    assert sorted(set(re.findall(r"Live feed connected: subscribed to (\S+) on one socket", text))) == [
        f"MAIN:league:{LEAGUES[0]}",
        f"MAIN:match:{MATCHES[2]}",
    ]


def test_events_sent_while_no_socket_was_subscribed_come_through_rest_once(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.sandbox.live import LEAGUES

    got: list[FeedEvent] = []
    hook = feed(sfi_sandbox)

    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    hook.reconnect_sleep = hook.reconcile_sleep = short_sleep
    in_league = lambda m: m["leagueId"] == LEAGUES[0]  # noqa: E731

    async def main() -> None:
        task = asyncio.create_task(consume(hook.events([Subscription("MAIN", "league", LEAGUES[0])]), got))
        await until(lambda: any(s.topics for s in sfi_sandbox.feed.sessions()))
        await asyncio.sleep(0.2)  # the first REST look, which only records what had happened (nothing yet)
        playback = sfi_sandbox.play(unplayed(), minute_seconds=0.015)
        # No socket from minute 20 to 40: the goals at 23 (second match) and 37 (first) reach nobody.
        await until(lambda: (playback.minute or 0) >= 20)
        sfi_sandbox.refuse_ws(503)
        sfi_sandbox.inject_ws("drop")
        await until(lambda: (playback.minute or 0) >= 40)
        sfi_sandbox.refuse_ws(None)
        await asyncio.to_thread(playback.wait, 10)
        await until(lambda: len(got) >= len(main_keys(sfi_sandbox, in_league)))
        await asyncio.sleep(SETTLE)
        await cancel_and_wait(task)

    asyncio.run(main())
    unheard = {
        key_of(e.message)
        for e in sfi_sandbox.emitted()
        if e.recipients == 0 and e.message["channel"] == "MAIN" and in_league(e.message)
    }
    assert {"goal"} <= {k.split(":")[2] for k in unheard}  # the gap did miss goals on the socket
    assert sorted(e.key for e in got) == sorted(main_keys(sfi_sandbox, in_league))  # each once
    assert {e.key for e in got if e.backfilled} == unheard
    assert [c.endpoint for c in sfi_sandbox.calls() if c.endpoint.startswith("matches")] == [
        "matches/view/basic"
    ] * len({e.match_id for e in got if e.backfilled})  # one call per match of the gap


def test_a_gap_before_the_baseline_is_read_still_comes_through_rest(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.sandbox.live import MatchScript

    match = MatchScript.build(f"{0xFE5C0100:016x}", LEAGUE, [(50, "home")], stats_every=None, odds_every=None)
    hook = feed(sfi_sandbox)
    gathered = asyncio.Event()  # the REST pass after the first gathers triggers until after the gap

    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(0.01)

    async def gather(seconds: float) -> None:
        await gathered.wait()

    hook.reconnect_sleep, hook.reconcile_sleep = short_sleep, gather
    got: list[FeedEvent] = []

    async def main() -> None:
        # Another trigger took its baseline just before: this one's is gathered into the next pass.
        other = asyncio.create_task(consume(hook.events([Subscription("MAIN", "match", MATCH)]), []))
        await until(lambda: bool(sfi_sandbox.calls("matches/view/basic")))
        task = asyncio.create_task(consume(hook.events([Subscription("MAIN", "match", match.match_id)]), got))
        await until(lambda: sum(len(s.topics) for s in sfi_sandbox.feed.sessions()) == 2)
        playback = sfi_sandbox.play([match], minute_seconds=0.01)
        await until(lambda: playback.minute is not None)  # match_start arrives live
        sfi_sandbox.refuse_ws(503)
        sfi_sandbox.inject_ws("drop")
        await until(lambda: (playback.minute or 0) >= 50)  # halftime, second half and the goal reach nobody
        sfi_sandbox.refuse_ws(None)
        await until(lambda: subscribed(sfi_sandbox, 1))
        gathered.set()
        await asyncio.to_thread(playback.wait, 10)
        await until(lambda: len(got) >= len(main_keys(sfi_sandbox, lambda m: True)))
        await asyncio.sleep(SETTLE)
        await cancel_and_wait(task)
        await cancel_and_wait(other)

    asyncio.run(main())
    unheard = {key_of(e.message) for e in sfi_sandbox.emitted() if e.recipients == 0}
    assert len(unheard) == 3
    assert sorted(e.key for e in got) == sorted(main_keys(sfi_sandbox, lambda m: True))
    assert {e.key for e in got if e.backfilled} == unheard


class FakeTime:
    """A ``reconcile_sleep`` whose sleeps end when the test moves this clock on, not in real time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, waiter))
        await waiter

    def sleeping(self) -> bool:
        return any(not waiter.done() for _, waiter in self.sleepers)

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for at, waiter in self.sleepers:
            if at <= self.now and not waiter.done():
                waiter.set_result(None)


def test_triggers_restarted_in_waves_cost_one_rest_read_per_match_per_window(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.protocol.messages import Deduplicator
    from airflow_sfi.sandbox import default_matches
    from airflow_sfi.sandbox.live import LEAGUES

    matches = [*default_matches(), *unplayed()]  # six matches in two leagues, in play throughout
    m = [match.match_id for match in matches]
    # After a triggerer restart: a few triggers a loop (a second) apart, with history (True) and without.
    waves = [
        [("match", m[0], False), ("match", m[1], True), ("league", LEAGUES[0], True), ("all", None, False)],
        [("match", m[2], False), ("match", m[3], True), ("league", LEAGUES[1], False), ("match", m[0], True)],
        [("match", m[4], True), ("match", m[5], False), ("league", LEAGUES[0], False), ("all", None, True)],
        [("match", m[1], False), ("league", LEAGUES[1], True), ("match", m[5], True)],
    ]
    late = [("match", m[2], False)]  # then one more, without history, on the running feed
    time_ = FakeTime()
    got: list[list[FeedEvent]] = []
    loops: list[collections.Counter[str | None]] = []  # the REST calls made in each loop of the triggerer

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def settled() -> bool:
            """Every trigger started is subscribed, and no REST read is under way (one may be gathering)."""
            shared = next(iter(feed_module._FEEDS.get(loop, {}).values()), None)
            return (
                shared is not None
                and len(shared.consumers) == len(got)
                and all(c.live for c in shared.consumers)
                and (shared.reconciling is None or shared.reconciling.done() or time_.sleeping())
            )

        def calls() -> collections.Counter[str | None]:
            return collections.Counter(c.endpoint for c in sfi_sandbox.calls() if c.endpoint != "ws/new")

        sfi_sandbox.play(matches, minute_seconds=1.0)
        tasks = []
        for wave in [*waves, [], late, []]:
            made = calls()
            for scope, id_, history in wave:
                hook = feed(sfi_sandbox)
                hook.reconcile_sleep = time_.sleep
                got.append([])
                events = hook.events([Subscription("MAIN", scope, id_)], Deduplicator(), history=history)
                tasks.append(asyncio.create_task(consume(events, got[-1])))
            await until(settled)
            time_.advance(1.0)  # the triggerer's next loop
            await until(settled)
            loops.append(calls() - made)
        assert not time_.sleeping()
        for task in tasks:
            await cancel_and_wait(task)

    asyncio.run(main())
    # Three REST passes, each reading a match at most once: the first at once (the baselines of the triggers in by
    # then), the next with the rest of the first wave and the second, the last with the last two waves.
    assert [bool(made) for made in loops] == [True, True, False, True, False, False, True]
    assert all(made["live/basic"] <= 1 and made["matches/view/basic"] <= len(matches) for made in loops)
    # The late one's baseline, read once it was subscribed, needs no second read.
    assert loops[-2] + loops[-1] == {"matches/view/basic": 1}
    # Nothing lost: each trigger with history got what it had missed once, those without it none.
    league_of = {match.match_id: match.league_id for match in matches}
    selections = [selection for wave in [*waves, late] for selection in wave]
    for (scope, id_, history), events in zip(selections, got, strict=True):
        watched = [x for x in m if scope == "all" or id_ in (x, league_of[x])]
        expected = sorted(f"MAIN:{x}:match_start" for x in watched) if history else []
        assert sorted(e.key for e in events if e.backfilled) == expected


def test_a_socket_over_the_limit_is_named_and_waited_for(
    sfi_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    from websockets.asyncio.client import connect

    hook = feed(sfi_sandbox)

    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(0.02)

    hook.reconnect_sleep = short_sleep
    got: list[FeedEvent] = []

    async def main() -> None:
        token = await asyncio.to_thread(hook.api.get_ws_token)
        # Another triggerer holds both of the token's sockets.
        others = [await connect(token.server) for _ in range(token.max_connections)]
        task = asyncio.create_task(consume(hook.events([Subscription("MAIN")]), got))
        await until(lambda: sfi_sandbox.ws_limit_refusals() >= 2)
        await others.pop().close()
        await until(lambda: any(s.topics for s in sfi_sandbox.feed.sessions()))
        sfi_sandbox.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE)
        await until(lambda: bool(got))
        await cancel_and_wait(task)
        for other in others:
            await other.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(main())
    assert len(got) == 1
    assert sfi_sandbox.ws_max_sockets() == 2
    text = "\n".join(r.getMessage() for r in caplog.records) + capfd.readouterr().out
    assert "The live feed reported CONNECTION_LIMIT" in text
    assert "The live feed has no socket (attempt 1 failed: " in text  # at WARNING, with the reason
