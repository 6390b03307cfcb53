"""SfiFeedHook against the sandbox's WebSocket server on loopback: real sockets, real tokens."""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from airflow_sfi.exceptions import SfiAuthError, SfiSubscriptionError
from airflow_sfi.hooks.feed import SfiFeedHook
from airflow_sfi.protocol.messages import FeedEvent, Subscription, parse_frame
from airflow_sfi.sandbox import SandboxServer
from tests.helpers import drain_while, use_connection

MATCH = "0123456789abcdef"
LEAGUE = "fedcba9876543210"
OTHER_LEAGUE = "1111111111111111"


def ticking(
    api: SandboxServer, seconds: float, every: float = 0.05, then: Callable[[], Any] | None = None
) -> Callable[[], None]:
    """A ``during`` for :func:`run_feed`: goals every ``every`` seconds while ``then`` runs, then ``seconds`` more."""

    def during() -> None:
        with Ticker(api, every):
            if then is not None:
                then()
            time.sleep(seconds)

    return during


def key_of(message: Any) -> str:
    import json

    parsed = parse_frame(json.dumps(message))
    assert isinstance(parsed, FeedEvent)
    return parsed.key


def sent_keys(api: SandboxServer, channel: str = "MAIN", league: str | None = LEAGUE) -> list[str]:
    return [
        key_of(e.message)
        for e in api.emitted()
        if e.message["channel"] == channel and (league is None or e.message["leagueId"] == league)
    ]


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
    hook: SfiFeedHook, subscriptions: Sequence[Subscription], during: Callable[[], Any]
) -> list[FeedEvent]:
    return await drain_while(hook.sandbox, hook.events(subscriptions), during)  # type: ignore[attr-defined]


def feed(api: SandboxServer, **options: Any) -> SfiFeedHook:
    hook = SfiFeedHook(**options)
    hook.sandbox = api  # type: ignore[attr-defined]
    return hook


def test_each_event_of_the_subscribed_scope_arrives_once_in_order(sfi_sandbox: SandboxServer) -> None:
    from airflow_sfi.sandbox import default_matches

    hook = feed(sfi_sandbox)
    league = default_matches()[0].league_id
    got = asyncio.run(
        run_feed(
            hook, [Subscription("MAIN", "league", league)], lambda: sfi_sandbox.play(minute_seconds=0.005).wait(10)
        )
    )
    expected = sent_keys(sfi_sandbox, league=league)
    # Two matches of that league: 4 MAIN phases each (start, halftime, second half, end), 5 and 2 goals.
    assert len(expected) == 4 + 5 + 4 + 2
    assert [e.key for e in got] == expected
    assert {e.league_id for e in got} == {league}
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.mark.sfi_sandbox(ttl=2)
def test_a_renewed_token_keeps_its_socket_open(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox, renew_margin=datetime.timedelta(seconds=1))
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 3.5)))
    assert len(got) >= 40
    assert [e.key for e in got] == sent_keys(sfi_sandbox)
    assert len(sfi_sandbox.calls("ws/renew")) >= 2
    assert {c.status for c in sfi_sandbox.calls("ws/renew")} == {200}
    assert len(sfi_sandbox.tokens()) == 1
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.mark.sfi_sandbox(ttl=2, renew="absent", replay=10)
def test_without_renew_it_reconnects_with_a_new_token_and_a_replay_fills_the_gap(
    sfi_sandbox: SandboxServer,
) -> None:
    hook = feed(sfi_sandbox, renew_margin=datetime.timedelta(seconds=1))
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 4.5)))
    connections = sfi_sandbox.ws_connections()
    assert len(sfi_sandbox.tokens()) >= 2
    assert len(connections) == len(sfi_sandbox.tokens())  # one connection per token
    # Each old socket ended by its token's expiry (4001), or by the feed once the next token's was up (1000).
    assert {c.close_code for c in connections[:-1]} <= {1000, 4001}
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))


@pytest.mark.sfi_sandbox(ttl=2, renew="absent")
def test_without_renew_or_replay_only_the_reconnect_window_is_missed(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox, renew_margin=datetime.timedelta(seconds=1))
    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 4.5, every=0.02)))
    keys = [e.key for e in got]
    assert len(keys) == len(set(keys))
    assert len(sfi_sandbox.tokens()) >= 2
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
        for _ in range(3):
            time.sleep(0.3)
            assert sfi_sandbox.inject_ws(kind) == 1

    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 0, then=faults)))
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

    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], garbage_between_goals))
    assert [e.data["n"] for e in got] == [1, 2]
    lines = capfd.readouterr().out.splitlines()
    skipped = [line for line in lines if "malformed frame" in line]
    assert len(skipped) == 8 and all("warning" in line for line in skipped)
    assert not any("not json" in message for message in skipped)
    # A well-formed message of a type the client does not know: once per type and connection, at INFO.
    unknown = [line for line in lines if "'mystery' messages" in line]
    assert len(unknown) == 1 and "[info" in unknown[0]
    assert len(sfi_sandbox.ws_connections()) == 1


@pytest.mark.sfi_sandbox(replay=20)
def test_a_stalled_connection_is_replaced_before_it_is_closed(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox, ping_interval=0.2, pong_timeout=0.2)

    def stall() -> None:
        time.sleep(0.3)
        assert sfi_sandbox.inject_ws("stall", delay=1) == 1
        time.sleep(2)

    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 0, then=stall)))
    first, second = sfi_sandbox.ws_connections()[:2]
    assert second.refused is None
    assert first.closed_at is not None and second.opened_at < first.closed_at  # make before break
    assert sorted(e.key for e in got) == sorted(sent_keys(sfi_sandbox))


@pytest.mark.sfi_sandbox(max_connections=1, replay=100)
def test_with_one_connection_allowed_a_stall_is_closed_before_reconnecting(sfi_sandbox: SandboxServer) -> None:
    hook = feed(sfi_sandbox, ping_interval=0.2, pong_timeout=0.2)

    def stall() -> None:
        time.sleep(0.3)
        sfi_sandbox.inject_ws("stall", delay=1)
        time.sleep(2.5)

    got = asyncio.run(run_feed(hook, [Subscription("MAIN")], ticking(sfi_sandbox, 0, then=stall)))
    connections = [c for c in sfi_sandbox.ws_connections() if c.refused is None]
    first, second = connections[:2]
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
            hook, [Subscription("MAIN")], lambda: sfi_sandbox.emit("MAIN", "goal", match_id=MATCH, league_id=LEAGUE)
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
    sfi_sandbox: SandboxServer, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    hook = feed(sfi_sandbox, renew_margin=datetime.timedelta(seconds=1))

    def faults() -> None:
        time.sleep(0.2)
        sfi_sandbox.inject_ws("garbage")
        sfi_sandbox.inject_ws("drop")
        time.sleep(2.5)  # a token expires and is replaced

    with caplog.at_level(logging.DEBUG):
        asyncio.run(run_feed(hook, [Subscription("MAIN")], faults))
    assert len(sfi_sandbox.tokens()) >= 2
    records = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    printed = capfd.readouterr()
    text = f"{records}\n{printed.out}\n{printed.err}"
    # The token ended either way: the server closed its socket first, or the feed switched first.
    assert ("switching to a connection" in text or "The server ended the token" in text) and "malformed frame" in text
    for secret in ["sandbox-key-pro", *sfi_sandbox.issued_tokens]:
        assert secret not in text
