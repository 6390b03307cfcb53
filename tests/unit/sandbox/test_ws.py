"""The sandbox's WebSocket server (airflow_sfi.sandbox.ws) through a real client on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from airflow_sfi.sandbox import SandboxServer, WsConnectionRecord
from tests.helpers import FixedClock

T0 = 1_700_000_000.0
TS0 = 1_700_000_000_000  # T0 in milliseconds, as messages carry it
M1, M2, M3 = "d2a1e6f4b3c50001", "d2a1e6f4b3c50002", "d2a1e6f4b3c50003"
L1, L2 = "e8f1c2d3a4b50001", "e8f1c2d3a4b50002"


def run(coroutine: Coroutine[Any, Any, Any], timeout: float = 5) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


def ws_new(api: SandboxServer, key: str = "sandbox-key-mega", endpoint: str = "ws/new") -> dict[str, Any]:
    with urllib.request.urlopen(f"{api.url}/v1/{endpoint}/?t={key}", timeout=5) as answer:
        item: dict[str, Any] = json.load(answer)["result"][0]
    return item


async def ask(ws: ClientConnection, **command: Any) -> dict[str, Any]:
    await ws.send(json.dumps(command))
    return await recv(ws)


async def recv(ws: ClientConnection, timeout: float = 2) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return message


async def until_pong(ws: ClientConnection) -> list[dict[str, Any]]:
    """Everything that arrives before the answer to a ping: what was sent to this connection until now."""
    await ws.send('{"action":"ping"}')
    received = []
    while (message := await recv(ws))["type"] != "pong":
        received.append(message)
    return received


async def refusal(url: str) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=2):
            pass
    return refused.value.response.status_code, bytes(refused.value.response.body or b"")


async def over_limit(url: str) -> list[Any]:
    """A connection over the token's limit: accepted, then [the frame it was sent, the close's (code, reason)]."""
    async with connect(url, open_timeout=2) as ws:
        return [await recv(ws), await closed(ws)]


def limit_error(limit: int) -> dict[str, Any]:
    message = f"At most {limit} connection{'s' * (limit != 1)} per token"
    return {"type": "error", "code": "CONNECTION_LIMIT", "message": message}


async def closed(ws: ClientConnection, timeout: float = 2) -> tuple[int | None, str | None]:
    """Wait for the server to close; (code, reason) of its close frame, (None, None) with none."""
    with pytest.raises(ConnectionClosed) as ended:
        await asyncio.wait_for(ws.recv(), timeout)
    frame = ended.value.rcvd
    return (None, None) if frame is None else (frame.code, frame.reason)


def wait_until(condition: Callable[[], bool], timeout: float = 2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


async def eventually(condition: Callable[[], bool], timeout: float = 2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def goal(minute: int, score: list[int], match_id: str = M1, league_id: str = L1, ts: int = TS0) -> dict[str, Any]:
    data = {"minute": minute, "team": "home", "score": score}
    return {"type": "goal", "channel": "MAIN", "matchId": match_id, "leagueId": league_id, "ts": ts, "data": data}


def emit_goal(api: SandboxServer, minute: int, score: list[int], match_id: str = M1, league_id: str = L1) -> None:
    data = {"minute": minute, "team": "home", "score": score}
    api.emit("MAIN", "goal", match_id=match_id, league_id=league_id, data=data)


def sub(channel: str, scope: str = "all", id_: str | None = None, kind: str = "subscribed") -> dict[str, Any]:
    """An acknowledgement as the vendor shapes it."""
    key = f"{channel}:all" if scope == "all" else f"{channel}:{scope}:{id_}"
    return {"type": kind, "channel": channel, "scope": scope, "id": id_, "topicKey": key}


def test_handshake_refusals_and_the_token_url() -> None:
    clock = FixedClock(T0)
    with SandboxServer(ttl=60, max_connections=1, clock=clock) as api:
        item = ws_new(api, "sandbox-key-pro")
        token = item["token"]
        assert api.ws_url == f"ws://127.0.0.1:{api.ws_url.rsplit(':', 1)[1]}" and api.ws_url.endswith("/")
        assert item["server"] == f"{api.ws_url}?token={token}" and item["max_connections"] == 1

        async def scenario() -> list[Any]:
            refused: list[Any] = [await refusal(api.ws_url), await refusal(f"{api.ws_url}?token=not-a-token-at-all")]
            async with connect(item["server"]) as ws:
                refused.append(await over_limit(item["server"]))  # a second connection for a 1-connection token
                assert await until_pong(ws) == []
            await eventually(lambda: api.ws_connections()[2].closed_at is not None)
            async with connect(item["server"]):
                pass
            refused.append(await refusal(f"{api.ws_url}feed?token={token}"))
            api.refuse_ws(503)
            refused.append(await refusal(item["server"]))
            api.refuse_ws(None)
            clock.now = T0 + 60  # the token's end
            refused.append(await refusal(item["server"]))
            return refused

        assert run(scenario()) == [
            (401, b"Invalid or expired token"),
            (401, b"Invalid or expired token"),
            [limit_error(1), (4003, "connection limit")],
            (404, b"Not Found"),
            (503, b"Service Unavailable"),
            (401, b"Invalid or expired token"),
        ]
        wait_until(lambda: all(r.closed_at is not None for r in api.ws_connections()))
        records = api.ws_connections()
        assert [(r.refused, r.close_code, r.token_fingerprint) for r in records] == [
            (401, None, ""),
            (401, None, "not-…"),
            (None, 1000, token[:4] + "…"),
            (4003, 4003, token[:4] + "…"),
            (None, 1000, token[:4] + "…"),
            (404, None, token[:4] + "…"),
            (503, None, token[:4] + "…"),
            (401, None, token[:4] + "…"),
        ]
        assert all(r.closed_at is not None and r.opened_at <= r.closed_at for r in records)
        assert token not in repr(records) and all(token not in str(dataclasses.astuple(r)) for r in records)


def test_acks_topic_keys_errors_and_pong() -> None:
    with SandboxServer(clock=FixedClock(T0)) as api:
        server = ws_new(api, "sandbox-key-pro")["server"]  # PRO: MAIN only, 2 subscriptions

        async def scenario() -> list[dict[str, Any]]:
            async with connect(server) as ws:
                return [
                    await ask(ws, action="subscribe", channel="MAIN", scope="all"),
                    await ask(ws, action="subscribe", channel="MAIN", scope="match", id=M1),
                    await ask(ws, action="subscribe", channel="MAIN", scope="all"),  # again: not counted twice
                    await ask(ws, action="subscribe", channel="MAIN", scope="league", id=L1),
                    await ask(ws, action="unsubscribe", channel="MAIN", scope="all"),
                    await ask(ws, action="subscribe", channel="MAIN", scope="league", id=L1),
                    await ask(ws, action="subscribe", channel="GOALS", scope="all"),
                    await ask(ws, action="subscribe", channel="STATS", scope="all"),
                    await ask(ws, action="subscribe", channel="MAIN", scope="team", id=M1),
                    await ask(ws, action="subscribe", channel="MAIN", scope="match"),
                    await ask(ws, action="subscribe", channel="MAIN", scope="league", id="E8F1 C2D3A4B50001"),
                    await ask(ws, action="subscribe", channel="MAIN", scope="all", id=M1),
                    await ask(ws, action="unsubscribe", channel="MAIN_REALTIME", scope="all"),
                    await ask(ws, action="ping"),
                ]

        def error(code: str, message: str, channel: Any, scope: Any, id_: Any = None) -> dict[str, Any]:
            return {"type": "error", "code": code, "message": message, "channel": channel, "scope": scope, "id": id_}

        assert run(scenario()) == [
            sub("MAIN"),
            sub("MAIN", "match", M1),
            sub("MAIN"),
            error("SUBSCRIPTION_LIMIT", "At most 2 subscriptions per connection", "MAIN", "league", L1),
            sub("MAIN", kind="unsubscribed"),
            sub("MAIN", "league", L1),
            error("INVALID_CHANNEL", "Unknown channel 'GOALS'", "GOALS", "all"),
            error("CHANNEL_NOT_ALLOWED", "Channel STATS is not in this token's plan", "STATS", "all"),
            error("INVALID_SCOPE", "Scope must be one of ['all', 'match', 'league']", "MAIN", "team", M1),
            error("INVALID_SCOPE", "Scope 'match' needs an id", "MAIN", "match"),
            error(
                "INVALID_SCOPE",
                "Scope 'league' needs an id",
                "MAIN",
                "league",
                "E8F1 C2D3A4B50001",
            ),
            error("INVALID_SCOPE", "Scope 'all' takes no id", "MAIN", "all", M1),
            error("CHANNEL_NOT_ALLOWED", "Channel MAIN_REALTIME is not in this token's plan", "MAIN_REALTIME", "all"),
            {"type": "pong", "ts": TS0},
        ]
        (record,) = api.ws_connections()
        assert record.subscriptions == ("MAIN:match:" + M1, "MAIN:league:" + L1)
        assert api.ws_errors_sent() == {
            "SUBSCRIPTION_LIMIT": 1,
            "INVALID_CHANNEL": 1,
            "CHANNEL_NOT_ALLOWED": 2,
            "INVALID_SCOPE": 4,
        }
        assert api.ws_limit_refusals() == 0


def test_a_third_socket_on_pro_is_told_closed_4003_and_counted() -> None:
    clock = FixedClock(T0)
    with SandboxServer(clock=clock) as api:
        item = ws_new(api, "sandbox-key-pro")
        server, fp = item["server"], item["token"][:4] + "…"
        assert item["max_connections"] == 2

        async def scenario() -> list[Any]:
            async with connect(server) as a:
                clock.now = T0 + 1
                async with connect(server) as b:
                    await ask(a, action="subscribe", channel="MAIN", scope="all")
                    clock.now = T0 + 2
                    async with connect(server) as third:
                        told = [await recv(third), await closed(third)]
                    emit_goal(api, 10, [1, 0])
                    outcome = [told, await until_pong(a), await until_pong(b)]
                    await eventually(lambda: api.ws_connections()[2].closed_at is not None)
                    outcome.append((api.ws_limit_refusals(), api.ws_max_sockets(), api.emitted()[0].recipients))
                    clock.now = T0 + 3
                await eventually(lambda: len(api.ws_socket_timeline()) == 3)
                clock.now = T0 + 4
                async with connect(server) as again:  # closing one freed a slot
                    outcome.append(await ask(again, action="subscribe", channel="MAIN", scope="all"))
                    clock.now = T0 + 5
            await eventually(lambda: len(api.ws_socket_timeline()) == 6)
            return outcome

        assert run(scenario()) == [
            [limit_error(2), (4003, "connection limit")],
            [goal(10, [1, 0], ts=TS0 + 2000)],
            [],
            (1, 2, 1),
            sub("MAIN"),
        ]
        assert api.ws_socket_timeline() == [
            (T0, fp, 1),
            (T0 + 1, fp, 2),
            (T0 + 3, fp, 1),
            (T0 + 4, fp, 2),
            (T0 + 5, fp, 1),
            (T0 + 5, fp, 0),
        ]
        assert (api.ws_max_sockets(item["token"]), api.ws_max_sockets("another-token")) == (2, 0)
        assert (api.ws_limit_refusals(), api.ws_errors_sent()) == (1, {"CONNECTION_LIMIT": 1})
        assert [(r.refused, r.close_code, r.subscriptions) for r in api.ws_connections()] == [
            (None, 1000, ("MAIN:all",)),
            (None, 1000, ()),
            (4003, 4003, ()),
            (None, 1000, ("MAIN:all",)),
        ]


def test_unsubscribe_with_the_topics_fields_frees_a_subscription_slot() -> None:
    with SandboxServer() as api:
        server = ws_new(api, "sandbox-key-pro")["server"]  # 2 subscriptions

        async def scenario() -> list[dict[str, Any]]:
            async with connect(server) as ws:
                return [
                    await ask(ws, action="subscribe", channel="MAIN", scope="match", id=M1),
                    await ask(ws, action="subscribe", channel="MAIN", scope="league", id=L1),
                    (await ask(ws, action="subscribe", channel="MAIN", scope="match", id=M2))["code"],
                    await ask(ws, action="unsubscribe", channel="MAIN", scope="match", id=M1),
                    await ask(ws, action="subscribe", channel="MAIN", scope="match", id=M2),
                    await ask(ws, action="unsubscribe", channel="MAIN", scope="league", id=L1),
                    await ask(ws, action="subscribe", channel="MAIN", scope="all", id=None),
                ]

        assert run(scenario()) == [
            sub("MAIN", "match", M1),
            sub("MAIN", "league", L1),
            "SUBSCRIPTION_LIMIT",
            sub("MAIN", "match", M1, kind="unsubscribed"),
            sub("MAIN", "match", M2),
            sub("MAIN", "league", L1, kind="unsubscribed"),
            sub("MAIN"),
        ]
        wait_until(lambda: api.ws_connections()[0].closed_at is not None)
        assert api.ws_connections()[0].subscriptions == ("MAIN:match:" + M2, "MAIN:all")
        assert api.ws_errors_sent() == {"SUBSCRIPTION_LIMIT": 1}


def test_unparseable_or_unknown_commands_leave_the_connection_open() -> None:
    with SandboxServer() as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[Any]:
            async with connect(server) as ws:
                answers = []
                frames: list[str | bytes] = [
                    "not json {",
                    b"\x01\x02",
                    "[1, 2]",
                    '"ping"',
                    '{"action":"dance","channel":"MAIN"}',
                ]
                for frame in frames:
                    await ws.send(frame)
                    answers.append(await recv(ws))
                answers.append(await ask(ws, channel="MAIN", scope="all"))  # no action
                return [*answers, await until_pong(ws)]

        invalid = {"type": "error", "code": "INVALID_MESSAGE", "channel": None, "scope": None, "id": None}
        message = "Messages are JSON objects with an action"
        assert run(scenario()) == [
            {**invalid, "message": message},
            {**invalid, "message": message},
            {**invalid, "message": message},
            {**invalid, "message": message},
            {**invalid, "message": "Unknown action 'dance'", "channel": "MAIN"},
            {**invalid, "message": "Unknown action None", "channel": "MAIN", "scope": "all"},
            [],
        ]


def test_routing_by_scope_once_per_connection_and_unsubscribe() -> None:
    with SandboxServer(clock=FixedClock(T0)) as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[list[dict[str, Any]]]:
            async with connect(server) as every, connect(server) as one_match, connect(server) as one_league:
                for topic in [("all", None), ("match", M1), ("league", L1)]:  # all three match M1's events
                    await ask(every, action="subscribe", channel="MAIN", scope=topic[0], id=topic[1])
                await ask(one_match, action="subscribe", channel="MAIN", scope="match", id=M1)
                await ask(one_league, action="subscribe", channel="MAIN", scope="league", id=L2)
                emit_goal(api, 10, [1, 0])  # M1 in L1
                emit_goal(api, 20, [1, 0], M3, L2)
                api.emit("STATS", "event", event_type="stats_update", match_id=M1, league_id=L1, data={"minute": 30})
                api.emit("MAIN_REALTIME", "goal", match_id=M1, league_id=L1)
                first = [await until_pong(ws) for ws in (every, one_match, one_league)]
                await ask(every, action="unsubscribe", channel="MAIN", scope="all")
                await ask(every, action="unsubscribe", channel="MAIN", scope="league", id=L1)
                emit_goal(api, 40, [2, 0])
                emit_goal(api, 50, [2, 0], M2, L1)
                return [*first, await until_pong(every)]

        assert run(scenario()) == [
            [goal(10, [1, 0]), goal(20, [1, 0], M3, L2)],
            [goal(10, [1, 0])],
            [goal(20, [1, 0], M3, L2)],
            [goal(40, [2, 0])],  # still subscribed to M1 itself
        ]
        assert [e.recipients for e in api.emitted()] == [2, 2, 0, 0, 2, 0]
        assert api.emitted()[2].message == {
            "type": "event",
            "eventType": "stats_update",
            "channel": "STATS",
            "matchId": M1,
            "leagueId": L1,
            "ts": TS0,
            "data": {"minute": 30},
        }


@pytest.mark.parametrize("replay", [0, 2])
def test_replay_resends_the_topics_last_messages_after_the_ack(replay: int) -> None:
    clock = FixedClock(T0)
    with SandboxServer(replay=replay, clock=clock) as api:
        server = ws_new(api)["server"]
        for minute in (1, 2, 3):
            clock.now = T0 + minute
            emit_goal(api, minute, [minute, 0])
        emit_goal(api, 4, [1, 0], M3, L2)

        async def scenario() -> list[dict[str, Any]]:
            async with connect(server) as ws:
                await ws.send(json.dumps({"action": "subscribe", "channel": "MAIN", "scope": "match", "id": M1}))
                return [await recv(ws), *await until_pong(ws)]

        replayed = [goal(2, [2, 0], ts=TS0 + 2000), goal(3, [3, 0], ts=TS0 + 3000)]
        assert run(scenario()) == [sub("MAIN", "match", M1), *replayed[:replay]]


def test_expired_token_closes_4001_and_a_renewed_one_stays_open() -> None:
    clock = FixedClock(T0)
    with SandboxServer(ttl=60, clock=clock) as api:
        server = ws_new(api, "sandbox-key-pro")["server"]

        async def scenario() -> tuple[Any, ...]:
            async with connect(server) as ws:
                clock.now = T0 + 30
                renewed = await asyncio.to_thread(ws_new, api, "sandbox-key-pro", "ws/renew")
                clock.now = T0 + 75  # past the first expiry, before the renewed one (T0 + 90)
                await asyncio.sleep(0.25)  # several token checks
                alive = await until_pong(ws)
                clock.now = T0 + 90
                return renewed["expires_at"], alive, await closed(ws)

        assert run(scenario()) == ("2023-11-14 22:14:50", [], (4001, "token expired"))
        (record,) = api.ws_connections()
        assert (record.close_code, record.closed_at) == (4001, T0 + 90)


def test_expire_tokens_closes_every_socket_of_the_token() -> None:
    with SandboxServer() as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[Any]:
            async with connect(server) as a, connect(server) as b:
                api.expire_tokens()
                return [await closed(a), await closed(b), await refusal(server)]

        assert run(scenario()) == [
            (4001, "token expired"),
            (4001, "token expired"),
            (401, b"Invalid or expired token"),
        ]
        wait_until(lambda: all(r.closed_at is not None for r in api.ws_connections()))
        assert [r.close_code for r in api.ws_connections()] == [4001, 4001, None]


def test_fault_drop_and_close_hit_every_open_connection() -> None:
    with SandboxServer() as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[Any]:
            async with connect(server) as a, connect(server) as b:
                dropped = api.inject_ws("drop")
                outcome = [dropped, await closed(a), await closed(b)]
            async with connect(server) as c:
                outcome += [api.inject_ws("close", code=1011), await closed(c)]
            async with connect(server) as d:
                outcome += [api.inject_ws("close"), await closed(d)]
            await eventually(lambda: all(r.closed_at is not None for r in api.ws_connections()))
            return [*outcome, api.inject_ws("drop")]

        assert run(scenario()) == [
            2,
            (None, None),
            (None, None),
            1,
            (1011, "sandbox fault"),
            1,
            (1012, "sandbox fault"),
            0,
        ]
        assert [r.close_code for r in api.ws_connections()] == [1006, 1006, 1011, 1012]
        with pytest.raises(ValueError, match="fault 'explode'"):
            api.inject_ws("explode")


def test_fault_stall_holds_everything_then_delivers_in_order() -> None:
    with SandboxServer(clock=FixedClock(T0)) as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[Any]:
            async with connect(server) as ws:
                await ask(ws, action="subscribe", channel="MAIN", scope="all")
                started = time.monotonic()
                hit = api.inject_ws("stall", delay=0.4)
                await ws.send('{"action":"ping"}')
                emit_goal(api, 7, [1, 0])
                emit_goal(api, 8, [2, 0])
                protocol_pong = await ws.ping()
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 0.2)
                assert isinstance(protocol_pong, asyncio.Future) and not protocol_pong.done()  # not even those
                after = [await recv(ws) for _ in range(3)]
                waited = time.monotonic() - started
                await asyncio.wait_for(protocol_pong, 1)
                return [hit, waited >= 0.39, *after, await until_pong(ws)]

        assert run(scenario()) == [1, True, goal(7, [1, 0]), goal(8, [2, 0]), {"type": "pong", "ts": TS0}, []]


def test_fault_garbage_then_carries_on() -> None:
    with SandboxServer(clock=FixedClock(T0)) as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[Any]:
            async with connect(server) as ws, connect(server) as other:
                await ask(ws, action="subscribe", channel="MAIN", scope="all")
                hit = api.inject_ws("garbage")
                emit_goal(api, 9, [1, 0])
                frames = [await asyncio.wait_for(ws.recv(), 2) for _ in range(6)]
                assert [await asyncio.wait_for(other.recv(), 2) for _ in range(5)] == frames[:5]
                assert await until_pong(other) == []  # not subscribed: garbage, and nothing else
                return [hit, *frames, await until_pong(ws)]

        assert run(scenario()) == [
            2,
            "not json {",
            b"\x00\x01binary",
            "[1,2]",
            '{"type":"mystery"}',
            '{"type":"goal","channel":"MAIN","leagueId":"e8f1c2d3a4b50001","ts":1700000000000,'
            '"data":{"minute":1,"team":"home","score":[1,0]}}',
            json.dumps(goal(9, [1, 0]), separators=(",", ":")),
            [],
        ]


def test_play_over_the_socket_delivers_the_subscribed_events_in_order() -> None:
    with SandboxServer() as api:
        server = ws_new(api)["server"]

        async def scenario() -> list[dict[str, Any]]:
            async with connect(server) as ws:
                await ask(ws, action="subscribe", channel="MAIN", scope="match", id=M1)
                await ask(ws, action="subscribe", channel="ODDS_REALTIME", scope="league", id=L1)
                playback = api.play(minute_seconds=0.005)
                assert await asyncio.to_thread(playback.wait, 5)
                return await until_pong(ws)

        received = run(scenario())
        assert [(m["channel"], m["type"], m["data"].get("minute")) for m in received] == [
            ("MAIN", "match_start", 0),
            ("MAIN", "goal", 12),
            ("ODDS_REALTIME", "event", 30),
            ("MAIN", "goal", 37),
            ("MAIN", "halftime", 45),
            ("MAIN", "second_half_start", 46),
            ("ODDS_REALTIME", "event", 60),
            ("MAIN", "goal", 71),
            ("MAIN", "goal", 71),
            ("MAIN", "goal", 71),
            ("MAIN", "match_end", 90),  # at one minute, the matches in order
            ("ODDS_REALTIME", "event", 90),
        ]
        assert {m["matchId"] for m in received[:2]} == {M1} and received[2]["matchId"] == M2
        assert [m["ts"] for m in received] == sorted(m["ts"] for m in received)
        assert len({m["ts"] for m in received[7:10]}) == 1  # the burst, at one moment
        assert len(api.emitted()) == 65 and sum(e.recipients for e in api.emitted()) == 12


@pytest.mark.sfi_sandbox(max_connections=1, max_subscribe=1, replay=1)
def test_fixture_marker_overrides_the_plan_limits(sfi_sandbox: SandboxServer) -> None:
    item = ws_new(sfi_sandbox, "sandbox-key-mega")
    assert (item["max_connections"], item["max_subscribe_per_connection"]) == (1, 1)

    async def scenario() -> list[Any]:
        async with connect(item["server"]) as ws:
            return [
                await ask(ws, action="subscribe", channel="STATS", scope="all"),
                (await ask(ws, action="subscribe", channel="ODDS", scope="all"))["message"],
                await over_limit(item["server"]),
            ]

    assert run(scenario()) == [
        sub("STATS"),
        "At most 1 subscription per connection",
        [limit_error(1), (4003, "connection limit")],
    ]
    assert sfi_sandbox.ws_limit_refusals() == 1 and sfi_sandbox.ws_max_sockets() == 1


def test_stop_closes_open_sockets_going_away() -> None:
    api = SandboxServer().start()
    server = ws_new(api)["server"]

    async def scenario() -> tuple[int | None, str | None]:
        async with connect(server) as ws:
            await asyncio.to_thread(api.stop)
            return await closed(ws)

    assert run(scenario()) == (1001, "")
    (record,) = api.ws_connections()
    assert isinstance(record, WsConnectionRecord) and record.close_code == 1001 and record.closed_at is not None
    with pytest.raises(RuntimeError, match="not running"):
        _ = api.ws_url
    with pytest.raises(RuntimeError, match="not running"):
        api.inject_ws("drop")


def test_the_server_logs_no_token_even_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with SandboxServer() as api:
        server = ws_new(api)["server"]

        async def scenario() -> None:
            async with connect(server) as ws:
                await ask(ws, action="subscribe", channel="MAIN", scope="all")
            await refusal(server.replace("?token=", "?token=x"))

        run(scenario())
        token = server.split("?token=")[1]
        served = [r for r in caplog.records if r.name == "websockets.server"]
    assert "connection open" in {r.getMessage() for r in served}  # it does log, above DEBUG
    assert all(token not in r.getMessage() and r.levelno > logging.DEBUG for r in served)


def test_command_line_serves_the_websocket_and_plays() -> None:
    argv = ["--port", "0", "--play", "--minute-seconds", "0.002", "--replay", "3"]
    proc = subprocess.Popen([sys.executable, "-m", "airflow_sfi.sandbox", *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(10)]
        base = lines[0].split(" on ")[1].split(" ")[0]
        ws_line = next(line for line in lines if line.startswith("WebSocket on "))
        assert ws_line.startswith("WebSocket on ws://127.0.0.1:") and "(replay 3)" in ws_line
        assert any(
            line.startswith("Playing, looped, one match minute every 0.002 s: d2a1e6f4b3c50001") for line in lines
        )
        with urllib.request.urlopen(f"{base}/v1/ws/new/?t=sandbox-key-pro", timeout=5) as answer:
            server = json.load(answer)["result"][0]["server"]
        assert server.startswith(ws_line.split()[2] + "?token=")

        async def scenario() -> list[dict[str, Any]]:
            async with connect(server) as ws:
                ack = await ask(ws, action="subscribe", channel="MAIN", scope="all")
                return [ack, await recv(ws), await recv(ws), await recv(ws)]

        ack, *events = run(scenario())
        assert ack == sub("MAIN")
        assert all(e["channel"] == "MAIN" and e["matchId"] in (M1, M2, M3) for e in events)
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=10)[0]
    assert "WS :" in rest and " open" in rest
    assert "?token=" not in rest
